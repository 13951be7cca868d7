# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Training, resume, evaluation and prediction on CPU with tiny configs (LHT pattern)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from conftest import TINY_TRAIN_OVERRIDES, compose_config, shared_dataset
from omegaconf import open_dict

from irsam.data.io import encode_png
from irsam.tasks.evaluate import evaluate
from irsam.tasks.predict import predict
from irsam.tasks.train import train


def _last_checkpoint(run_dir: Path) -> Path:
    path = run_dir / "checkpoints" / "last.ckpt"
    assert path.is_file(), f"no last.ckpt in {run_dir}"
    return path


def test_fast_dev_run_synthetic(cfg_train) -> None:
    """One batch of each loop runs and logs every metric key."""
    with open_dict(cfg_train):
        cfg_train.trainer.fast_dev_run = True
    metrics, _ = train(cfg_train)
    for key in (
        "train/loss",
        "train/loss_softiou",
        "train/loss_edge_bce",
        "val/IoU",
        "val/nIoU",
        "val/Pd",
        "val/Fa",
        "val/IoU_best",
        "test/IoU",
        "test/Fa",
    ):
        assert key in metrics, key
    assert np.isfinite(metrics["train/loss"])


@pytest.mark.parametrize(
    "dataset,folder", [("nuaa_sirst", "NUAA-SIRST"), ("nudt_sirst", "NUDT-SIRST")]
)
def test_fast_dev_run_real_datasets(tmp_path: Path, dataset: str, folder: str) -> None:
    """fast_dev_run through each real dataset config (skipped when ../shared/data is absent)."""
    root = shared_dataset(folder)
    overrides = [o for o in TINY_TRAIN_OVERRIDES if not o.startswith("dataset.")] + [
        f"dataset={dataset}",
        f"dataset.root={root}",
        "dataset.loader_size=64",
        "dataset.batch_size=2",
        "dataset.eval_batch_size=2",
        "trainer.fast_dev_run=true",
    ]
    cfg = compose_config("train", tmp_path, overrides)
    metrics, _ = train(cfg)
    assert 0.0 <= metrics["test/IoU"] <= 1.0


def test_fast_dev_run_irstd1k_layout(tmp_path: Path) -> None:
    """The IRSTD-1k config trains on a generated ISNet-layout tree, with a label budget whose
    names are written to the run folder."""
    from irsam.data.synthetic import render_synthetic_sample

    root = tmp_path / "IRSTD-1k"
    (root / "IRSTD1k_Img").mkdir(parents=True)
    (root / "IRSTD1k_Label").mkdir()
    names = [f"XDU{i}" for i in range(6)]
    for i, name in enumerate(names):
        image, mask = render_synthetic_sample(i, "train", i, 48, 48)
        (root / "IRSTD1k_Img" / f"{name}.png").write_bytes(encode_png(image))
        (root / "IRSTD1k_Label" / f"{name}.png").write_bytes(encode_png(mask * 255))
    (root / "trainval.txt").write_text("\n".join(names[:4]))
    (root / "test.txt").write_text("\n".join(names[4:]))
    overrides = [o for o in TINY_TRAIN_OVERRIDES if not o.startswith("dataset.")] + [
        "dataset=irstd1k",
        f"dataset.root={root}",
        "dataset.loader_size=64",
        "dataset.batch_size=2",
        "dataset.val_fraction=0.25",
        "dataset.train_count=2",
        "trainer.fast_dev_run=true",
    ]
    metrics, objects = train(compose_config("train", tmp_path / "run", overrides))
    assert "test/IoU" in metrics
    chosen = (tmp_path / "run" / "train_subset.txt").read_text().splitlines()
    assert chosen == objects["datamodule"].train_subset["images"] and len(chosen) == 2


