# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""The Python API (irsam.Predictor), the model folder, ``import irsam`` and
``IRSAMLitModule.load_from_checkpoint`` on a checkpoint whose pretrained weights file is gone."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from conftest import PROJECT_ROOT, TINY_TRAIN_OVERRIDES, compose_config, shared_dataset
from PIL import Image
from safetensors import safe_open

from irsam import Prediction, Predictor
from irsam.data.io import encode_png
from irsam.lit_module import IRSAMLitModule, checkpoint_sizes
from irsam.models import CheckpointError, build_prompt_sam
from irsam.predictor import TARGET_FIELDS
from irsam.pretrained import CONFIG_FILE, WEIGHTS_FILE
from irsam.tasks.predict import predict
from irsam.tasks.train import train

README_SNIPPET = """\
import numpy as np
from irsam import Predictor
frame = np.load("sensor_frame.npy")  # H×W uint16 sensor counts
predictor = Predictor.from_checkpoint("<file.ckpt>")
result = predictor.predict(frame)  # result.mask, result.probability, result.targets
"""
"""The Python block proposed for the README; its file names are replaced as
tests/runs/test_readme_commands.py replaces them."""

NUAA_IMAGES = ("Misc_1", "Misc_10", "Misc_100", "Misc_101", "Misc_104")
"""Five NUAA-SIRST images: grey (L), RGBA and RGB PNGs of four sizes, none of them 64²."""


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict[str, Path]:
    """A tiny checkpoint (loader size 64, encoder 128) trained for one step from a random
    MobileSAM-layout weights file, which is deleted afterwards: nothing below may read it."""
    root = tmp_path_factory.mktemp("predictor")
    weights = root / "mobile_sam.pt"
    torch.manual_seed(0)
    torch.save(build_prompt_sam(encoder="tiny", encoder_size=128).state_dict(), weights)
    overrides = [
        *TINY_TRAIN_OVERRIDES,
        f"model.net.checkpoint={weights}",
        "trainer.limit_train_batches=1",
        "trainer.limit_val_batches=1",
        "callbacks.sample_predictions=null",
        "test=false",
    ]
    train(compose_config("train", root / "run", overrides))
    weights.unlink()
    return {
        "root": root,
        "checkpoint": root / "run" / "checkpoints" / "last.ckpt",
        "weights": weights,
    }


@pytest.fixture(scope="module")
def predictor(run) -> Predictor:
    """The Predictor of the fixture checkpoint (CPU, float32)."""
    return Predictor.from_checkpoint(run["checkpoint"])


def _predict_py(run: dict[str, Path], inputs: Path, output: Path, batch_size: int) -> None:
    """``predict.py input=<inputs>`` with probability maps, no overlays."""
    cfg = compose_config(
        "predict",
        output.parent / f"{output.name}_run",
        [
            f"ckpt_path={run['checkpoint']}",
            f"input={inputs}",
            f"output={output}",
            f"batch_size={batch_size}",
            "trainer.accelerator=cpu",
            "trainer.enable_progress_bar=false",
            "save_overlays=false",
            "save_probabilities=true",
            "extras.print_config=false",
        ],
    )
    predict(cfg)


