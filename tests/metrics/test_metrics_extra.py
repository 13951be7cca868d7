# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""OPDC / hIoU / error analysis, shooting rule, pixel curves, size bins and per-image scores
(docs/metrics.md §7-11) on hand-built masks, plus the PyIRSTDMetrics 1.0.2 comparison.

The comparison runs the reference in its own interpreter (it pins numpy<2). It is skipped unless
one is found: set ``IRSAM_PYIRSTD_PYTHON`` to a Python with ``pyirstdmetrics==1.0.2`` installed,
or create ``../venv-pyirstd`` next to the repository (see docs/metrics.md §12).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import PROJECT_ROOT

from irsam.metrics import (
    IRSTDMetrics,
    build_metrics,
    curve_thresholds,
    opdc_match,
    shooting_rule,
    size_labels,
)

ALL = ["pixel", "opdc", "shooting", "size_bins", "curves", "per_image"]


def logits_of(mask: np.ndarray, value: float = 5.0) -> torch.Tensor:
    """``1×1×H×W`` float32 logits: +value on the mask, −value elsewhere."""
    return torch.from_numpy(np.where(mask, value, -value).astype(np.float32))[None, None]


def target_of(mask: np.ndarray) -> torch.Tensor:
    """``1×1×H×W`` uint8 target in {0, 255}."""
    return torch.from_numpy(mask.astype(np.uint8) * 255)[None, None]


def box(shape: tuple[int, int], *boxes: tuple[int, int, int, int]) -> np.ndarray:
    """Bool mask with the boxes ``(row0, col0, row1, col1)`` (end exclusive) set."""
    mask = np.zeros(shape, dtype=bool)
    for r0, c0, r1, c1 in boxes:
        mask[r0:r1, c0:c1] = True
    return mask


def scores(pairs: list[tuple[np.ndarray, np.ndarray]], **kwargs: object) -> dict[str, float]:
    """IRSTDMetrics with every extra over (prediction, target) pairs, one update per image."""
    metric = IRSTDMetrics(extra=kwargs.pop("extra", ALL), **kwargs)
    for pred, gt in pairs:
        metric.update(logits_of(pred), target_of(gt))
    return {key: float(value) for key, value in metric.compute().items()}


# ------------------------------------------------------------------------------------ OPDC


def overlap_versus_distance() -> tuple[np.ndarray, np.ndarray]:
    """Target A (6×6, centroid (4.5, 4.5)) and a 6×12 prediction over it with IoU exactly 0.5
    but its centroid exactly 3.0 px away (a centroid-rule miss); target B (1 px at (20, 20)) and a
    2-px prediction 1.5 px away with no overlap (a distance-rule hit)."""
    gt = box((32, 32), (2, 2, 8, 8), (20, 20, 21, 21))
    pred = box((32, 32), (2, 2, 8, 14), (20, 21, 21, 23))
    return pred, gt


def test_opdc_overlap_rule_rescues_a_centroid_miss() -> None:
    pred, gt = overlap_versus_distance()
    result = opdc_match(pred, gt)
    assert result.matched.tolist() == [[True, False], [False, True]]
    assert result.iou[0, 0] == 0.5 and result.iou[1, 1] == 0.0
    values = scores([(pred, gt)])
    assert values["Pd"] == 0.5  # centroid rule: A is missed (distance 3.0 is not < 3)
    assert values["Fa"] == 72 / 32**2  # ... so its 72 px are false alarms
    assert values["Pd_OPDC"] == 1.0 and values["Fa_OPDC"] == 0.0
    assert values["seg_IoU"] == (36 / 72 + 0 / 3) / 2
    assert values["loc_IoU"] == 1.0 and values["hIoU"] == values["seg_IoU"]
    assert values["seg_itf_err"] == pytest.approx((36 / 72 + 2 / 3) / 2, abs=1e-15)
    assert values["seg_pcp_err"] == pytest.approx((0 + 1 / 3) / 2, abs=1e-15)
    assert values["seg_mrg_err"] == 0.0
    for key in ("loc_s2m_err", "loc_m2s_err", "loc_itf_err", "loc_pcp_err"):
        assert values[key] == 0.0, key