def test_train_then_evaluate_gives_same_metrics(cfg_train, tmp_path: Path) -> None:
    """evaluate.py on the selected checkpoint reproduces the training run's test metrics, twice."""
    train_metrics, _ = train(cfg_train)
    best = next((tmp_path / "checkpoints").glob("epoch_*.ckpt"))
    results = []
    for run in ("eval1", "eval2"):
        cfg = compose_config(
            "evaluate",
            tmp_path / run,
            [
                f"ckpt_path={best}",
                "trainer=cpu",
                "dataset.synthetic.native_size=64",
                "dataset.synthetic.num_test=4",
                "dataset.eval_batch_size=4",
                "extras.print_config=false",
                "trainer.enable_progress_bar=false",
            ],
        )
        result, _ = evaluate(cfg)
        results.append(result)
        assert (tmp_path / run / "results.json").is_file()
        report = (tmp_path / run / "results.md").read_text()
        assert report.startswith("**Protocol:** synthetic") and "\n| IoU (%) |" in report
        assert (tmp_path / run / "pd_fa_curve.csv").is_file() and (
            tmp_path / run / "pd_fa_curve.png"
        ).is_file()
    for key in ("test/IoU", "test/nIoU", "test/Pd", "test/Fa"):
        expected = train_metrics[key]
        for result in results:
            got = result["metrics"][key]
            assert (np.isnan(expected) and np.isnan(got)) or got == pytest.approx(
                expected, rel=1e-6, abs=1e-9
            ), key
    stored = json.loads((tmp_path / "eval1" / "results.json").read_text())
    assert stored["params"]["total"] > 1e6 and stored["images"] == 4
    trained = json.loads((tmp_path / "results.json").read_text())  # train.py's own test
    assert trained["checkpoint"] == str(best) and trained["images"] == stored["images"]
    assert trained["protocol"]["protocol"] == "synthetic"
    assert trained["trained_on"] == stored["trained_on"]
    assert trained["trained_on"] == {
        "dataset": "synthetic",
        "split": "default",
        "protocol": "synthetic",
        "loader_size": 64,
        "train_fraction": None,
        "train_count": None,
        "train_subset_seed": 0,
        "copy_paste_p": 0.0,
    }
    assert trained["metrics"]["test/IoU"] == pytest.approx(stored["metrics"]["test/IoU"])
    assert (tmp_path / "results.md").read_text().startswith("**Protocol:** synthetic")


def test_checkpoints_are_weights_only_and_resume_continues(cfg_train, tmp_path: Path) -> None:
    """last.ckpt opens with weights_only=True; resuming restores epoch, step and optimiser state."""
    train(cfg_train)
    last = _last_checkpoint(tmp_path)
    first = torch.load(last, map_location="cpu", weights_only=True)
    assert first["epoch"] == 0 and first["global_step"] == 2
    assert first["optimizer_states"][0]["state"], "optimizer state missing"

    resumed_dir = tmp_path / "resumed"
    cfg = compose_config(
        "train",
        resumed_dir,
        list(TINY_TRAIN_OVERRIDES) + ["trainer.max_epochs=2", f"ckpt_path={last}", "test=false"],
    )
    train(cfg)
    second = torch.load(_last_checkpoint(resumed_dir), map_location="cpu", weights_only=True)
    assert second["epoch"] == 1 and second["global_step"] == 4
    step_before = first["optimizer_states"][0]["state"][0]["step"]
    step_after = second["optimizer_states"][0]["state"][0]["step"]
    assert float(step_after) == float(step_before) + 2


def test_predict_folder_png_and_16bit_tiff(cfg_train, tmp_path: Path) -> None:
    """predict.py writes one mask and overlay per input (8-bit PNG and 16-bit TIFF) and a CSV."""
    with open_dict(cfg_train):
        cfg_train.test = False
    train(cfg_train)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    rng = np.random.default_rng(0)
    (inputs / "a.png").write_bytes(encode_png(rng.integers(0, 255, (50, 70), dtype=np.uint8)))
    tifffile.imwrite(inputs / "b.tif", rng.integers(0, 16383, (90, 60), dtype=np.uint16))
    out = tmp_path / "pred"
    cfg = compose_config(
        "predict",
        tmp_path / "predict_run",
        [
            f"ckpt_path={_last_checkpoint(tmp_path)}",
            f"input={inputs}",
            f"output={out}",
            "extras.print_config=false",
        ],
    )
    summary, _ = predict(cfg)
    assert summary["images"] == 2
    assert sorted(p.name for p in (out / "masks").iterdir()) == ["a.png", "b.png"]
    assert sorted(p.name for p in (out / "overlays").iterdir()) == ["a.png", "b.png"]
    from PIL import Image

    assert Image.open(out / "masks" / "b.png").size == (60, 90)
    with open(out / "targets.csv") as handle:
        header = next(csv.reader(handle))
    assert header[:5] == ["image", "target", "centroid_x", "centroid_y", "area"]


