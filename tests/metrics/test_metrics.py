# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""IRSTD metrics on hand-built masks with hand-computed values (docs/metrics.md)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy import ndimage

from irsam.metrics import (
    EPS,
    EXTRAS,
    Component,
    IRSTDMetrics,
    PdFaCurve,
    build_metrics,
    connected_components,
    image_stats,
    label_components,
    match_components,
)


def logits_of(mask: np.ndarray, value: float = 5.0) -> torch.Tensor:
    """``1×1×H×W`` float32 logits: +value on the mask, −value elsewhere."""
    return torch.from_numpy(np.where(mask, value, -value).astype(np.float32))[None, None]


def target_of(mask: np.ndarray) -> torch.Tensor:
    """``1×1×H×W`` uint8 target in {0, 255}."""
    return torch.from_numpy(mask.astype(np.uint8) * 255)[None, None]


def score(pairs: list[tuple[np.ndarray, np.ndarray]], **kwargs: object) -> dict[str, float]:
    """IRSTDMetrics over (prediction mask, target mask) pairs, one update per image."""
    metric = IRSTDMetrics(**kwargs)
    for pred, gt in pairs:
        metric.update(logits_of(pred), target_of(gt))
    return {key: float(value) for key, value in metric.compute().items()}


def masks(shape: tuple[int, int], *pixels: tuple[int, int]) -> np.ndarray:
    """Bool mask of ``shape`` with the given (row, col) pixels set."""
    mask = np.zeros(shape, dtype=bool)
    for row, col in pixels:
        mask[row, col] = True
    return mask


def test_perfect_match() -> None:
    gt = np.zeros((10, 10), dtype=bool)
    gt[2:4, 2:4] = True
    result = score([(gt, gt)])
    assert result["IoU"] == 4 / (EPS + 4) and result["nIoU"] == 4 / (EPS + 4)
    assert result["Pd"] == 1.0 and result["Fa"] == 0.0


@pytest.mark.parametrize(
    "offset, hit",
    [
        ((2, 0), True),
        ((0, -2), True),
        ((2, 2), True),  # 2.83 px
        ((-2, -2), True),
        ((3, 0), False),  # exactly 3.0 px is a miss
        ((0, -3), False),
        ((4, 0), False),
    ],
)
def test_centroid_offsets_one_pixel(offset: tuple[int, int], hit: bool) -> None:
    gt = masks((21, 21), (10, 10))
    pred = masks((21, 21), (10 + offset[0], 10 + offset[1]))
    result = score([(pred, gt)])
    assert result["Pd"] == (1.0 if hit else 0.0)
    assert result["Fa"] == (0.0 if hit else 1 / 441)
    assert result["IoU"] == 0.0  # no pixel overlap: a hit is decided by the centroid only


def test_fractional_centroids_on_both_sides_of_3px() -> None:
    gt = masks((21, 21), (10, 10))
    near = masks((21, 21), (10, 12), (10, 13))  # centroid col 12.5: 2.5 px, hit
    far = masks((21, 21), (10, 13), (10, 14))  # centroid col 13.5: 3.5 px, miss
    assert score([(near, gt)])["Pd"] == 1.0
    result = score([(far, gt)])
    assert result["Pd"] == 0.0 and result["Fa"] == 2 / 441


def test_partially_covered_large_target_centroid_decides() -> None:
    gt = np.zeros((13, 13), dtype=bool)
    gt[2:11, 2:11] = True  # 9×9, centroid (6, 6)
    three_cols = np.zeros_like(gt)
    three_cols[2:11, 2:5] = True  # centroid (6, 3): exactly 3 px, a miss despite 27 px of overlap
    result = score([(three_cols, gt)])
    assert result["Pd"] == 0.0
    assert result["Fa"] == 27 / 169
    assert result["IoU"] == 27 / (EPS + 81)
    four_cols = np.zeros_like(gt)
    four_cols[2:11, 2:6] = True  # centroid (6, 3.5): 2.5 px, a hit
    result = score([(four_cols, gt)])
    assert result["Pd"] == 1.0 and result["Fa"] == 0.0
    assert result["IoU"] == 36 / (EPS + 81)