def test_opdc_overlap_step_keeps_only_overlap_pairs_of_the_distance_assignment() -> None:
    # One prediction overlaps A (IoU 0.5, centroid 3 px away) and lies 2.5 px from the one-pixel
    # target B. The minimum-distance assignment pairs it with B, whose IoU is 0, so the overlap
    # step keeps nothing and the distance step matches B: A is missed under both rules.
    gt = box((32, 32), (2, 2, 8, 8), (4, 10, 5, 11))
    pred = box((32, 32), (2, 2, 8, 14))
    result = opdc_match(pred, gt)
    assert result.matched.tolist() == [[False], [True]]
    assert result.candidate.tolist() == [[True], [True]]
    values = scores([(pred, gt)])
    assert values["Pd_OPDC"] == 0.5 and values["Pd"] == 0.5
    assert values["loc_s2m_err"] == 1 / 2  # A had a candidate but lost it: 1 of tp+fp+fn = 2
    assert values["seg_mrg_err"] == (36 - 0) / 72  # B's pair covers all of target A


def test_opdc_merged_targets_count_a_single_to_many_error() -> None:
    gt = box((12, 12), (5, 5, 6, 6), (5, 8, 6, 9))
    pred = box((12, 12), (5, 5, 6, 9))  # one 4-px blob over both, centroid 1.5 px from each
    values = scores([(pred, gt)])
    assert values["Pd_OPDC"] == 0.5 and values["loc_IoU"] == 0.5
    assert values["loc_s2m_err"] == 0.5 and values["loc_m2s_err"] == 0.0
    assert values["seg_IoU"] == 1 / 4
    assert values["seg_mrg_err"] == 1 / 4 and values["seg_itf_err"] == 2 / 4


@pytest.mark.filterwarnings("ignore:Pd \\(no ground-truth targets\\)")
def test_opdc_empty_images_follow_the_reference_phantom_rule() -> None:
    empty = np.zeros((16, 16), dtype=bool)
    blob = box((16, 16), (3, 3, 5, 5))
    padded = scores([(blob, empty)])
    assert padded["Pd_OPDC"] == 0.0  # tp 0, fn 1 (phantom target)
    assert padded["loc_itf_err"] == 0.5 and padded["loc_pcp_err"] == 0.5
    assert padded["Fa_OPDC"] == 4 / 256
    strict = scores([(blob, empty)], opdc_pad_empty=False)
    assert strict["loc_itf_err"] == 1.0 and strict["loc_pcp_err"] == 0.0
    assert strict["Pd_OPDC"] == 0.0 and strict["Fa_OPDC"] == 4 / 256


# ------------------------------------------------------------------------- shooting rule


@pytest.mark.parametrize(
    ("pixel", "detected", "false_pixels"),
    [((11, 11), 1, 0), ((12, 12), 0, 0), ((10, 15), 0, 1), ((14, 6), 0, 0), ((15, 10), 0, 1)],
)
def test_shooting_rule_boxes(pixel: tuple[int, int], detected: int, false_pixels: int) -> None:
    gt = box((24, 24), (10, 10, 11, 11))
    pred = box((24, 24), (pixel[0], pixel[1], pixel[0] + 1, pixel[1] + 1))
    assert shooting_rule(pred, gt) == (detected, 1, false_pixels)


def test_shooting_rule_clips_boxes_at_the_border_and_scores_datasets() -> None:
    gt = box((8, 8), (0, 0, 1, 1), (7, 7, 8, 8))
    pred = box((8, 8), (1, 1, 2, 2), (3, 3, 4, 4))
    assert shooting_rule(pred, gt) == (1, 2, 0)
    values = scores([(pred, gt), (box((8, 8), (0, 7, 1, 8)), np.zeros((8, 8), dtype=bool))])
    assert values["Pd_shoot"] == 1 / 2 and values["Fa_shoot"] == 1 / 128


# ---------------------------------------------------------------- size bins, per image, pixel


def test_size_bins_and_target_iou() -> None:
    gt = box((64, 64), (2, 2, 4, 4), (20, 20, 24, 25), (40, 40, 50, 50))  # areas 4, 20, 100
    pred = box((64, 64), (2, 2, 4, 5), (40, 40, 50, 50))  # hits the small and the large one
    values = scores([(pred, gt)])
    assert size_labels((9, 80)) == ["le9", "10_80", "gt80"]
    assert values["Pd_area_le9"] == 1.0 and values["tIoU_area_le9"] == 4 / 6
    assert values["Pd_area_10_80"] == 0.0 and values["tIoU_area_10_80"] == 0.0
    assert values["Pd_area_gt80"] == 1.0 and values["tIoU_area_gt80"] == 1.0
    alone = scores([(pred[:10, :10], gt[:10, :10])])
    assert math.isnan(alone["Pd_area_gt80"]) and alone["Pd_area_le9"] == 1.0


