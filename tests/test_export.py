# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""ONNX / torch.export of the prompt-free network (irsam.export) on a tiny SAM-ViT IRSAM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnx", reason="the optional `onnx` package is not installed (irsam[export])")
pytest.importorskip("onnxruntime", reason="optional `onnxruntime` is not installed (irsam[export])")
pytest.importorskip("onnxscript", reason="the torch.onnx exporter needs `onnxscript`")

import onnx
from conftest import write_train_checkpoint
from onnx import TensorProto, helper

from irsam.export import (
    ExportError,
    OnnxNetwork,
    check_onnx_signature,
    example_images,
    load_network,
    prepare_for_export,
    run_export,
    verify_onnx,
)
from irsam.lit_module import IRSAMLitModule
from irsam.models import build_irsam_vit

SIZE = 64
NET_CFG = {
    "_target_": "irsam.models.build.build_irsam_vit",
    "embed_dim": 64,
    "depth": 4,
    "num_heads": 2,
    "global_attn_indexes": [1, 3],
    "pretrain_image_size": SIZE,
    "encoder_size": SIZE,
    "checkpoint": None,
}
ATOL = RTOL = 1e-4  # float32 CPU: onnxruntime and torch differ only by rounding


def _net():
    torch.manual_seed(0)
    kwargs = {k: v for k, v in NET_CFG.items() if k != "_target_"}
    return build_irsam_vit(**kwargs).eval()


def _fake_train_checkpoint(path: Path) -> Path:
    """A checkpoint in the layout train.py writes, of the test's ViT network (loader size 48)."""
    return write_train_checkpoint(path, NET_CFG, loader_size=48)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple:
    """``run_export`` of a tiny checkpoint, once for the module: (torch wrapper, file, report)."""
    folder = tmp_path_factory.mktemp("onnx")
    ckpt = _fake_train_checkpoint(folder / "last.ckpt")
    report = run_export(
        ckpt_path=ckpt, output=folder / "tiny.onnx", check_batch_sizes=[2], atol=ATOL, rtol=RTOL
    )
    net, train_size = load_network(ckpt)
    assert train_size == 48
    return prepare_for_export(net), Path(report["output"]), report


def test_run_export_report(exported) -> None:
    _, path, report = exported
    assert report["format"] == "onnx" and path.is_file()
    # default check: the tracing size (the training loader size) and a smaller non-square size
    assert {(r["height"], r["width"]) for r in report["check"]} == {(48, 48), (24, 36)}
    assert all(r["max_abs_diff"] <= r["limit"] for r in report["check"])


def test_onnxruntime_matches_torch_on_batch_and_image_sizes(exported) -> None:
    model, path, _ = exported
    onnx.checker.check_model(str(path))
    rows = verify_onnx(
        model, path, batch_sizes=[1, 3], image_sizes=[(SIZE, SIZE), (40, 88)], atol=ATOL, rtol=RTOL
    )
    assert [(r["batch"], r["height"], r["width"]) for r in rows] == [
        (1, 64, 64),
        (1, 40, 88),
        (3, 64, 64),
        (3, 40, 88),
    ]
    assert all(r["max_abs_diff"] <= r["limit"] for r in rows)
    runtime = OnnxNetwork(path)
    assert runtime.img_size == SIZE
    images = example_images(2, 50, 30, seed=4)
    logits = runtime(images)["mask_logits"]
    assert logits.shape == (2, 1, 50, 30) and logits.dtype == torch.float32
    with torch.no_grad():
        # the export wrapper computes what the network computes
        torch.testing.assert_close(
            model(images), model.net(images)["mask_logits"], atol=1e-6, rtol=1e-6
        )
        torch.testing.assert_close(logits, model(images), atol=ATOL, rtol=RTOL)
    # sizes whose nearest resize ratios ONNX Resize rounds differently (50 -> 64, 30 -> 64)
    verify_onnx(
        model, path, batch_sizes=[2], image_sizes=[(50, 30), (120, 100)], atol=ATOL, rtol=RTOL
    )


def test_check_fails_beyond_tolerance(exported) -> None:
    model, path, _ = exported
    with torch.no_grad():
        model.net.mask_decoder.output_hypernetworks_mlps[0].layers[-1].bias.add_(1.0)
    try:
        with pytest.raises(ExportError, match="tiny.onnx.*disagree"):
            verify_onnx(
                model, path, batch_sizes=[1], image_sizes=[(SIZE, SIZE)], atol=ATOL, rtol=RTOL
            )
    finally:
        with torch.no_grad():
            model.net.mask_decoder.output_hypernetworks_mlps[0].layers[-1].bias.sub_(1.0)


def test_onnx_file_of_another_model_is_refused(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Identity", ["input_ids"], ["logits"])],
        "other",
        [helper.make_tensor_value_info("input_ids", TensorProto.FLOAT, ["batch", 128])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 128])],
    )
    other = tmp_path / "other.onnx"
    onnx.save(helper.make_model(graph), str(other))
    with pytest.raises(
        ExportError,
        match=r"other\.onnx: not an irsam prompt-free network.*"
        r"input_ids\['batch', 128\]",
    ):
        OnnxNetwork(other)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00\x01not a protobuf at all" * 10)
    with pytest.raises(ExportError, match="garbage.onnx: cannot be read"):
        check_onnx_signature(garbage)
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        check_onnx_signature(tmp_path / "missing.onnx")


