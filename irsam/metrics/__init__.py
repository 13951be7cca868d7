# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""IRSTD metrics: IoU, nIoU, Pd and Fa exactly as defined in docs/metrics.md §1-6, and the extra
metrics of §7-11 (OPDC matching, hIoU and its error analysis, the shooting rule, pixel curves,
target-size bins, per-image scores) exactly as PyIRSTDMetrics 1.0.2 computes them.

* :mod:`irsam.metrics.functional`: per-image analysis on NumPy masks, one labelling per mask
  (:func:`count_image` → :class:`ImageStats`);
* :mod:`irsam.metrics.irstd`: the torchmetrics classes :class:`IRSTDMetrics` and
  :class:`PdFaCurve`, and :func:`build_metrics`;
* :mod:`irsam.metrics.report`: result tables, results.json / results.md, curve CSV and PNG;
* :mod:`irsam.metrics.compare`: several runs side by side.
"""

from irsam.metrics.functional import (
    EMPTY_POLICIES,
    EPS,
    FA_RULES,
    MATCH_DISTANCE,
    OPDC_OVERLAP,
    SHOOTING_RADII,
    SIZE_EDGES,
    Component,
    ComponentTable,
    CountOptions,
    CurveCounts,
    ImageStats,
    LabelledMask,
    MatchResult,
    OPDCCounts,
    OPDCResult,
    ShootingCounts,
    SizeBinCounts,
    connected_components,
    count_image,
    curve_thresholds,
    image_stats,
    label_components,
    logit,
    match_components,
    opdc_match,
    shooting_rule,
    size_labels,
)
from irsam.metrics.irstd import (
    ANCHOR_COUNTS,
    EXTRAS,
    IMAGE_ROW,
    NAME_BYTES,
    IRSTDMetrics,
    PdFaCurve,
    build_metrics,
)

__all__ = [
    "ANCHOR_COUNTS",
    "EMPTY_POLICIES",
    "EPS",
    "EXTRAS",
    "FA_RULES",
    "IMAGE_ROW",
    "MATCH_DISTANCE",
    "NAME_BYTES",
    "OPDC_OVERLAP",
    "SHOOTING_RADII",
    "SIZE_EDGES",
    "Component",
    "ComponentTable",
    "CountOptions",
    "CurveCounts",
    "IRSTDMetrics",
    "ImageStats",
    "LabelledMask",
    "MatchResult",
    "OPDCCounts",
    "OPDCResult",
    "PdFaCurve",
    "ShootingCounts",
    "SizeBinCounts",
    "build_metrics",
    "connected_components",
    "count_image",
    "curve_thresholds",
    "image_stats",
    "label_components",
    "logit",
    "match_components",
    "opdc_match",
    "shooting_rule",
    "size_labels",
]