# ------------------------------------------------------------------ regressions


@pytest.fixture(scope="module")
def legacy_run(tmp_path_factory) -> Path:
    """One tiny training run whose checkpoint stores non-default metric options."""
    run = tmp_path_factory.mktemp("legacy_run")
    cfg = compose_config(
        "train",
        run,
        list(TINY_TRAIN_OVERRIDES) + ["metrics.fa_rule=legacy_area", "metrics.empty_policy=skip"],
    )
    train(cfg)
    return _last_checkpoint(run)


EVAL_TINY = [
    "trainer=cpu",
    "dataset.synthetic.native_size=64",
    "dataset.synthetic.num_test=4",
    "extras.print_config=false",
    "trainer.enable_progress_bar=false",
]


def test_evaluate_metric_overrides_merge_into_the_checkpoints(legacy_run, tmp_path) -> None:
    """`metrics.fa_normaliser=512` composes (no `+`) and keeps the checkpoint's other options."""
    cfg = compose_config(
        "evaluate", tmp_path, [f"ckpt_path={legacy_run}", "metrics.fa_normaliser=512", *EVAL_TINY]
    )
    result, _ = evaluate(cfg)
    options = result["metric_options"]
    assert {k: options[k] for k in ("threshold", "fa_rule", "fa_normaliser", "empty_policy")} == {
        "threshold": 0.0,
        "fa_rule": "legacy_area",
        "fa_normaliser": 512,
        "empty_policy": "skip",
    }
    assert "opdc" in options["extra"] and "test/hIoU" in result["metrics"]
    assert result["protocol"]["dataset"] == "synthetic"


def test_evaluate_refuses_a_model_override(legacy_run, tmp_path) -> None:
    cfg = compose_config(
        "evaluate", tmp_path, [f"ckpt_path={legacy_run}", "+model=irsam_vit_b", *EVAL_TINY]
    )
    with pytest.raises(ValueError, match=r"build_irsam_vit_b cannot apply here.*Drop the model"):
        evaluate(cfg)


def test_saved_masks_follow_metrics_threshold(legacy_run, tmp_path) -> None:
    """save_predictions binarises at metrics.threshold, the rule the metrics score."""
    empty = []
    for threshold in (-1e9, 1e9):
        cfg = compose_config(
            "evaluate",
            tmp_path / str(threshold),
            [f"ckpt_path={legacy_run}", f"metrics.threshold={threshold}", "save_predictions=true"]
            + EVAL_TINY,
        )
        evaluate(cfg)
        masks = sorted((tmp_path / str(threshold) / "predictions" / "masks").glob("*.png"))
        from PIL import Image

        empty.append([not np.asarray(Image.open(m)).any() for m in masks])
    assert len(empty[0]) == 4 and not any(empty[0]) and all(empty[1])


def test_train_false_returns_no_optimized_metric(tmp_path) -> None:
    """`train.py train=false` tests the initial weights and exits cleanly (no KeyError)."""
    cfg = compose_config("train", tmp_path, list(TINY_TRAIN_OVERRIDES) + ["train=false"])
    metrics, objects = train(cfg)
    assert "test/IoU" in metrics and objects["optimized_metric"] is None


def test_one_freeze_knob(tmp_path) -> None:
    """`model.freeze` is the only freeze switch; the old `model.net.freeze` is refused loudly."""
    import hydra
    from hydra.errors import InstantiationException

    cfg = compose_config(
        "train", tmp_path, list(TINY_TRAIN_OVERRIDES) + ["model.freeze=decoder_only"]
    )
    module = hydra.utils.instantiate(cfg.model)
    trainable = {n.split(".")[0] for n, p in module.net.named_parameters() if p.requires_grad}
    assert trainable == {"mask_decoder"}
    cfg = compose_config(
        "train", tmp_path, list(TINY_TRAIN_OVERRIDES) + ["+model.net.freeze=decoder_only"]
    )
    with pytest.raises(InstantiationException, match="freeze"):
        hydra.utils.instantiate(cfg.model)