@pytest.mark.parametrize("pixels", [((2, 2), (3, 3)), ((2, 3), (3, 2))])
def test_diagonally_touching_targets_are_one_component(pixels: tuple) -> None:
    gt = masks((8, 8), *pixels)
    stats = image_stats(gt, gt)
    assert stats.targets == 1 and stats.matched == 1
    assert len(connected_components(gt)) == 1
    assert score([(gt, gt)])["Pd"] == 1.0


def test_split_prediction_component_vs_legacy_area() -> None:
    gt = np.zeros((8, 10), dtype=bool)
    gt[5, 3:8] = True  # 1×5, centroid (5, 5)
    pred = np.zeros_like(gt)
    pred[5, 3:5] = True  # centroid (5, 3.5), first in raster order: matched
    pred[5, 6:8] = True  # centroid (5, 6.5): also within 3 px, but the target is taken
    result = score([(pred, gt)])
    assert result["Pd"] == 1.0
    assert result["IoU"] == 4 / (EPS + 5)
    assert result["Fa"] == 2 / 80
    # legacy_area: the unmatched half has the same area (2) as the matched half -> not counted
    assert score([(pred, gt)], fa_rule="legacy_area")["Fa"] == 0.0


def test_false_alarm_with_the_same_area_as_a_hit() -> None:
    gt = np.zeros((16, 16), dtype=bool)
    gt[2:4, 2:4] = True
    pred = gt.copy()
    pred[10:12, 10:12] = True  # 4 px false alarm, same area as the matched blob
    pred[13, 2:5] = True  # 3 px false alarm
    pred[13, 10:13] = True  # another 3 px false alarm
    default = score([(pred, gt)])
    legacy = score([(pred, gt)], fa_rule="legacy_area")
    assert default["Pd"] == legacy["Pd"] == 1.0
    assert default["Fa"] == (4 + 3 + 3) / 256
    assert legacy["Fa"] == (3 + 3) / 256  # each 3 px blob counted; the 4 px one is hidden


def test_merged_targets_detect_only_one() -> None:
    gt = masks((9, 9), (5, 4), (5, 6))  # two 1 px targets, not 8-adjacent
    pred = np.zeros_like(gt)
    pred[5, 4:7] = True  # one blob, centroid (5, 5): 1 px from both
    stats = image_stats(pred, gt)
    assert (stats.targets, stats.matched, stats.fa_pixels) == (2, 1, 0)
    result = score([(pred, gt)])
    assert result["Pd"] == 0.5 and result["Fa"] == 0.0
    assert result["IoU"] == 2 / (EPS + 3)


def test_greedy_first_candidate_not_nearest() -> None:
    gt = masks((16, 16), (10, 10))
    pred = masks((16, 16), (8, 10), (10, 10))  # (8,10) at 2 px comes first in raster order
    match = match_components(pred, gt)
    assert match.gt_to_pred == (0,)
    assert match.pred_matched == [True, False]
    result = score([(pred, gt)])
    assert result["Pd"] == 1.0
    assert result["Fa"] == 1 / 256  # the exact-overlap pixel is the false alarm
    assert result["IoU"] == 1 / (EPS + 2)


def test_targets_matched_in_raster_order() -> None:
    gt = masks((12, 12), (5, 5), (5, 9))
    pred = masks((12, 12), (5, 7))  # 2 px from both targets: the first target takes it
    assert match_components(pred, gt).gt_to_pred == (0, -1)
    assert score([(pred, gt)])["Pd"] == 0.5


def test_empty_prediction() -> None:
    gt = masks((6, 6), (1, 1), (1, 2))
    result = score([(np.zeros_like(gt), gt)])
    assert result == {"IoU": 0.0, "nIoU": 0.0, "Pd": 0.0, "Fa": 0.0}


def test_empty_target_gives_nan_pd_with_warning_and_counts_false_alarms() -> None:
    gt = np.zeros((5, 8), dtype=bool)
    pred = masks((5, 8), (0, 0), (4, 7))
    metric = IRSTDMetrics()
    metric.update(logits_of(pred), target_of(gt))
    with pytest.warns(RuntimeWarning, match="Pd"):
        result = metric.compute()
    assert math.isnan(float(result["Pd"]))
    assert float(result["Fa"]) == 2 / 40
    assert float(result["IoU"]) == 0.0 and float(result["nIoU"]) == 0.0