def test_export_entry_point_torch_export(tmp_path: Path) -> None:
    """conf/export.yaml composes and export_task writes a loadable torch.export program."""
    from conftest import compose_config

    from irsam.tasks.export import export_task

    ckpt = _fake_train_checkpoint(tmp_path / "last.ckpt")
    cfg = compose_config(
        "export",
        tmp_path,
        [f"ckpt_path={ckpt}", "format=torch_export", "extras.print_config=false"],
    )
    report, _ = export_task(cfg)
    assert report["output"] == str(tmp_path / "model.pt2")
    program = torch.export.load(report["output"])
    model = prepare_for_export(load_network(ckpt)[0])
    images = example_images(3, 40, 56, seed=2)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(images), model(images), atol=ATOL, rtol=RTOL)


def test_predict_with_the_onnx_backend_matches_torch(tmp_path) -> None:
    """`predict.py backend=onnx onnx_path=...` runs the exported file through the same pipeline;
    its masks agree with the torch backend's (pixels may flip only within the export tolerance)."""
    from conftest import compose_config
    from PIL import Image

    from irsam.data.io import encode_png
    from irsam.tasks.predict import predict

    ckpt = _fake_train_checkpoint(tmp_path / "last.ckpt")
    onnx_file = Path(run_export(ckpt_path=ckpt, output=tmp_path / "m.onnx")["output"])
    frames = tmp_path / "frames"
    frames.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        (frames / f"f{i}.png").write_bytes(encode_png(rng.integers(0, 255, (40, 56), np.uint8)))
    masks = {}
    for backend in ("torch", "onnx"):
        out = tmp_path / backend
        overrides = [
            f"ckpt_path={ckpt}",
            f"input={frames}",
            f"output={out}",
            "trainer=cpu",
            f"backend={backend}",
            f"onnx_path={onnx_file}",
            "extras.print_config=false",
            "trainer.enable_progress_bar=false",
        ]
        summary, _ = predict(compose_config("predict", tmp_path / f"run_{backend}", overrides))
        assert summary["images"] == 3
        masks[backend] = np.stack([np.asarray(Image.open(p)) for p in sorted(out.glob("masks/*"))])
    assert (masks["torch"] == masks["onnx"]).mean() > 0.99


def test_run_export_pretrained_writes_a_folder_that_rebuilds_the_network(tmp_path: Path) -> None:
    """``format=pretrained``: config.json + model.safetensors, checked against the checkpoint."""
    ckpt = _fake_train_checkpoint(tmp_path / "last.ckpt")
    report = run_export(ckpt_path=ckpt, output=tmp_path / "model", format="pretrained")
    assert report["format"] == "pretrained" and report["check"][0]["height"] == 48
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [
        "config.json",
        "model.safetensors",
    ]
    rebuilt = IRSAMLitModule.from_checkpoint(tmp_path / "model").net
    net, _ = load_network(ckpt)
    images = example_images(2, 40, 56)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(images)["mask_logits"], net(images)["mask_logits"])


def test_exporter_logs_are_quiet_unless_verbose() -> None:
    """export.py holds the exporters' loggers at WARNING (the ONNX passes log hundreds of INFO
    lines) and restores them after; verbose=true leaves them alone."""
    import logging

    from irsam.export import quiet_exporters

    passes = logging.getLogger("onnx_ir.passes.common.unused_removal")
    root_level = logging.getLogger().level
    logging.getLogger().setLevel(logging.INFO)
    try:
        with quiet_exporters():
            assert not passes.isEnabledFor(logging.INFO)
            assert passes.isEnabledFor(logging.WARNING)
        assert passes.isEnabledFor(logging.INFO)
        with quiet_exporters(verbose=True):
            assert passes.isEnabledFor(logging.INFO)
    finally:
        logging.getLogger().setLevel(root_level)


def test_torch_export_file_is_written_atomically(tmp_path: Path, monkeypatch) -> None:
    """A torch.export save that fails half-way (full disk) leaves no partial .pt2 and gives the
    disk-full message naming the file."""
    import errno
    from types import SimpleNamespace

    from irsam.export import export_torch
    from irsam.utils import OutputWriteError

    def failing_save(program: object, handle) -> None:
        handle.write(b"PK partial archive")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch.export, "export", lambda *args, **kwargs: "program")
    monkeypatch.setattr(torch.export, "save", failing_save)
    model = SimpleNamespace(net=SimpleNamespace(img_size=SIZE))
    with pytest.raises(OutputWriteError, match="model.pt2 into the exported model folder"):
        export_torch(model, tmp_path / "model.pt2", example_size=(SIZE, SIZE))
    assert list(tmp_path.iterdir()) == []