def test_per_image_report_lists_the_worst_images_by_name() -> None:
    metric = IRSTDMetrics(extra=["per_image"], worst_images=2)
    gt = box((16, 16), (4, 4, 6, 6))
    half = box((16, 16), (4, 4, 6, 5))
    empty = np.zeros((16, 16), dtype=bool)
    batch = [(gt, gt), (half, gt), (empty, gt), (empty, empty)]
    logits = torch.cat([logits_of(p) for p, _ in batch])
    target = torch.cat([target_of(g) for _, g in batch])
    metric.update(logits, target, names=["perfect", "half", "missed", "clean"])
    report = metric.report()
    assert [row["name"] for row in report["images"]] == ["missed", "half", "clean", "perfect"]
    assert [row["name"] for row in report["worst_images"]] == ["missed", "half"]
    assert report["images"][0]["missed"] == 1 and report["images"][1]["IoU"] == 0.5
    with pytest.raises(ValueError, match="names has 1 entries"):
        metric.update(logits, target, names=["x"])


def test_per_image_states_keep_float64_through_half_precision_moves() -> None:
    metric = IRSTDMetrics(extra=["per_image", "opdc"])
    metric.update(logits_of(box((8, 8), (1, 1, 3, 3))), target_of(box((8, 8), (1, 1, 3, 3))))
    metric.update(logits_of(box((8, 8), (1, 1, 3, 3))), target_of(box((8, 8))))
    metric = metric.to(torch.float16)
    assert (
        metric.image_rows[0].dtype == torch.float64 and metric.opdc_iou_sum.dtype == torch.float64
    )
    assert metric.image_names[0].dtype == torch.uint8
    assert [row["name"] for row in metric.report()["images"]] == ["#1", "#0"]


def test_pixel_precision_recall_f1() -> None:
    gt = box((10, 10), (0, 0, 2, 2))  # 4 px
    pred = box((10, 10), (0, 0, 2, 3))  # 6 px, 4 on target
    values = scores([(pred, gt)], extra=["pixel"])
    assert values["Precision"] == 4 / 6 and values["Recall"] == 1.0
    assert values["F1"] == pytest.approx(2 * (4 / 6) / (4 / 6 + 1), abs=1e-15)
    assert set(scores([(pred, gt)], extra=[])) == {"IoU", "nIoU", "Pd", "Fa"}


# ------------------------------------------------------------------------------- curves


def test_pixel_curves_count_probabilities_at_or_above_each_threshold() -> None:
    # probabilities 0.1, 0.3, 0.6, 0.9 on a 2×2 image; target = the 0.3 and 0.9 pixels
    probs = np.array([[0.1, 0.3], [0.6, 0.9]])
    logits = torch.from_numpy(np.log(probs / (1 - probs)))[None, None]
    target = torch.tensor([[[[0, 1], [0, 1]]]], dtype=torch.uint8)
    metric = IRSTDMetrics(extra=["curves"], curve_bins=5)  # thresholds 0, .25, .5, .75
    metric.update(logits, target)
    curves = metric.report()["curves"]
    assert curves["threshold"] == curve_thresholds(5).tolist() == [0.0, 0.25, 0.5, 0.75]
    assert curves["precision"] == [2 / 4, 2 / 3, 1 / 2, 1 / 1]
    assert curves["recall"] == [1.0, 1.0, 1 / 2, 1 / 2]
    assert curves["fpr"] == [1.0, 1 / 2, 1 / 2, 0.0]
    assert curves["mean_precision"] == curves["precision"]


