# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Run PyIRSTDMetrics 1.0.2 on saved cases and print its values as JSON (reference side of
tests/metrics/test_metrics_extra.py and ``benchmarks/benchmark.py --metrics-reference``).

Runs in its OWN interpreter, the one where ``pyirstdmetrics`` is installed (it pins numpy<2,
so it cannot share the project's environment)::

    python3 -m venv /work/venv-pyirstd
    /work/venv-pyirstd/bin/pip install pyirstdmetrics==1.0.2
    /work/venv-pyirstd/bin/python tests/metrics/reference/pyirstd_reference.py cases.npz --bins 11

``cases.npz`` holds ``prob_<k>`` (float64 ``H×W`` probabilities in [0, 1]) and ``mask_<k>``
(bool ``H×W``) for ``k = 0..n-1``. ``--time`` adds the seconds spent in ``update``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from py_irstd_metrics import (
    CMMetrics,
    DistanceOnlyMatching,
    FmeasureHandler,
    FPRHandler,
    HierarchicalIoUBasedErrorAnalysis,
    IoUHandler,
    MatchingBasedMetrics,
    OPDCMatching,
    PrecisionHandler,
    RecallHandler,
    ShootingRuleBasedProbabilityDetectionAndFalseAlarmRate,
)


def build(bins: int) -> dict:
    """The reference metric objects, configured like PyIRSTDMetrics' own example script."""
    handlers = {
        "iou": IoUHandler(with_dynamic=False, with_binary=True, sample_based=False),
        "niou": IoUHandler(with_dynamic=False, with_binary=True, sample_based=True),
        "f1": FmeasureHandler(with_dynamic=False, with_binary=True, sample_based=False, beta=1),
        "precision": PrecisionHandler(with_dynamic=True, with_binary=True, sample_based=False),
        "recall": RecallHandler(with_dynamic=True, with_binary=True, sample_based=False),
        "fpr": FPRHandler(with_dynamic=True, with_binary=False, sample_based=False),
    }
    return {
        "pixel": CMMetrics(num_bins=bins, threshold=0.5, metric_handlers=handlers),
        "opdc": MatchingBasedMetrics(
            num_bins=1, matching_method=OPDCMatching(overlap_threshold=0.5, distance_threshold=3)
        ),
        "dist": MatchingBasedMetrics(
            num_bins=1, matching_method=DistanceOnlyMatching(distance_threshold=3)
        ),
        "hiou": HierarchicalIoUBasedErrorAnalysis(
            num_bins=1, overlap_threshold=0.5, distance_threshold=3
        ),
        "shoot": ShootingRuleBasedProbabilityDetectionAndFalseAlarmRate(num_bins=1),
    }


def main() -> None:
    """Load the cases, update every reference metric, print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", help="npz file with prob_<k> and mask_<k>")
    parser.add_argument("--bins", type=int, default=11, help="CMMetrics num_bins")
    parser.add_argument("--time", action="store_true", help="report the update time")
    args = parser.parse_args()
    data = np.load(args.cases)
    count = sum(1 for key in data.files if key.startswith("prob_"))
    cases = [(data[f"prob_{k}"], data[f"mask_{k}"]) for k in range(count)]
    metrics = build(args.bins)
    start = time.perf_counter()
    for prob, mask in cases:
        for metric in metrics.values():
            metric.update(prob, mask)
    seconds = time.perf_counter() - start
    pixel = metrics["pixel"].get()
    out = {
        "iou": float(pixel["iou"]["binary"]),
        "niou": float(pixel["niou"]["binary"]),
        "f1": float(pixel["f1"]["binary"]),
        "precision": float(pixel["precision"]["binary"]),
        "recall": float(pixel["recall"]["binary"]),
        "mean_precision": pixel["precision"]["dynamic"].tolist(),
        "mean_recall": pixel["recall"]["dynamic"].tolist(),
        "mean_fpr": pixel["fpr"]["dynamic"].tolist(),
    }
    for name in ("opdc", "dist"):
        values = metrics[name].get()
        out[f"pd_{name}"] = float(values["probability_detection"][0])
        out[f"fa_{name}"] = float(values["false_alarm"][0])
        out[f"hiou_{name}"] = float(values["hiou"][0])
    out.update({key: float(value[0]) for key, value in metrics["hiou"].get().items()})
    shoot = metrics["shoot"].get()
    out["pd_shoot"] = float(shoot["probability_detection"][0])
    out["fa_shoot"] = float(shoot["false_alarm"][0])
    if args.time:
        out["seconds"] = seconds
        out["images"] = count
    print(json.dumps(out))


if __name__ == "__main__":
    main()