def test_no_images_fa_nan_never_raises() -> None:
    metric = IRSTDMetrics()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = metric.compute()
    assert math.isnan(float(result["Fa"])) and math.isnan(float(result["Pd"]))
    assert math.isnan(float(result["nIoU"])) and float(result["IoU"]) == 0.0


def test_niou_empty_policy_zero_vs_skip() -> None:
    gt = masks((4, 4), (1, 1))
    empty = np.zeros((4, 4), dtype=bool)
    pairs = [(gt, gt), (masks((4, 4), (3, 3)), empty), (empty, empty)]
    assert score(pairs)["nIoU"] == (1 / (EPS + 1)) / 3
    assert score(pairs, empty_policy="skip")["nIoU"] == 1 / (EPS + 1)


def test_one_pixel_target_hit_without_overlap() -> None:
    gt = masks((9, 9), (4, 4))
    pred = masks((9, 9), (4, 6))
    result = score([(pred, gt)])
    assert result["Pd"] == 1.0 and result["Fa"] == 0.0 and result["IoU"] == 0.0


def test_logits_exactly_zero_are_background() -> None:
    gt = masks((4, 4), (1, 1))
    logits = torch.full((1, 1, 4, 4), -3.0)
    logits[0, 0, 1, 1] = 0.0
    metric = IRSTDMetrics()
    metric.update(logits, target_of(gt))
    assert float(metric.compute()["Pd"]) == 0.0
    low = IRSTDMetrics(threshold=-1.0)
    low.update(logits, target_of(gt))
    assert float(low.compute()["Pd"]) == 1.0
    tiny = logits.clone()
    tiny[0, 0, 1, 1] = 1e-30
    metric = IRSTDMetrics()
    metric.update(tiny, target_of(gt))
    assert float(metric.compute()["IoU"]) == 1 / (EPS + 1)


def test_non_square_and_mixed_sizes_in_one_run() -> None:
    gt_a = masks((7, 13), (3, 3))
    pred_a = masks((7, 13), (3, 3), (6, 12))  # 1 false-alarm pixel
    gt_b = masks((10, 4), (2, 2), (8, 1))
    pred_b = masks((10, 4), (2, 2), (5, 0), (9, 3))  # (9,3) is 2.24 px from (8,1): a hit
    result = score([(pred_a, gt_a), (pred_b, gt_b)])
    assert result["Pd"] == 3 / 3
    assert result["Fa"] == (1 + 1) / (91 + 40)  # (5,0) is 3.16 px from (8,1): a false alarm
    assert result["IoU"] == 2 / (EPS + 2 + 1 + 3)
    assert result["nIoU"] == pytest.approx((1 / 2 + 1 / 4) / 2, rel=1e-15)


def test_fa_normaliser_fixed_size() -> None:
    gt = masks((16, 16), (4, 4))
    pred = masks((16, 16), (4, 4), (12, 12))
    assert score([(pred, gt)])["Fa"] == 1 / 256
    assert score([(pred, gt)], fa_normaliser=512)["Fa"] == 1 / 512**2
    assert score([(pred, gt)], fa_normaliser=None)["Fa"] == 1 / 256
    assert image_stats(pred, gt, fa_normaliser=256).pixels == 256**2


@pytest.mark.parametrize("value", ["fixed:256", "true_pixels", "512", 512.0, True, 0])
def test_fa_normaliser_is_none_or_a_positive_int(value: object) -> None:
    with pytest.raises(ValueError, match="metrics.fa_normaliser"):
        build_metrics({"fa_normaliser": value})
    with pytest.raises(ValueError, match="metrics.fa_normaliser"):
        PdFaCurve([0.0], fa_normaliser=value)