def test_curves_and_sums_do_not_depend_on_the_batch_layout() -> None:
    generator = torch.Generator().manual_seed(3)
    target = (torch.rand(5, 1, 24, 24, generator=generator) < 0.06).to(torch.uint8)
    logits = torch.randn(5, 1, 24, 24, generator=generator) - 1.5 + 3.0 * target
    one, many = IRSTDMetrics(extra=ALL), IRSTDMetrics(extra=ALL)
    one.update(logits, target)
    for k in range(5):
        many.update(logits[k : k + 1], target[k : k + 1])
    a, b = one.report(), many.report()
    assert a["scalars"].keys() == b["scalars"].keys()
    for key, value in a["scalars"].items():
        assert value == pytest.approx(b["scalars"][key], abs=1e-12, nan_ok=True), key
    assert a["curves"]["precision"] == pytest.approx(b["curves"]["precision"], abs=1e-12)
    assert 0 < a["scalars"]["hIoU"] < 1 and 0 < a["scalars"]["Pd_shoot"] <= 1


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown name"):
        IRSTDMetrics(extra=["hiou"])
    with pytest.raises(ValueError, match="unknown key"):
        build_metrics({"threshold": 0.0, "extras": ["opdc"]})
    with pytest.raises(ValueError, match="r2 > r1 > 0"):
        IRSTDMetrics(extra=["shooting"], shooting_radii=(4, 1))
    metric = build_metrics({"threshold": 0.0, "extra": ["opdc"], "fa_rule": "legacy_area"})
    assert metric.extra == ("opdc",) and metric.fa_rule == "legacy_area"


# ------------------------------------------------------------------ PyIRSTDMetrics reference


def reference_python() -> str:
    """Path of a Python interpreter with pyirstdmetrics installed; skips the test otherwise."""
    candidates = [os.environ.get("IRSAM_PYIRSTD_PYTHON", "")]
    candidates.append(str(PROJECT_ROOT.parent / "venv-pyirstd" / "bin" / "python"))
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            check = subprocess.run(
                [candidate, "-c", "import py_irstd_metrics"], capture_output=True, check=False
            )
            if check.returncode == 0:
                return candidate
    pytest.skip(
        "no interpreter with pyirstdmetrics found: set IRSAM_PYIRSTD_PYTHON or create "
        "../venv-pyirstd (docs/metrics.md §12)"
    )


