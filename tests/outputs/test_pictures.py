# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Pictures that agree with the numbers: overlays coloured by the metrics' target matching, with
a legend; curves labelled with their thresholds; at least one sample panel per run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from irsam.metrics import image_stats
from irsam.metrics.report import curve_figure, pd_fa_figure, write_pd_fa_curve
from irsam.outputs.pictures import DETECTION, FALSE_ALARM, HIT, MISSED, overlay, panel

COLOURS = {"hit": HIT, "missed": MISSED, "false_alarm": FALSE_ALARM, "detection": DETECTION}


def _class_of(pixel: np.ndarray) -> str:
    """The class colour a pixel of an overlay on a black image shows (it is alpha × colour)."""
    pixel = pixel.astype(np.float64)
    if pixel.max() == 0:
        return "background"
    unit = pixel / np.linalg.norm(pixel)
    return max(COLOURS, key=lambda k: unit @ (np.array(COLOURS[k]) / np.linalg.norm(COLOURS[k])))


def _scene() -> tuple[np.ndarray, np.ndarray]:
    """40×40: one detected target (prediction shifted 1 px), one missed, one false alarm."""
    gt = np.zeros((40, 40), bool)
    pred = np.zeros((40, 40), bool)
    gt[5:9, 5:9] = True  # target 1: detected (centroid distance √2 < 3 px)
    pred[6:10, 6:10] = True
    gt[25:29, 25:29] = True  # target 2: missed
    pred[28:32, 4:8] = True  # false alarm
    return pred, gt


def test_overlay_colours_matched_targets_like_the_metrics() -> None:
    """The detected target's prediction pixels outside the mask are drawn as a hit (per-pixel
    colouring drew them as false alarms), the missed target as a miss, the false alarm red."""
    pred, gt = _scene()
    stats = image_stats(pred, gt)
    assert (stats.matched, stats.targets) == (1, 2) and stats.fa_pixels == 16  # what Pd/Fa say
    picture = overlay(np.zeros((40, 40)), pred, gt)
    assert _class_of(picture[9, 9]) == "hit"  # predicted, outside the mask, part of the hit
    assert _class_of(picture[6, 6]) == "hit"  # predicted target pixel
    assert _class_of(picture[5, 5]) == "hit"  # target pixel the prediction does not cover
    assert _class_of(picture[26, 26]) == "missed"
    assert _class_of(picture[29, 5]) == "false_alarm"
    assert _class_of(picture[20, 20]) == "background"
    body = picture[:40, :40]
    assert not np.any(np.all(body == np.array(DETECTION, np.uint8), axis=-1))


def test_overlay_has_a_legend_with_each_class_and_counts() -> None:
    """Below the image (whose pixels keep their coordinates) a strip shows a swatch per class."""
    pred, gt = _scene()
    picture = overlay(np.zeros((40, 40)), pred, gt)
    assert picture.shape[0] > 40 and picture.shape[1] >= 40
    strip = picture[40:]
    for colour in (HIT, MISSED, FALSE_ALARM):
        assert np.all(strip == np.array(colour, np.uint8), axis=-1).sum() >= 16, colour
    assert np.array_equal(overlay(np.zeros((40, 40)), pred, gt, legend=False), picture[:40, :40])


def test_overlay_without_ground_truth_uses_one_colour_and_says_so() -> None:
    """No ground truth: every predicted component in the detection colour, legend swatch too."""
    pred, _ = _scene()
    picture = overlay(np.zeros((40, 40)), pred)
    assert _class_of(picture[7, 7]) == "detection" and _class_of(picture[29, 5]) == "detection"
    strip = picture[40:]
    assert np.all(strip == np.array(DETECTION, np.uint8), axis=-1).sum() >= 16
    for colour in (HIT, MISSED, FALSE_ALARM):
        assert not np.any(np.all(picture == np.array(colour, np.uint8), axis=-1))


def test_panel_pads_columns_of_different_heights() -> None:
    tall = np.zeros((50, 10, 3), np.uint8)
    short = np.zeros((40, 10, 3), np.uint8)
    assert panel([short, tall], gap=2).shape == (50, 22, 3)