def random_batch(
    seed: int, count: int, shape: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sparse random logits ``N×1×H×W`` and {0, 255} targets."""
    generator = torch.Generator().manual_seed(seed)
    target = (torch.rand(count, 1, *shape, generator=generator) < 0.06).to(torch.uint8) * 255
    noise = torch.randn(count, 1, *shape, generator=generator)
    return noise - 1.8 + 2.5 * (target > 0), target


@pytest.mark.parametrize("fa_rule", ["component", "legacy_area"])
def test_batch_equals_single_images_and_target_encodings(fa_rule: str) -> None:
    logits, target = random_batch(0, 6, (20, 17))
    batched = IRSTDMetrics(fa_rule=fa_rule)
    batched.update(logits, target)
    single = IRSTDMetrics(fa_rule=fa_rule)
    for k in range(6):
        single.update(logits[k], target[k])  # B×H×W input with B = 1
    as_bool = IRSTDMetrics(fa_rule=fa_rule)
    as_bool.update(logits[:, 0], target[:, 0] > 0)
    as_float = IRSTDMetrics(fa_rule=fa_rule)
    as_float.update(logits.half(), (target > 0).float())
    expected = batched.compute()
    assert 0 < float(expected["Pd"]) < 1 and 0 < float(expected["IoU"]) < 1
    for other in (single, as_bool, as_float):
        result = other.compute()
        for key in expected:
            assert float(result[key]) == float(expected[key]), key


def test_state_dtypes_survive_dtype_moves_and_reset() -> None:
    metric = IRSTDMetrics()
    metric.to(torch.float16)
    assert metric.niou_sum.dtype == torch.float64 and metric.inter.dtype == torch.int64
    gt = masks((4, 4), (1, 1))
    metric.update(logits_of(gt), target_of(gt))
    assert int(metric.targets) == 1
    metric.reset()
    assert int(metric.targets) == 0 and metric.niou_sum.dtype == torch.float64


def test_shape_mismatch_raises_clearly() -> None:
    with pytest.raises(ValueError, match="same shape"):
        IRSTDMetrics().update(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5))


def test_connected_components_and_labels() -> None:
    mask = np.zeros((6, 7), dtype=bool)
    mask[0, 5:7] = True
    mask[1, 4] = True  # diagonal to (0,5): same component
    mask[4:6, 0:2] = True
    components = connected_components(mask)
    assert components == [
        Component(1 / 3, 5.0, 3, (0, 4, 2, 7)),
        Component(4.5, 0.5, 4, (4, 0, 6, 2)),
    ]
    labels, n = label_components(mask)
    assert n == 2 and labels[1, 4] == 1 and labels[5, 1] == 2
    assert connected_components(np.zeros((3, 3))) == []


def test_pd_fa_curve_hand_values() -> None:
    logits = torch.full((1, 1, 9, 9), -2.0)
    logits[0, 0, 4, 4] = 0.5  # the target
    logits[0, 0, 0, 0] = 2.0  # a confident false alarm
    target = torch.zeros(1, 1, 9, 9, dtype=torch.uint8)
    target[0, 0, 4, 4] = 1
    curve = PdFaCurve([-3.0, 0.0, 1.0, 3.0])
    curve.update(logits, target)
    result = curve.compute()
    assert result["threshold"].tolist() == [-3.0, 0.0, 1.0, 3.0]
    assert result["Pd"].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert result["Fa"].tolist() == [0.0, 1 / 81, 1 / 81, 0.0]
    assert result["IoU"].tolist() == [1 / (EPS + 81), 1 / (EPS + 2), 0.0, 0.0]
    probs = PdFaCurve([0.5, 1.0], probabilities=True)
    probs.update(logits, target)
    assert probs.compute()["Fa"].tolist() == [1 / 81, 0.0]


def test_components_and_centroids_match_skimage_on_random_masks() -> None:
    from skimage import measure

    rng = np.random.default_rng(5)
    for _ in range(20):
        mask = rng.random((int(rng.integers(5, 40)), int(rng.integers(5, 40)))) < 0.12
        regions = measure.regionprops(measure.label(mask, connectivity=2))
        expected = [(*r.centroid, int(r.area), tuple(int(v) for v in r.bbox)) for r in regions]
        assert [tuple(c) for c in connected_components(mask)] == expected


def test_each_mask_is_labelled_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """IRSTDMetrics with every extra labels each prediction and each target once; PdFaCurve
    labels each target once and each prediction once per threshold."""
    calls = []
    label = ndimage.label

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return label(*args, **kwargs)

    monkeypatch.setattr(ndimage, "label", counting)
    logits, target = random_batch(2, 3, (16, 16))
    IRSTDMetrics(extra=EXTRAS).update(logits, target)
    assert len(calls) == 2 * 3
    calls.clear()
    PdFaCurve([-0.5, 0.0, 0.5]).update(logits, target)
    assert len(calls) == 3 * (1 + 3)