def test_predict_uses_checkpoint_metric_options_and_plain_name_pairing(
    legacy_run, tmp_path
) -> None:
    """predict.py with gt= scores with the checkpoint's fa_rule/empty_policy; masks pair by plain
    names (``[`` and ``*`` are not glob patterns) and non-image files are ignored."""
    from irsam.data.synthetic import render_synthetic_sample

    inputs, masks = tmp_path / "in", tmp_path / "gt"
    inputs.mkdir()
    masks.mkdir()
    names = ["frame[1]", "frame*2", "frame3"]
    for i, name in enumerate(names):
        image, mask = render_synthetic_sample(i, "test", i, 48, 48)
        (inputs / f"{name}.png").write_bytes(encode_png(image))
        (masks / f"{name}.png").write_bytes(encode_png(mask * 255))
    (masks / "frame3.txt").write_text("not a mask")
    (masks / "frame[1].xml").write_text("<annotation/>")
    out = tmp_path / "pred"
    cfg = compose_config(
        "predict",
        tmp_path / "run",
        [
            f"ckpt_path={legacy_run}",
            f"input={inputs}",
            f"gt={masks}",
            f"output={out}",
            "trainer=cpu",
            "extras.print_config=false",
            "trainer.enable_progress_bar=false",
        ],
    )
    summary, _ = predict(cfg)
    assert summary["images"] == 3
    assert summary["metric_options"]["fa_rule"] == "legacy_area"
    assert summary["metric_options"]["empty_policy"] == "skip"
    stored = json.loads((out / "results.json").read_text())
    assert stored["metric_options"]["fa_rule"] == "legacy_area"
    assert sorted(p.stem for p in (out / "masks").iterdir()) == sorted(names)


@pytest.mark.parametrize("loss", ["softiou", "irsam"])
def test_divergence_stops_the_run_with_a_clear_error(tmp_path, loss: str) -> None:
    """`optimizer.lr=1e30` makes the weights blow up: the run stops at the first non-finite loss
    or output, names the fix, and leaves no checkpoint behind."""
    cfg = compose_config(
        "train",
        tmp_path,
        list(TINY_TRAIN_OVERRIDES)
        + [f"loss={loss}", "optimizer.lr=1e30", "dataset.synthetic.num_train=16"],
    )
    with pytest.raises(FloatingPointError, match=r"diverged.*optimizer\.lr"):
        train(cfg)
    assert not list(tmp_path.glob("checkpoints/*.ckpt")), "a diverged run wrote a checkpoint"


def test_predict_streams_a_video_and_a_16bit_stack_with_track_ids(legacy_run, tmp_path) -> None:
    """A video written here and a 16-bit .npy stack go through predict.py: one mask per frame,
    targets.csv with frame and track_id columns, and an overlay video."""
    import cv2

    from irsam.data.synthetic import render_synthetic_sample

    frames = [render_synthetic_sample(i, "test", 0, 48, 48)[0] for i in range(5)]
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (48, 48))
    for frame in frames:
        writer.write(cv2.cvtColor(frame.astype(np.uint8), cv2.COLOR_GRAY2BGR))
    writer.release()
    stack = tmp_path / "sensor.npy"
    np.save(stack, (np.stack(frames[:4]).astype(np.uint16) * 64))  # 14-bit range
    for source, count in ((video, 5), (stack, 4)):
        out = tmp_path / f"out_{source.suffix[1:]}"
        cfg = compose_config(
            "predict",
            tmp_path / f"run_{source.suffix[1:]}",
            [
                f"ckpt_path={legacy_run}",
                f"input={source}",
                f"output={out}",
                "trainer=cpu",
                "save_overlay_video=true",
                "extras.print_config=false",
                "trainer.enable_progress_bar=false",
                "metrics.threshold=-1e9",
            ],
        )
        summary, _ = predict(cfg)
        assert summary["images"] == count
        assert len(list((out / "masks").glob("*.png"))) == count
        with open(out / "targets.csv") as handle:
            rows = list(csv.DictReader(handle))
        assert rows and {"frame", "track_id"} <= set(rows[0])
        # threshold -1e9: the whole frame is one target, so one track runs through every frame
        assert sorted({int(r["frame"]) for r in rows}) == list(range(count))
        assert {r["track_id"] for r in rows} == {"1"}
        assert (out / "overlay.avi").stat().st_size > 0