def reference_cases(seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Generated 1×1×H×W logit / {0,1} target cases of several sizes: blobs hit, shifted,
    merged, missed, false alarms, target-free and prediction-free images."""
    rng = np.random.default_rng(seed)
    cases = []
    for k in range(24):
        height, width = [(48, 48), (40, 56), (64, 32)][k % 3]
        gt = np.zeros((height, width), dtype=bool)
        score = rng.normal(-4.0, 1.5, (height, width))
        for _ in range(0 if k % 7 == 3 else int(rng.integers(1, 5))):
            r, c = int(rng.integers(2, height - 8)), int(rng.integers(2, width - 8))
            h, w = int(rng.integers(1, 7)), int(rng.integers(1, 7))
            gt[r : r + h, c : c + w] = True
            if rng.random() < 0.8:
                dr, dc = (int(v) for v in rng.integers(-2, 3, 2))
                score[max(r + dr, 0) : r + dr + h + int(rng.integers(0, 4)), max(c + dc, 0) :][
                    :, : w + int(rng.integers(0, 4))
                ] += 8.0
        for _ in range(int(rng.integers(0, 3))):
            r, c = int(rng.integers(0, height - 3)), int(rng.integers(0, width - 3))
            score[r : r + 2, c : c + 3] += 7.0
        if k % 11 == 5:
            score = np.full((height, width), -6.0) + rng.normal(0, 0.5, (height, width))
        score = np.where(np.abs(score) < 1e-3, 1e-3, score)  # no logit within 1e-3 of 0
        cases.append(
            (
                torch.from_numpy(score.astype(np.float32))[None, None],
                torch.from_numpy(gt.astype(np.uint8))[None, None],
            )
        )
    hand = [overlap_versus_distance()]
    hand.append((box((32, 32), (2, 2, 8, 14)), box((32, 32), (2, 2, 8, 8), (4, 10, 5, 11))))
    hand.append((box((12, 12), (5, 5, 6, 9)), box((12, 12), (5, 5, 6, 6), (5, 8, 6, 9))))
    cases += [(logits_of(pred), target_of(gt) // 255) for pred, gt in hand]
    return cases


def run_reference(python: str, cases: list, bins: int, folder: Path) -> dict:
    """Save the cases as probabilities and run reference/pyirstd_reference.py on them."""
    arrays = {}
    for k, (logits, target) in enumerate(cases):
        arrays[f"prob_{k}"] = torch.sigmoid(logits[0, 0].double()).numpy()
        arrays[f"mask_{k}"] = target[0, 0].numpy().astype(bool)
    path = folder / "cases.npz"
    np.savez(path, **arrays)
    script = PROJECT_ROOT / "tests" / "metrics" / "reference" / "pyirstd_reference.py"
    done = subprocess.run(
        [python, str(script), str(path), "--bins", str(bins)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_matches_pyirstdmetrics(tmp_path: Path) -> None:
    python = reference_python()
    cases = reference_cases()
    bins = 11
    ref = run_reference(python, cases, bins, tmp_path)
    metric = IRSTDMetrics(extra=ALL, curve_bins=bins)
    for logits, target in cases:
        metric.update(logits, target)
    report = metric.report()
    ours, curves = report["scalars"], report["curves"]
    pairs = {
        "iou": "IoU",
        "niou": "nIoU",
        "f1": "F1",
        "precision": "Precision",
        "recall": "Recall",
        "pd_dist": "Pd",
        "fa_dist": "Fa",
        "pd_opdc": "Pd_OPDC",
        "fa_opdc": "Fa_OPDC",
        "hiou_opdc": "hIoU",
        "pd_shoot": "Pd_shoot",
        "fa_shoot": "Fa_shoot",
    }
    for key in ("seg_iou", "loc_iou"):
        pairs[key] = key.replace("iou", "IoU")
    for key in ("seg_mrg_err", "seg_itf_err", "seg_pcp_err"):
        pairs[key] = key
    for key in ("loc_s2m_err", "loc_m2s_err", "loc_itf_err", "loc_pcp_err"):
        pairs[key] = key
    for theirs, mine in pairs.items():
        assert ours[mine] == pytest.approx(ref[theirs], rel=1e-12, abs=1e-15), (theirs, mine)
    # the reference lists thresholds from high to low
    for name in ("mean_precision", "mean_recall", "mean_fpr"):
        assert curves[name] == pytest.approx(ref[name][::-1], rel=1e-12, abs=1e-15), name
    assert 0 < ours["hIoU"] < 1 and 0 < ours["loc_m2s_err"] + ours["loc_s2m_err"]


# ------------------------------------------------------------------------------- reports


def test_error_analysis_fractions_add_up_to_one() -> None:
    cases = reference_cases(seed=1)
    metric = IRSTDMetrics(extra=["opdc"])
    for logits, target in cases:
        metric.update(logits, target)
    v = {key: float(value) for key, value in metric.compute().items()}
    seg = v["seg_IoU"] + v["seg_mrg_err"] + v["seg_itf_err"] + v["seg_pcp_err"]
    loc = v["loc_IoU"] + v["loc_s2m_err"] + v["loc_m2s_err"] + v["loc_itf_err"]
    assert seg == pytest.approx(1.0, abs=1e-12)
    assert loc + v["loc_pcp_err"] == pytest.approx(1.0, abs=1e-12)


def test_report_writers(tmp_path: Path) -> None:
    from irsam.metrics.report import metric_rules, write_report

    metric = IRSTDMetrics(extra=ALL, curve_bins=5, worst_images=3)
    for k, (logits, target) in enumerate(reference_cases()[:6]):
        metric.update(logits, target, names=[f"case{k}"])
    markdown = write_report(metric.report(), tmp_path)
    assert "| <= 9 |" in markdown and "| 10-80 |" in markdown
    assert "### OPDC and hIoU" in markdown and "| Pd_OPDC (%) | Fa_OPDC (1e-6) |" in markdown
    assert markdown.count("| case") == 3
    pr = (tmp_path / "pr_curve.csv").read_text().splitlines()
    assert pr[0] == "threshold,precision,recall,f1,mean_precision,mean_recall" and len(pr) == 5
    assert len((tmp_path / "per_image.csv").read_text().splitlines()) == 7
    assert (tmp_path / "roc_curve.png").stat().st_size > 0
    rules = metric_rules(metric)
    assert rules["fa_rule"] == "component" and rules["opdc"]["pad_empty"] is True
    json.dumps(rules)
