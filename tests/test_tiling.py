# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Tiled prediction (irsam.tiling): window layout, stitching, small targets of very large frames,
the real network window by window, ``predict.py tile=``, and the shrink warning."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import compose_config, make_dataset, write_train_checkpoint
from PIL import Image

from irsam.data.io import encode_png
from irsam.models import build_irsam_tiny
from irsam.predictor import Predictor
from irsam.tiling import (
    ShrinkWarning,
    TiledNetwork,
    shrink_factor,
    shrink_warning,
    tiled_logits,
    window_starts,
)

BACKGROUND, TARGET = 40.0, 255.0


def _bright(images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Stub network: positive logits where the image is brighter than mid-grey."""
    return {"mask_logits": images.mean(1, keepdim=True) - 128.0}


def _components(logits: torch.Tensor) -> int:
    """Number of 8-connected targets (logit > 0) of a 1×1×H×W map."""
    mask = (logits[0, 0] > 0).numpy().astype(np.uint8)
    return cv2.connectedComponents(mask, connectivity=8)[0] - 1


def test_window_starts_cover_the_frame_with_the_overlap() -> None:
    assert window_starts(100, 128, 16) == [0]
    assert window_starts(128, 128, 16) == [0]
    assert window_starts(300, 128, 16) == [0, 112, 172]
    assert window_starts(4000, 512, 64) == [0, 448, 896, 1344, 1792, 2240, 2688, 3136, 3488]


def test_a_two_pixel_target_in_a_4000px_frame_is_found_with_tiling() -> None:
    """A 2×2 target of a 4000² frame vanishes when the frame is resized whole to a 512 loader
    size; tiled prediction (512 windows at the training scale) finds it, and a target lying across
    a window border comes out as one target with the logits of the whole frame."""
    grey = torch.full((4000, 4000), BACKGROUND)
    grey[2001:2003, 1201:1203] = TARGET  # away from the sample points of a ×7.8 bilinear shrink
    grey[447:449, 447:449] = TARGET  # across the border of the first and second windows
    frame = grey[None, None].expand(1, 3, -1, -1)
    whole = F.interpolate(frame, size=(512, 512), mode="bilinear", align_corners=False)
    untiled = F.interpolate(
        _bright(whole)["mask_logits"], size=(4000, 4000), mode="bilinear", align_corners=False
    )
    assert float(untiled[0, 0, 2001:2003, 1201:1203].max()) < 0, "lost without tiling"
    logits = TiledNetwork(_bright, tile=512, overlap=64, window_size=512)(frame)["mask_logits"]
    assert logits.shape == (1, 1, 4000, 4000) and logits.dtype == torch.float32
    assert bool((logits[0, 0, 2001:2003, 1201:1203] > 0).all())
    assert _components(logits) == 2
    torch.testing.assert_close(logits, _bright(frame)["mask_logits"])


def test_stitching_averages_overlapping_windows() -> None:
    """Each pixel gets the mean of the windows covering it (a forward that returns the window's
    position makes the counts visible); frames smaller than the tile are one window."""
    calls = []

    def ones(windows: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(windows.shape))
        return torch.ones(windows.shape[0], 1, *windows.shape[-2:])

    images = torch.zeros(2, 3, 40, 70)
    logits = tiled_logits(ones, images, tile=32, overlap=8, windows_per_call=2)
    assert logits.shape == (2, 1, 40, 70) and torch.equal(logits, torch.ones_like(logits))
    # rows: starts 0, 8; cols: starts 0, 24, 38 -> 6 windows, 2 per call, each for 2 images
    assert calls == [(4, 3, 32, 32)] * 3

    def index(windows: torch.Tensor) -> torch.Tensor:
        return windows[:, :1]

    images = torch.arange(2 * 50, dtype=torch.float32).reshape(1, 1, 2, 50).expand(1, 3, 2, 50)
    torch.testing.assert_close(tiled_logits(index, images.contiguous(), 20, 5), images[:, :1])
    small = torch.rand(1, 3, 10, 12)
    torch.testing.assert_close(tiled_logits(index, small, 32, 8), small[:, :1])


def test_tiling_errors_name_the_key_and_the_fix() -> None:
    images = torch.zeros(1, 3, 64, 64)
    with pytest.raises(ValueError, match=r"tile=8: .*at least 16"):
        tiled_logits(lambda x: x[:, :1], images, 8, 0)
    with pytest.raises(ValueError, match=r"overlap=32: give an integer from 0 to tile - 1 = 31"):
        TiledNetwork(_bright, tile=32, overlap=32)
    with pytest.raises(ValueError, match=r"B×3×H×W.*\(64, 64\)"):
        tiled_logits(lambda x: x[:, :1], torch.zeros(64, 64), 32, 8)
    with pytest.raises(ValueError, match=r"forward returned shape \(4, 1, 16, 16\).*N×C×h×w"):
        tiled_logits(lambda x: x[:, :1, :16, :16], images, 32, 0)


def test_the_real_tiny_network_window_by_window() -> None:
    """With the real network: a frame no larger than the tile is the network on the frame
    resized to the window size (as predict.py does untiled); in a larger frame, pixels covered
    by one window only hold that window's logits."""
    torch.manual_seed(0)
    net = build_irsam_tiny(encoder_size=64).eval()
    frame = torch.rand(1, 3, 90, 75) * 255
    with torch.no_grad():
        single = TiledNetwork(net, tile=96, overlap=8, window_size=64)(frame)["mask_logits"]
        resized = F.interpolate(frame, size=(64, 64), mode="bilinear", align_corners=False)
        expected = F.interpolate(
            net(resized)["mask_logits"], size=(90, 75), mode="bilinear", align_corners=False
        )
        torch.testing.assert_close(single, expected)
        tiled = TiledNetwork(net, tile=48, overlap=16, window_size=48)(frame)["mask_logits"]
        first = net(frame[:, :, :48, :48])["mask_logits"]
    assert tiled.shape == (1, 1, 90, 75)
    torch.testing.assert_close(tiled[..., :32, :27], first[..., :32, :27])  # next windows: 32, 27


def _checkpoint(path: Path) -> Path:
    """A train.py-layout checkpoint of a random tiny network (encoder 64, loader size 32)."""
    net = {
        "_target_": "irsam.models.build.build_irsam_tiny",
        "encoder_size": 64,
        "checkpoint": None,
    }
    return write_train_checkpoint(path, net, loader_size=32)


@pytest.mark.usefixtures("one_thread")
def test_predict_py_tile_writes_native_masks_from_stitched_logits(tmp_path: Path, caplog) -> None:
    """``predict.py tile=32 overlap=8``: native-size masks equal to the stitched logits of the
    checkpoint's network (windows resized to its loader size) thresholded at 0; with ground truth
    the frames are scored at native size; the same run untiled warns that the 160-px frame is
    shrunk 5× to the 32 px loader size."""
    from irsam.tasks.predict import predict

    ckpt = _checkpoint(tmp_path / "last.ckpt")
    frames = tmp_path / "frames"
    frames.mkdir()
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (160, 120), np.uint8)
    (frames / "f0.png").write_bytes(encode_png(image))
    common = [
        f"ckpt_path={ckpt}",
        f"input={frames}",
        "trainer=cpu",
        "extras.print_config=false",
        "trainer.enable_progress_bar=false",
        "save_overlays=false",
    ]
    out = tmp_path / "tiled"
    summary, built = predict(
        compose_config(
            "predict", tmp_path / "run", [*common, f"output={out}", "tile=32", "overlap=8"]
        )
    )
    assert summary["images"] == 1
    mask = np.asarray(Image.open(out / "masks" / "f0.png"))
    assert mask.shape == (160, 120)
    frame = torch.from_numpy(image.astype(np.float32))[None, None].expand(1, 3, -1, -1)
    with torch.no_grad():
        logits = TiledNetwork(built["model"].net, tile=32, overlap=8, window_size=32)(frame)
    expected = (logits["mask_logits"][0, 0] > 0).numpy()
    assert ((mask > 0) == expected).mean() > 0.999
    api = Predictor.from_checkpoint(ckpt, tile=32, overlap=8).predict(image)
    np.testing.assert_array_equal(api.mask, mask > 0)  # the Python API tiles as predict.py does

    dataset = make_dataset(tmp_path / "data", ["a", "b"], size=(100, 70))
    scored, _ = predict(
        compose_config(
            "predict",
            tmp_path / "run_gt",
            [common[0], *common[2:], f"input={dataset / 'images'}", f"gt={dataset / 'masks'}"]
            + [f"output={tmp_path / 'gt'}", "tile=32", "overlap=8"],
        )
    )
    assert scored["images"] == 2 and "test/IoU" in scored
    assert np.asarray(Image.open(tmp_path / "gt" / "masks" / "a.png")).shape == (100, 70)

    with caplog.at_level(logging.WARNING, logger="irsam.tiling"):
        predict(compose_config("predict", tmp_path / "run2", [*common, f"output={tmp_path / 'w'}"]))
    assert "160×120 frames are shrunk 5.0×" in caplog.text and "tile=" in caplog.text


def test_shrink_warning_names_the_factor_and_the_smallest_surviving_target(caplog) -> None:
    assert shrink_factor((6000, 6000), (512, 512), 1024) == pytest.approx(6000 / 512)
    assert shrink_factor((256, 256), (512, 512), 1024) == 1.0
    assert shrink_factor((1024, 1024), (1024, 1024), 256) == 4.0
    assert shrink_warning((1000, 800), 3.9) is None
    message = shrink_warning((6000, 6000), 6000 / 128)
    assert "shrunk 46.9×" in message and "narrower than about 47 px" in message
    callback = ShrinkWarning(encoder_size=1024)
    batch = {
        "orig_size": torch.tensor([[6000, 6000]] * 2),
        "valid_size": torch.tensor([[512, 512]] * 2),
    }
    with caplog.at_level(logging.WARNING, logger="irsam.tiling"):
        callback.on_predict_batch_start(None, None, batch, 0)
        callback.on_predict_batch_start(None, None, batch, 1)
    assert caplog.text.count("shrunk 11.7×") == 1