def test_pd_fa_curve_points_carry_their_thresholds(tmp_path: Path) -> None:
    """Every plotted Pd–Fa point (at most 8) is labelled with its logit threshold."""
    curve = {
        "threshold": [-2.0, -1.0, 0.0, 1.5],
        "Pd": [0.9, 0.8, 0.7, 0.5],
        "Fa": [4e-5, 2e-5, 1e-5, 0.0],
        "IoU": [0.3, 0.4, 0.5, 0.45],
    }
    figure = pd_fa_figure(curve)
    texts = {t.get_text() for t in figure.axes[0].texts}
    assert {"-2", "-1", "0", "1.5"} <= texts
    files = write_pd_fa_curve(curve, tmp_path)
    assert [f.name for f in files] == ["pd_fa_curve.csv", "pd_fa_curve.png"]
    assert (tmp_path / "pd_fa_curve.csv").read_text().splitlines()[0] == "threshold,Pd,Fa,IoU"


def test_pr_and_roc_curves_label_thresholds_evenly() -> None:
    """Long curves get at most 8 labels, spread over the thresholds, including the last."""
    thresholds = np.linspace(0, 1, 21)[:-1]
    values = list(np.linspace(1, 0, 20))
    curves = {"threshold": list(thresholds)}
    for key in ("recall", "precision", "fpr", "tpr"):
        curves[key] = values
        curves[f"mean_{key}"] = values
    for kind in ("pr", "roc"):
        texts = [t.get_text() for t in curve_figure(curves, kind).axes[0].texts]
        assert 2 <= len(texts) <= 8 and texts[0] == "0.00" and texts[-1] == "0.95"


class _Trainer:
    """The few trainer attributes SamplePredictionLogger reads."""

    def __init__(self, root: Path, max_epochs: int) -> None:
        self.sanity_checking = False
        self.is_global_zero = True
        self.current_epoch = 0
        self.max_epochs = max_epochs
        self.global_step = 0
        self.default_root_dir = str(root)
        self.loggers: list = []


class _Module:
    def __call__(self, image):
        import torch

        return {"mask_logits": torch.full((image.shape[0], 1, *image.shape[-2:]), -1.0)}


@pytest.mark.parametrize(
    "max_epochs,every,expected",
    [(2, 5, [0, 1]), (1, 5, [0]), (12, 5, [0, 4, 9, 11]), (3, 1, [0, 1, 2])],
)
def test_sample_panels_first_every_n_and_last_epoch(
    tmp_path: Path, max_epochs: int, every: int, expected: list[int]
) -> None:
    """Panels at the first validation epoch, every n epochs and the last: a short run has one."""
    import torch

    from irsam.outputs.writers import SamplePredictionLogger

    callback = SamplePredictionLogger(every_n_epochs=every, num_samples=1)
    trainer = _Trainer(tmp_path, max_epochs)
    batch = {"image": torch.zeros(1, 3, 16, 16), "mask": torch.zeros(1, 1, 16, 16)}
    for epoch in range(max_epochs):
        trainer.current_epoch = epoch
        callback.on_validation_epoch_start(trainer, _Module())
        callback.on_validation_batch_end(trainer, _Module(), None, batch, 0)
        callback.on_validation_epoch_end(trainer, _Module())
    written = sorted(int(p.stem.split("_")[1]) for p in (tmp_path / "samples").glob("*.png"))
    assert written == expected


def test_training_panel_shows_the_first_augmented_batch(tmp_path: Path) -> None:
    """The first training step writes image | target rows of the batch as the network receives
    it (pasted targets are in its mask); later steps write nothing."""
    import torch
    from PIL import Image

    from irsam.outputs.writers import SamplePredictionLogger

    callback = SamplePredictionLogger(num_samples=2)
    trainer = _Trainer(tmp_path, max_epochs=1)
    mask = torch.zeros(3, 1, 16, 16)
    mask[1, 0, 4:7, 9:11] = 1.0
    batch = {"image": torch.full((3, 3, 16, 16), 60.0), "mask": mask}
    callback.on_train_batch_start(trainer, _Module(), batch, 0)
    picture = np.asarray(Image.open(tmp_path / "samples" / "train_batch.png").convert("L"))
    target_column = picture[:, 16 + 2 :]  # after the image column and the white gap
    assert picture.shape[0] == 2 * 16  # two rows: num_samples
    assert (target_column[16:] > 127).sum() == 6 and (target_column[:16] > 127).sum() == 0
    (tmp_path / "samples" / "train_batch.png").unlink()
    trainer.global_step = 1
    callback.on_train_batch_start(trainer, _Module(), batch, 1)
    assert not (tmp_path / "samples" / "train_batch.png").exists()