def _assert_same_as_written(predictions: list[Prediction], names: list[str], output: Path) -> None:
    """Masks, probability maps and target rows (``targets.csv`` without the image name and the
    frame stream's tracking columns) equal what predict.py wrote for ``names``."""
    with open(output / "targets.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for name, prediction in zip(names, predictions, strict=True):
        written = np.asarray(Image.open(output / "masks" / f"{name}.png"))
        assert written.shape == prediction.mask.shape
        np.testing.assert_array_equal(written > 0, prediction.mask, err_msg=name)
        probability = tifffile.imread(output / "probs" / f"{name}.tif")
        np.testing.assert_array_equal(probability, prediction.probability, err_msg=name)
        expected = [{k: row[k] for k in TARGET_FIELDS} for row in rows if row["image"] == name]
        assert [{k: str(v) for k, v in t.items()} for t in prediction.targets] == expected, name


@pytest.mark.real_data
def test_masks_equal_predict_py_on_real_images(run, predictor, tmp_path) -> None:
    """Predictor.predict on five NUAA-SIRST images (grey, RGBA with the alpha dropped, RGB; none
    at the loader size) gives predict.py's masks, probabilities and targets exactly; so does
    predict_batch with predict.py's batch size."""
    root = shared_dataset("NUAA-SIRST")
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    arrays = []
    for name in NUAA_IMAGES:
        source = root / "images" / f"{name}.png"
        (inputs / source.name).write_bytes(source.read_bytes())
        array = np.asarray(Image.open(source))
        arrays.append(array[..., :3] if array.ndim == 3 else array)
    assert {a.ndim for a in arrays} == {2, 3} and predictor.loader_size == 64
    _predict_py(run, inputs, tmp_path / "one", batch_size=1)
    _assert_same_as_written(predictor.predict(arrays), list(NUAA_IMAGES), tmp_path / "one")
    _predict_py(run, inputs, tmp_path / "three", batch_size=3)
    batched = predictor.predict_batch(arrays, batch_size=3)
    _assert_same_as_written(batched, list(NUAA_IMAGES), tmp_path / "three")


def test_uint16_and_float_images_equal_predict_py(run, predictor, tmp_path) -> None:
    """16-bit and float32 TIFFs: the Predictor on the arrays equals predict.py on the files."""
    rng = np.random.default_rng(0)
    images = {
        "counts": rng.integers(0, 16383, (45, 70), dtype=np.uint16),
        "radiance": rng.random((80, 52), dtype=np.float32) * 3.5 - 1.0,
    }
    images["counts"][20:23, 30:33] = 16383
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for name, array in images.items():
        tifffile.imwrite(inputs / f"{name}.tif", array)
    _predict_py(run, inputs, tmp_path / "out", batch_size=1)
    names = sorted(images)
    _assert_same_as_written(predictor.predict([images[n] for n in names]), names, tmp_path / "out")


def test_grey_rgb_uint16_float_and_lists(predictor) -> None:
    """Every accepted kind of image gives a mask and probabilities at its own size; a grey image
    and its RGB repetition agree; a list gives one result per image, in order."""
    rng = np.random.default_rng(1)
    grey = rng.integers(0, 255, (37, 61), dtype=np.uint8)
    grey[10:13, 20:24] = 255
    result = predictor.predict(grey)
    assert isinstance(result, Prediction)
    assert result.mask.shape == (37, 61) and result.mask.dtype == bool
    assert result.probability.shape == (37, 61) and result.probability.dtype == np.float32
    assert np.array_equal(result.mask, result.probability > 0.5)  # threshold 0 = probability 0.5
    for target in result.targets:
        assert set(target) == {
            "target",
            "centroid_x",
            "centroid_y",
            "area",
            "score_max",
            "score_mean",
            "bbox_x0",
            "bbox_y0",
            "bbox_x1",
            "bbox_y1",
        }
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    same = predictor.predict(rgb)
    assert np.array_equal(same.mask, result.mask)
    assert np.array_equal(same.probability, result.probability)
    assert np.array_equal(predictor.predict(grey[..., None]).probability, result.probability)
    counts = (grey.astype(np.uint16) * 64)[:30, :45]
    radiance = grey.astype(np.float64) / 255.0 - 0.5
    results = predictor.predict([grey, counts, radiance])
    assert [r.mask.shape for r in results] == [(37, 61), (30, 45), (37, 61)]
    assert np.array_equal(results[0].probability, result.probability)
    batched = predictor.predict_batch([grey, counts, radiance], batch_size=2)
    assert [r.mask.shape for r in batched] == [(37, 61), (30, 45), (37, 61)]
    assert predictor.predict([]) == []


@pytest.mark.parametrize(
    "image,error,match",
    [
        ([[0, 1], [2, 3]], TypeError, "image 0 is a list; pass a NumPy array"),
        (torch.zeros(8, 8), TypeError, r"convert a tensor with \.cpu\(\)\.numpy\(\)"),
        (np.zeros((8, 8), np.int64), TypeError, "pixel type int64"),
        (np.zeros((8, 8, 4), np.uint8), ValueError, r"4 channels.*image\[\.\.\., :3\]"),
        (np.zeros((2, 8, 8, 3), np.uint8), ValueError, r"shape \(2, 8, 8, 3\)"),
        (np.zeros(8, np.uint8), ValueError, r"shape \(8,\); expected H×W"),
        (np.zeros((0, 8), np.uint8), ValueError, "is empty"),
        (np.full((8, 8), np.nan, np.float32), ValueError, "64 NaN or infinite values"),
    ],
)
def test_bad_inputs_raise_clear_errors(predictor, image, error, match) -> None:
    with pytest.raises(error, match=match):
        predictor.predict([image])


def test_bad_arguments_raise_clear_errors(run, predictor) -> None:
    with pytest.raises(TypeError, match="takes a list of images"):
        predictor.predict_batch(np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="batch_size=0 must be >= 1"):
        predictor.predict_batch([np.zeros((8, 8), np.uint8)], batch_size=0)
    with pytest.raises(ValueError, match="precision='64'"):
        Predictor(predictor.module, precision="64")
    with pytest.raises(FileNotFoundError, match="not a model folder"):
        Predictor.from_pretrained(run["checkpoint"])


def test_options_follow_the_checkpoint_and_can_be_set(run, predictor) -> None:
    assert (predictor.loader_size, predictor.high_bit_norm, predictor.threshold) == (
        64,
        "percentile",
        0.0,
    )
    custom = Predictor.from_checkpoint(
        run["checkpoint"], loader_size=96, high_bit_norm="bit_depth", threshold=1.5
    )
    assert (custom.loader_size, custom.high_bit_norm, custom.threshold) == (96, "bit_depth", 1.5)
    image = np.random.default_rng(2).integers(0, 255, (40, 40), dtype=np.uint8)
    result = custom.predict(image)
    expected = torch.sigmoid(torch.tensor(1.5)).item()
    assert np.array_equal(result.mask, result.probability > np.float32(expected))
    bf16 = Predictor(predictor.module, precision="bf16-mixed").predict(image)  # CPU autocast
    assert bf16.probability.dtype == np.float32
    assert np.abs(bf16.probability - predictor.predict(image).probability).max() < 0.05


def test_model_folder_round_trip_without_pickle(run, predictor, tmp_path) -> None:
    """save_pretrained writes config.json + model.safetensors; the folder rebuilds the same
    predictions through Predictor.from_pretrained and IRSAMLitModule.from_checkpoint."""
    folder = predictor.save_pretrained(tmp_path / "model")
    assert sorted(p.name for p in folder.iterdir()) == [CONFIG_FILE, WEIGHTS_FILE]
    config = json.loads((folder / CONFIG_FILE).read_text())
    assert config["net"]["checkpoint"] is None
    assert config["net"]["_target_"] == "irsam.models.build.build_irsam_tiny"
    assert config["pretrained_weights"] == str(run["weights"])
    assert (config["loader_size"], config["encoder_size"]) == (64, 128)
    assert (config["threshold"], config["high_bit_norm"]) == (0.0, "percentile")
    assert config["metrics"]["fa_rule"] == "component" and "threshold" not in config["metrics"]
    assert config["irsam_version"] == __import__("irsam").__version__
    with safe_open(folder / WEIGHTS_FILE, framework="pt") as weights:  # no pickle inside
        assert weights.metadata()["irsam_version"] == config["irsam_version"]
        assert "image_encoder.patch_embed.seq.0.c.weight" in set(weights.keys())
    images = [np.random.default_rng(3).integers(0, 65535, (50, 30), dtype=np.uint16)]
    again = Predictor.from_pretrained(folder).predict(images)[0]
    first = predictor.predict(images)[0]
    assert np.array_equal(again.mask, first.mask)
    assert np.array_equal(again.probability, first.probability)
    module = IRSAMLitModule.from_checkpoint(folder)
    assert checkpoint_sizes(module) == (64, 128)
    assert module.datamodule_hparams["high_bit_norm"] == "percentile"


def test_model_folder_errors_name_the_file(predictor, tmp_path) -> None:
    folder = predictor.save_pretrained(tmp_path / "model")
    config = json.loads((folder / CONFIG_FILE).read_text())
    config["loss"]["_target_"] = "os.system"
    (folder / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"model: config.json builds objects .*os\.system"):
        Predictor.from_pretrained(folder)
    (folder / CONFIG_FILE).write_text(json.dumps({**config, "format_version": 99}))
    with pytest.raises(CheckpointError, match="format_version 99.*Upgrade irsam"):
        IRSAMLitModule.from_checkpoint(folder)
    (folder / CONFIG_FILE).write_text("{")
    with pytest.raises(CheckpointError, match="config.json is not valid JSON"):
        IRSAMLitModule.from_checkpoint(folder)
    (folder / WEIGHTS_FILE).write_bytes(b"truncated")
    predictor.save_pretrained(tmp_path / "other")
    (tmp_path / "other" / WEIGHTS_FILE).write_bytes(b"truncated")
    with pytest.raises(CheckpointError, match="model.safetensors is not a readable safetensors"):
        IRSAMLitModule.from_checkpoint(tmp_path / "other")
    (tmp_path / "other" / WEIGHTS_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors does not exist"):
        IRSAMLitModule.from_checkpoint(tmp_path / "other")


def test_export_format_pretrained_writes_a_checked_folder(run, predictor, tmp_path) -> None:
    """``python export.py format=pretrained output=DIR`` (the task, in process) writes a folder
    that the Predictor and predict.py read."""
    from irsam.tasks.export import export_task

    cfg = compose_config(
        "export",
        tmp_path / "run",
        [
            f"ckpt_path={run['checkpoint']}",
            "format=pretrained",
            f"output={tmp_path / 'model'}",
            "extras.print_config=false",
        ],
    )
    report, _ = export_task(cfg)
    assert report["format"] == "pretrained" and report["output"] == str(tmp_path / "model")
    assert report["check"][0]["max_abs_diff"] == 0.0
    image = np.random.default_rng(4).integers(0, 255, (33, 47), dtype=np.uint8)
    exported = Predictor.from_pretrained(tmp_path / "model").predict(image)
    assert np.array_equal(exported.probability, predictor.predict(image).probability)
    inputs = tmp_path / "inputs"  # predict.py takes the folder as its ckpt_path
    inputs.mkdir()
    (inputs / "a.png").write_bytes(encode_png(image))
    _predict_py({"checkpoint": tmp_path / "model"}, inputs, tmp_path / "out", batch_size=1)
    _assert_same_as_written([exported], ["a"], tmp_path / "out")


def test_peft_adapters_are_merged_into_the_folder(tmp_path) -> None:
    """A module with LoRA adapters saves a plain network (adapters merged into a copy: the module
    keeps its adapters) that computes the adapted function."""
    pytest.importorskip("peft", reason="the optional `peft` package is not installed")
    from hydra.utils import instantiate

    from irsam.models.peft import has_peft

    cfg = compose_config("train", tmp_path / "run", [*TINY_TRAIN_OVERRIDES, "peft=lora"])
    torch.manual_seed(0)
    module = instantiate(cfg.model).eval()
    with torch.no_grad():  # a non-zero adapter update, so that merging matters
        for name, parameter in module.net.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.05)
    module.save_pretrained(tmp_path / "model")
    assert has_peft(module.net)
    rebuilt = IRSAMLitModule.from_checkpoint(tmp_path / "model")
    assert not has_peft(rebuilt.net) and rebuilt.hparams.peft is None
    images = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        torch.testing.assert_close(
            rebuilt(images)["mask_logits"], module(images)["mask_logits"], atol=1e-4, rtol=1e-4
        )


def _legacy_copy(checkpoint: Path, weights: Path, destination: Path) -> Path:
    """``checkpoint`` as an older irsam wrote it: the weights file inside ``net.checkpoint``."""
    data = torch.load(checkpoint, map_location="cpu", weights_only=True)
    hparams = dict(data["hyper_parameters"])
    hparams.pop("pretrained_weights")
    hparams["net"] = {**hparams["net"], "checkpoint": str(weights)}
    torch.save({**data, "hyper_parameters": hparams}, destination)
    return destination


def test_load_from_checkpoint_without_the_pretrained_weights_file(run, tmp_path) -> None:
    """Lightning's load_from_checkpoint rebuilds a module fine-tuned from a weights file that no
    longer exists, for checkpoints of this layout and of the older one (the path inside
    ``net.checkpoint``)."""
    checkpoint, weights = run["checkpoint"], run["weights"]
    assert not weights.exists()
    stored = torch.load(checkpoint, map_location="cpu", weights_only=True)["hyper_parameters"]
    assert stored["net"]["checkpoint"] is None
    assert stored["pretrained_weights"] == str(weights)
    reference = IRSAMLitModule.from_checkpoint(checkpoint)
    images = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        expected = reference(images)["mask_logits"]
    legacy = _legacy_copy(checkpoint, weights, tmp_path / "legacy.ckpt")
    for path in (checkpoint, legacy):
        module = IRSAMLitModule.load_from_checkpoint(path).eval()
        assert module.hparams.net["checkpoint"] is None
        assert module.hparams.pretrained_weights == str(weights)
        with torch.no_grad():
            torch.testing.assert_close(module(images)["mask_logits"], expected)
    assert checkpoint_sizes(IRSAMLitModule.from_checkpoint(legacy)) == (64, 128)


def _run_python(code: str, *flags: str) -> str:
    """Run ``code`` in a fresh interpreter from the repository root; returns its stdout."""
    result = subprocess.run(
        [sys.executable, *flags, "-c", code],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_import_irsam_loads_no_framework() -> None:
    """``import irsam`` leaves Lightning, Hydra and OpenCV unloaded; the public names resolve on
    first use."""
    code = (
        "import sys, irsam\n"
        "print(sorted(m for m in ('lightning', 'hydra', 'cv2', 'torch') if m in sys.modules))\n"
        "print(irsam.__version__, sorted(irsam.__all__))\n"
        "print(all(name in dir(irsam) for name in irsam.__all__))\n"
    )
    lines = _run_python(code).splitlines()
    assert lines[0] == "[]"
    assert lines[1].startswith("0.1.0 ['IRSAMLitModule', 'IRSTDMetrics', 'Prediction', 'Predictor'")
    assert lines[2] == "True"
    with pytest.raises(AttributeError, match="no attribute 'Predicter'"):
        __import__("irsam").Predicter  # noqa: B018


@pytest.mark.slow
def test_public_names_and_python_O_grey_uint8(run, predictor, tmp_path) -> None:
    """Under ``python -O`` (asserts stripped), irsam.Predictor segments a grey uint8 image as in
    this process; irsam.IRSAMLitModule, IRSTDMetrics and model_registry resolve."""
    image = np.random.default_rng(5).integers(0, 255, (41, 59), dtype=np.uint8)
    image[20:23, 30:33] = 255
    np.save(tmp_path / "grey.npy", image)
    code = (
        "import sys, numpy as np, irsam\n"
        f"p = irsam.Predictor.from_checkpoint({str(run['checkpoint'])!r})\n"
        f"r = p.predict(np.load({str(tmp_path / 'grey.npy')!r}))\n"
        f"np.save({str(tmp_path / 'probability.npy')!r}, r.probability)\n"
        f"np.save({str(tmp_path / 'mask.npy')!r}, r.mask)\n"
        "assert False, 'asserts run'\n"  # stripped by -O
        "print('lightning' in sys.modules, sorted(irsam.model_registry)[:1])\n"
        "print(irsam.IRSAMLitModule.__name__, irsam.IRSTDMetrics.__name__)\n"
    )
    lines = _run_python(code, "-O").splitlines()
    assert lines == ["True ['irsam_sam2_hiera_b+']", "IRSAMLitModule IRSTDMetrics"]
    here = predictor.predict(image)  # another process: float results agree up to rounding
    probability = np.load(tmp_path / "probability.npy")
    assert probability.shape == image.shape and probability.dtype == np.float32
    np.testing.assert_allclose(probability, here.probability, rtol=0, atol=1e-5)
    mask = np.load(tmp_path / "mask.npy")
    near_threshold = np.abs(here.probability - 0.5) < 1e-5
    np.testing.assert_array_equal(mask[~near_threshold], here.mask[~near_threshold])


def test_readme_snippet_segments_a_uint16_frame(run, tmp_path) -> None:
    """The README's Python block, run as written (file names filled in) on a uint16 frame."""
    frame = np.random.default_rng(6).integers(0, 16383, (48, 80), dtype=np.uint16)
    np.save(tmp_path / "sensor_frame.npy", frame)
    code = README_SNIPPET.replace('"<file.ckpt>"', repr(str(run["checkpoint"])))
    namespace: dict = {}
    code = code.replace('"sensor_frame.npy"', repr(str(tmp_path / "sensor_frame.npy")))
    exec(code, namespace)  # noqa: S102 - the documented snippet itself
    result = namespace["result"]
    assert result.mask.shape == (48, 80) and result.probability.dtype == np.float32
    assert isinstance(result.targets, list)


def test_load_from_checkpoint_of_an_adapter_only_checkpoint(tmp_path) -> None:
    """An adapter-only LoRA checkpoint rebuilds through load_from_checkpoint on its base weights
    (``pretrained_weights``), as through from_checkpoint; without them the error names the fix."""
    pytest.importorskip("peft", reason="the optional `peft` package is not installed")
    from irsam.models import build_irsam_tiny, save_model_weights

    base = tmp_path / "base.pt"
    torch.manual_seed(0)
    save_model_weights(build_irsam_tiny(encoder_size=128), base)
    overrides = [
        *TINY_TRAIN_OVERRIDES,
        "peft=lora",
        f"model.net.checkpoint={base}",
        "trainer.limit_train_batches=1",
        "trainer.limit_val_batches=1",
        "callbacks.sample_predictions=null",
        "test=false",
    ]
    train(compose_config("train", tmp_path / "run", overrides))
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    images = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        expected = IRSAMLitModule.from_checkpoint(last)(images)["mask_logits"]
        loaded = IRSAMLitModule.load_from_checkpoint(last).eval()
        torch.testing.assert_close(loaded(images)["mask_logits"], expected)
    base.unlink()
    with pytest.raises(CheckpointError, match=r"last\.ckpt.*base SAM/MobileSAM weights"):
        IRSAMLitModule.load_from_checkpoint(last)
