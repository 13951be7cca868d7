# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""IRSTD metrics: IoU, nIoU, Pd and Fa exactly as defined in docs/metrics.md §1-6, and the extra
metrics of §7-11 (OPDC matching, hIoU and its error analysis, the shooting rule, pixel curves,
target-size bins, per-image scores) exactly as PyIRSTDMetrics 1.0.2 computes them.

Two layers:

* **Pure functions** on NumPy boolean masks, usable without torchmetrics (the predict script and
  notebooks): :func:`label_components`, :func:`connected_components`, :func:`match_components`,
  :func:`image_stats`, :func:`opdc_match` and :func:`shooting_rule`.
* **torchmetrics classes** accumulating dataset-level sums: :class:`IRSTDMetrics` (the four
  anchors plus any ``extra`` metrics, one connected-component analysis per image; build it from
  a config with :func:`build_metrics`), the single-metric classes :class:`IoUMetric`,
  :class:`NIoUMetric`, :class:`PdMetric`, :class:`FaMetric`, and the threshold sweep
  :class:`PdFaCurve`.

Every state is a sum (int64 counts, float64 fractional sums) reduced with ``"sum"`` (the
per-image table is concatenated), so ``compute()`` / ``report()`` under ``torch.distributed``
(any world size, uneven shards) equal the single-process value on the union of the shards, up to
float64 summation order for the fractional sums.

When the options change the numbers:

* ``fa_rule="legacy_area"`` (DNANet, MSHNet, IRSAM, BasicIRSTD before 2024) differs from the
  default ``"component"`` only on images with an unmatched predicted component whose area equals
  the area of a matched component in the same image: the legacy rule does not count it, so its Fa
  is lower or equal.
* ``fa_normaliser=S`` divides by ``S*S`` per image instead of the true pixel count; it equals the
  default only when every image is ``S×S``. IRSAM uses 512, DNANet 256.
* ``empty_policy="skip"`` differs from ``"zero"`` only when some image has an empty target: those
  images are dropped from the nIoU mean instead of scoring 0, so nIoU is higher or equal.
"""

from __future__ import annotations

import inspect
import itertools
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from scipy import ndimage
from scipy.optimize import linear_sum_assignment
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.distributed import gather_all_tensors

from irsam.utils import get_logger

log = get_logger(__name__)

EPS: float = float(np.finfo(np.float64).eps)
"""The ε guard of IoU and nIoU: float64 machine epsilon, 2.22e-16 (``np.spacing(1)``)."""

MATCH_DISTANCE: float = 3.0
"""A predicted component detects a target iff their centroids are STRICTLY closer than this (px)."""

FA_RULES: tuple[str, ...] = ("component", "legacy_area")
EMPTY_POLICIES: tuple[str, ...] = ("zero", "skip")

_STRUCTURE_8 = np.ones((3, 3), dtype=bool)


class Component(NamedTuple):
    """One 8-connected component of a binary mask.

    Arguments:
      centroid_row (float): unweighted mean row of its pixels, full-image coordinates.
      centroid_col (float): unweighted mean column of its pixels.
      area (int): number of pixels.
      bbox (tuple[int, int, int, int]): ``(min_row, min_col, max_row, max_col)``, max exclusive
        (the skimage ``regionprops.bbox`` convention).
    """

    centroid_row: float
    centroid_col: float
    area: int
    bbox: tuple[int, int, int, int]


@dataclass(frozen=True)
class ImageStats:
    """Per-image counts behind every metric; dataset metrics are ratios of their sums.

    Arguments:
      inter (int): |P ∩ G|, predicted-positive target pixels.
      union (int): |P ∪ G|.
      pred_pixels (int): |P|.
      gt_pixels (int): |G|.
      matched (int): targets detected (one-to-one greedy centroid matching, §4).
      targets (int): ground-truth components (8-connected).
      fa_pixels (int): false-alarm pixels under the chosen ``fa_rule`` (§5).
      pixels (int): Fa denominator of this image: ``H*W``, or ``S*S`` with ``fa_normaliser=S``.
    """

    inter: int
    union: int
    pred_pixels: int
    gt_pixels: int
    matched: int
    targets: int
    fa_pixels: int
    pixels: int

    @property
    def iou(self) -> float:
        """Per-image IoU ``inter / (EPS + union)``: the nIoU summand (0 for an empty target).

        Returns:
          float: in [0, 1].
        """
        return self.inter / (EPS + self.union)


@dataclass(frozen=True)
class MatchResult:
    """Components of a prediction and a target and how they were matched.

    Arguments:
      pred (list[Component]): predicted components in label (raster) order.
      gt (list[Component]): target components in label (raster) order.
      gt_to_pred (tuple[int, ...]): for each target, the index into ``pred`` of the component
        that detected it, or -1 for a missed target.
    """

    pred: list[Component]
    gt: list[Component]
    gt_to_pred: tuple[int, ...]

    @property
    def pred_matched(self) -> list[bool]:
        """Whether each predicted component detected a target (False: a false alarm).

        Returns:
          list[bool]: one flag per entry of ``pred``.
        """
        hit = set(self.gt_to_pred)
        return [index in hit for index in range(len(self.pred))]


class _Table(NamedTuple):
    """Vectorised component properties (internal): float64 centroids, int64 areas, all ``[n]``."""

    rows: np.ndarray
    cols: np.ndarray
    areas: np.ndarray


# --------------------------------------------------------------------------------------------
# Pure functions
# --------------------------------------------------------------------------------------------


def _check_mask(mask: np.ndarray, name: str) -> np.ndarray:
    """Validate a 2-D mask and return it as a C-contiguous bool array.

    Arguments:
      mask (np.ndarray): ``H×W`` mask; non-zero is positive.
      name (str): argument name for the error message.
    Returns:
      np.ndarray: ``H×W`` bool.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"{name} must be a 2-D H×W mask, got shape {mask.shape}")
    return np.ascontiguousarray(mask, dtype=bool)


class _Labelled(NamedTuple):
    """Sparse 8-connected labelling of one mask (internal).

    Arguments:
      ids (np.ndarray): int ``[K]`` label (1..n) of each positive pixel, pixels in raster order.
      rows (np.ndarray): int64 ``[K]`` row of each positive pixel.
      cols (np.ndarray): int64 ``[K]`` column of each positive pixel.
      n (int): number of components.
    """

    ids: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    n: int


def _compress_axis(coords: np.ndarray) -> tuple[np.ndarray, int]:
    """Map coordinates onto a compressed axis where every run of empty lines becomes one line.

    Two pixels are 8-adjacent iff their rows and their columns differ by at most 1; collapsing
    each run of empty rows (columns) to a single empty one keeps non-adjacent lines apart and
    preserves order, so the components and their raster label order are unchanged.

    Arguments:
      coords (np.ndarray): int64 ``[K]`` coordinates of the positive pixels along one axis.
    Returns:
      tuple[np.ndarray, int]: compressed coordinate of each pixel ``[K]`` and the axis length.
    """
    lines, inverse = np.unique(coords, return_inverse=True)
    gaps = np.concatenate(([0], np.cumsum(np.diff(lines) > 1)))
    compressed = np.arange(lines.size) + gaps
    return compressed[inverse], int(compressed[-1]) + 1


def _label(mask: np.ndarray) -> _Labelled:
    """8-connected labelling (``scipy.ndimage.label``, 3×3 structure) of a sparse mask.

    The labelling runs on a copy of the mask with empty row and column runs collapsed
    (:func:`_compress_axis`), so its cost follows the number of positive pixels rather than the
    image size. Labels come in raster order of each component's first pixel, like skimage
    ``label(connectivity=2)``.

    Arguments:
      mask (np.ndarray): ``H×W`` bool.
    Returns:
      _Labelled: per-pixel labels and coordinates.
    """
    flat = np.flatnonzero(mask)
    rows, cols = np.divmod(flat, mask.shape[1])
    if flat.size == 0:
        return _Labelled(np.zeros(0, dtype=np.int32), rows, cols, 0)
    small_rows, height = _compress_axis(rows)
    small_cols, width = _compress_axis(cols)
    small = np.zeros((height, width), dtype=bool)
    small[small_rows, small_cols] = True
    labels, n = ndimage.label(small, structure=_STRUCTURE_8)
    return _Labelled(labels[small_rows, small_cols], rows, cols, int(n))


def _table(labelled: _Labelled) -> _Table:
    """Centroids and areas of labelled components, vectorised with ``np.bincount``.

    Centroids are (sum of coordinates) / area: exact integer sums and one division, hence
    bit-identical to skimage's ``regionprops(...).centroid``.

    Arguments:
      labelled (_Labelled): output of :func:`_label`.
    Returns:
      _Table: ``rows``, ``cols`` float64 ``[n]`` and ``areas`` int64 ``[n]``.
    """
    ids, n = labelled.ids, labelled.n
    if n == 0:
        empty = np.zeros(0, dtype=np.float64)
        return _Table(empty, empty, np.zeros(0, dtype=np.int64))
    areas = np.bincount(ids, minlength=n + 1)[1:].astype(np.int64)
    row_sums = np.bincount(ids, weights=labelled.rows.astype(np.float64), minlength=n + 1)[1:]
    col_sums = np.bincount(ids, weights=labelled.cols.astype(np.float64), minlength=n + 1)[1:]
    return _Table(row_sums / areas, col_sums / areas, areas)


def _greedy_match(gt: _Table, pred: _Table) -> np.ndarray:
    """Greedy one-to-one matching of §4: targets in label order, first free candidate < 3 px.

    Arguments:
      gt (_Table): target components.
      pred (_Table): predicted components.
    Returns:
      np.ndarray: int64 ``[n_gt]``, the matched predicted index per target or -1.
    """
    gt_to_pred = np.full(gt.areas.size, -1, dtype=np.int64)
    if gt.areas.size == 0 or pred.areas.size == 0:
        return gt_to_pred
    d_row = gt.rows[:, None] - pred.rows[None, :]
    d_col = gt.cols[:, None] - pred.cols[None, :]
    close = np.sqrt(d_row * d_row + d_col * d_col) < MATCH_DISTANCE
    free = np.ones(pred.areas.size, dtype=bool)
    for g in np.flatnonzero(close.any(axis=1)):
        candidates = np.flatnonzero(close[g] & free)
        if candidates.size:
            free[candidates[0]] = False
            gt_to_pred[g] = candidates[0]
    return gt_to_pred


def _fa_pixels(pred: _Table, gt_to_pred: np.ndarray, fa_rule: str) -> int:
    """False-alarm pixels of one image (§5).

    Arguments:
      pred (_Table): predicted components.
      gt_to_pred (np.ndarray): matching from :func:`_greedy_match`.
      fa_rule (str): ``"component"``: every pixel of an unmatched component;
        ``"legacy_area"``: the area of each component whose area equals no matched area.
    Returns:
      int: the number of false-alarm pixels.
    """
    matched_areas = pred.areas[gt_to_pred[gt_to_pred >= 0]]
    if fa_rule == "component":
        return int(pred.areas.sum() - matched_areas.sum())
    return int(pred.areas[~np.isin(pred.areas, matched_areas)].sum())


def _check_fa_rule(fa_rule: str) -> str:
    """Validate ``fa_rule``.

    Arguments:
      fa_rule (str): one of :data:`FA_RULES`.
    Returns:
      str: the same value.
    """
    if fa_rule not in FA_RULES:
        raise ValueError(f"fa_rule must be one of {FA_RULES}, got {fa_rule!r}")
    return fa_rule


def parse_fa_normaliser(fa_normaliser: int | str | None) -> int | None:
    """Parse the Fa denominator option of §5.2.

    Arguments:
      fa_normaliser (int | str | None): ``None`` or ``"true_pixels"``: each image's true ``H*W``;
        an int ``S`` or the string ``"fixed:S"``: ``S*S`` pixels per image (IRSAM 512, DNANet 256).
    Returns:
      int | None: ``S``, or ``None`` for true pixel counts.
    """
    if fa_normaliser is None or fa_normaliser == "true_pixels":
        return None
    if isinstance(fa_normaliser, str) and fa_normaliser.startswith("fixed:"):
        fa_normaliser = fa_normaliser.split(":", 1)[1]
    size = int(fa_normaliser)
    if size <= 0:
        raise ValueError(f"fa_normaliser must be a positive side length, got {fa_normaliser!r}")
    return size


def label_components(mask: np.ndarray, connectivity: int = 8) -> tuple[np.ndarray, int]:
    """Full-size label image of a mask: the one connected-components helper of the package
    (overlays, target tables, one-shot reference centres and components).

    Arguments:
      mask (np.ndarray): ``H×W`` mask, non-zero is positive.
      connectivity (int): 8 (diagonal neighbours join, the metrics' rule) or 4.
    Returns:
      tuple[np.ndarray, int]: int32 ``H×W`` labels (0 background, 1..n in raster order of each
      component's first pixel) and ``n``.
    """
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity}")
    mask = _check_mask(mask, "mask")
    structure = _STRUCTURE_8 if connectivity == 8 else ndimage.generate_binary_structure(2, 1)
    labels, n = ndimage.label(mask, structure=structure)
    return labels.astype(np.int32, copy=False), int(n)


def connected_components(pred_bool: np.ndarray) -> list[Component]:
    """8-connected components of a binary mask with unweighted centroids, areas and boxes.

    Arguments:
      pred_bool (np.ndarray): ``H×W`` mask, non-zero is positive.
    Returns:
      list[Component]: ``(centroid_row, centroid_col, area, bbox)`` per component in label
      (raster) order; empty for an empty mask.
    """
    labelled = _label(_check_mask(pred_bool, "pred_bool"))
    table = _table(labelled)
    if labelled.n == 0:
        return []
    order = np.argsort(labelled.ids, kind="stable")
    starts = np.searchsorted(labelled.ids[order], np.arange(1, labelled.n + 1))
    rows, cols = labelled.rows[order], labelled.cols[order]
    row_min, row_max = np.minimum.reduceat(rows, starts), np.maximum.reduceat(rows, starts)
    col_min, col_max = np.minimum.reduceat(cols, starts), np.maximum.reduceat(cols, starts)
    return [
        Component(
            float(table.rows[i]),
            float(table.cols[i]),
            int(table.areas[i]),
            (int(row_min[i]), int(col_min[i]), int(row_max[i]) + 1, int(col_max[i]) + 1),
        )
        for i in range(labelled.n)
    ]


def match_components(pred_bool: np.ndarray, gt_bool: np.ndarray) -> MatchResult:
    """Components of prediction and target and their §4 matching (detected / missed / false alarm).

    Arguments:
      pred_bool (np.ndarray): ``H×W`` binary prediction.
      gt_bool (np.ndarray): ``H×W`` binary target.
    Returns:
      MatchResult: both component lists and the target → prediction assignment.
    """
    pred_components = connected_components(pred_bool)
    gt_components = connected_components(gt_bool)

    def as_table(components: list[Component]) -> _Table:
        return _Table(
            np.array([c.centroid_row for c in components], dtype=np.float64),
            np.array([c.centroid_col for c in components], dtype=np.float64),
            np.array([c.area for c in components], dtype=np.int64),
        )

    gt_to_pred = _greedy_match(as_table(gt_components), as_table(pred_components))
    return MatchResult(pred_components, gt_components, tuple(int(i) for i in gt_to_pred))


def _detection_stats(gt: _Table, pred: _Table, fa_rule: str) -> tuple[int, int, int]:
    """Matched targets, target count and false-alarm pixels of one image.

    Arguments:
      gt (_Table): target components.
      pred (_Table): predicted components.
      fa_rule (str): see :func:`_fa_pixels`.
    Returns:
      tuple[int, int, int]: ``(matched, targets, fa_pixels)``.
    """
    gt_to_pred = _greedy_match(gt, pred)
    return int((gt_to_pred >= 0).sum()), int(gt.areas.size), _fa_pixels(pred, gt_to_pred, fa_rule)


def _intersection(pred: _Labelled, gt: np.ndarray) -> int:
    """|P ∩ G| from the predicted pixels' coordinates.

    Arguments:
      pred (_Labelled): labelled prediction.
      gt (np.ndarray): ``H×W`` bool target.
    Returns:
      int: number of predicted pixels that are target pixels.
    """
    return int(np.count_nonzero(gt[pred.rows, pred.cols]))


def image_stats(
    pred_bool: np.ndarray,
    gt_bool: np.ndarray,
    *,
    fa_rule: str = "component",
    fa_normaliser: int | str | None = None,
    with_detection: bool = True,
) -> ImageStats:
    """All per-image counts of §2-5 from one thresholding and one labelling per mask.

    Arguments:
      pred_bool (np.ndarray): ``H×W`` binary prediction (non-zero positive).
      gt_bool (np.ndarray): ``H×W`` binary target, same shape.
      fa_rule (str): ``"component"`` (default) or ``"legacy_area"`` (§5.2).
      fa_normaliser (int | str | None): Fa denominator, see :func:`parse_fa_normaliser`.
      with_detection (bool): False skips the connected components (IoU-only callers); then
        ``matched``, ``targets`` and ``fa_pixels`` are 0.
    Returns:
      ImageStats: the counts of this image.
    """
    pred = _check_mask(pred_bool, "pred_bool")
    gt = _check_mask(gt_bool, "gt_bool")
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and target {gt.shape} differ in shape")
    _check_fa_rule(fa_rule)
    size = parse_fa_normaliser(fa_normaliser)
    pred_labelled = _label(pred)
    gt_labelled = _label(gt)
    pred_pixels = int(pred_labelled.ids.size)
    gt_pixels = int(gt_labelled.ids.size)
    inter = _intersection(pred_labelled, gt) if gt_pixels else 0
    matched = targets = fa_pixels = 0
    if with_detection:
        matched, targets, fa_pixels = _detection_stats(
            _table(gt_labelled), _table(pred_labelled), fa_rule
        )
    return ImageStats(
        inter=inter,
        union=pred_pixels + gt_pixels - inter,
        pred_pixels=pred_pixels,
        gt_pixels=gt_pixels,
        matched=matched,
        targets=targets,
        fa_pixels=fa_pixels,
        pixels=pred.size if size is None else size * size,
    )


# --------------------------------------------------------------------------------------------
# Metrics beyond the anchors (docs/metrics.md §7-11): pure per-image functions
# --------------------------------------------------------------------------------------------

OPDC_OVERLAP: float = 0.5
"""OPDC overlap rule: a target/prediction pair with component IoU >= this is an overlap match."""

SHOOTING_RADII: tuple[int, int] = (1, 4)
"""Shooting rule (DTUM): detection box half-side and false-alarm exclusion box half-side (px)."""

SIZE_EDGES: tuple[int, ...] = (9, 80)
"""Target-size bin edges (area in px): ``<= 9``, ``10-80``, ``> 80``."""

EXTRAS: tuple[str, ...] = ("pixel", "opdc", "shooting", "size_bins", "curves", "per_image")
"""Names accepted by ``IRSTDMetrics(extra=[...])`` (docs/metrics.md §7-11)."""

NAME_BYTES: int = 96
"""Per-image names are kept as this many UTF-8 bytes so that they gather across processes."""


def _pair_intersections(pred: _Labelled, gt: _Labelled, width: int) -> np.ndarray:
    """``|pred_j ∩ gt_i|`` for every target ``i`` and predicted component ``j``.

    Both labellings list their pixels in raster order, so the common pixels are found with one
    ``searchsorted`` of the predicted flat indices into the target's.

    Arguments:
      pred (_Labelled): labelled prediction (``n`` components).
      gt (_Labelled): labelled target (``m`` components).
      width (int): image width W (flat index = row * W + col).
    Returns:
      np.ndarray: int64 ``[m, n]`` pixel counts.
    """
    m, n = gt.n, pred.n
    if m == 0 or n == 0:
        return np.zeros((m, n), dtype=np.int64)
    gt_flat = gt.rows * width + gt.cols
    pred_flat = pred.rows * width + pred.cols
    where = np.searchsorted(gt_flat, pred_flat)
    inside = where < gt_flat.size
    inside[inside] = gt_flat[where[inside]] == pred_flat[inside]
    pair = (gt.ids[where[inside]].astype(np.int64) - 1) * n + pred.ids[inside] - 1
    return np.bincount(pair, minlength=m * n).reshape(m, n).astype(np.int64)


def _centroid_distances(gt: _Table, pred: _Table) -> np.ndarray:
    """Euclidean centroid distances ``[m, n]`` (float64, the same arithmetic as §4)."""
    d_row = gt.rows[:, None] - pred.rows[None, :]
    d_col = gt.cols[:, None] - pred.cols[None, :]
    return np.sqrt(d_row * d_row + d_col * d_col)


class OPDCResult(NamedTuple):
    """OPDC matching of one image (docs/metrics.md §7).

    Matrices have one row per target and one column per predicted component; with
    ``pad_empty=True`` an image without targets (predictions) gets one phantom row (column), as
    in PyIRSTDMetrics 1.0.2.

    Arguments:
      matched (np.ndarray): bool ``[R, C]`` one-to-one assignment.
      candidate (np.ndarray): bool ``[R, C]`` pairs passing either rule (overlap or distance).
      iou (np.ndarray): float64 ``[R, C]`` component IoU (0 on phantom rows/columns).
      inter (np.ndarray): int64 ``[m, n]`` pair intersections of the real components.
    """

    matched: np.ndarray
    candidate: np.ndarray
    iou: np.ndarray
    inter: np.ndarray


def _opdc(
    gt: _Table,
    pred: _Table,
    inter: np.ndarray,
    image_pixels: int,
    overlap: float,
    pad_empty: bool,
) -> OPDCResult:
    """Overlap-priority, distance-compensated one-to-one matching (docs/metrics.md §7).

    1. Overlap priority: a minimum-total-distance assignment over all pairs, of which only the
       pairs with component IoU >= ``overlap`` are kept.
    2. Distance compensation: a second minimum-distance assignment between the targets and
       predictions still free, keeping the pairs whose centroids are < 3 px apart.

    Arguments:
      gt (_Table): target components (``m``).
      pred (_Table): predicted components (``n``).
      inter (np.ndarray): int64 ``[m, n]`` pair intersections.
      image_pixels (int): ``H*W``, the distance given to phantom pairs.
      overlap (float): the overlap rule's IoU threshold.
      pad_empty (bool): add a phantom row/column when ``m`` or ``n`` is 0 (PyIRSTDMetrics).
    Returns:
      OPDCResult: the matching.
    """
    m, n = gt.areas.size, pred.areas.size
    rows, cols = (max(m, 1), max(n, 1)) if pad_empty else (m, n)
    distance = np.full((rows, cols), float(image_pixels))
    iou = np.zeros((rows, cols))
    if m and n:
        distance[:m, :n] = _centroid_distances(gt, pred)
        iou[:m, :n] = inter / (gt.areas[:, None] + pred.areas[None, :] - inter)
    by_overlap = iou >= overlap
    by_distance = distance < MATCH_DISTANCE
    matched = np.zeros((rows, cols), dtype=bool)
    if by_overlap.any():
        r, c = linear_sum_assignment(distance)
        matched[r, c] = True
        matched &= by_overlap
    if by_distance.any():
        free_rows = np.flatnonzero(~matched.any(axis=1))
        free_cols = np.flatnonzero(~matched.any(axis=0))
        r, c = linear_sum_assignment(distance[np.ix_(free_rows, free_cols)])
        r, c = free_rows[r], free_cols[c]
        keep = by_distance[r, c]
        matched[r[keep], c[keep]] = True
    return OPDCResult(matched, by_overlap | by_distance, iou, inter)


def opdc_match(
    pred_bool: np.ndarray,
    gt_bool: np.ndarray,
    *,
    overlap: float = OPDC_OVERLAP,
    pad_empty: bool = True,
) -> OPDCResult:
    """OPDC matching of a binary prediction and target (docs/metrics.md §7).

    Arguments:
      pred_bool (np.ndarray): ``H×W`` binary prediction (non-zero positive).
      gt_bool (np.ndarray): ``H×W`` binary target.
      overlap (float): IoU threshold of the overlap rule, in [0, 1).
      pad_empty (bool): PyIRSTDMetrics' phantom row/column for images without targets or
        predictions (see :class:`OPDCResult`).
    Returns:
      OPDCResult: rows = targets and columns = predicted components, both in raster label order.
    """
    pred = _check_mask(pred_bool, "pred_bool")
    gt = _check_mask(gt_bool, "gt_bool")
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and target {gt.shape} differ in shape")
    pred_l, gt_l = _label(pred), _label(gt)
    inter = _pair_intersections(pred_l, gt_l, pred.shape[1])
    return _opdc(_table(gt_l), _table(pred_l), inter, pred.size, overlap, pad_empty)


@dataclass(frozen=True)
class OPDCCounts:
    """Per-image OPDC / hIoU / error-analysis counts (docs/metrics.md §7-8).

    Arguments:
      tp (int): matched pairs.
      fp (int): predicted components (columns) left unmatched.
      fn (int): targets (rows) left unmatched.
      fp_area (int): pixels of the unmatched predicted components.
      iou_sum (float): sum of the matched pairs' component IoUs (row-major pair order).
      merge_sum (float): sum over pairs of (pred pixels on OTHER targets) / pair union.
      interference_sum (float): sum over pairs of (pred pixels on background) / pair union.
      perception_sum (float): sum over pairs of (missed target pixels) / pair union.
      interference (int): predicted components with no candidate under either rule.
      perception (int): targets with no candidate under either rule.
      many_to_single (int): unmatched predictions that had a candidate (lost the assignment).
      single_to_many (int): unmatched targets that had a candidate.
    """

    tp: int
    fp: int
    fn: int
    fp_area: int
    iou_sum: float
    merge_sum: float
    interference_sum: float
    perception_sum: float
    interference: int
    perception: int
    many_to_single: int
    single_to_many: int


def _opdc_counts(gt: _Table, pred: _Table, result: OPDCResult) -> OPDCCounts:
    """Reduce one image's OPDC matching to the counts of :class:`OPDCCounts`.

    Arguments:
      gt (_Table): target components.
      pred (_Table): predicted components.
      result (OPDCResult): their matching.
    Returns:
      OPDCCounts: the image's counts; float sums accumulate in row-major pair order.
    """
    matched, inter = result.matched, result.inter
    m, n = inter.shape
    unmatched_cols = ~matched.any(axis=0)
    unmatched_rows = ~matched.any(axis=1)
    fp_area = int(pred.areas[unmatched_cols[:n]].sum()) if n else 0
    iou_sum = merge_sum = interference_sum = perception_sum = 0.0
    pairs_i, pairs_j = np.nonzero(matched[:m, :n])
    if pairs_i.size:
        on_targets = inter.sum(axis=0)
        for i, j in zip(pairs_i.tolist(), pairs_j.tolist(), strict=True):
            hit = int(inter[i, j])
            union = int(gt.areas[i]) + int(pred.areas[j]) - hit
            iou_sum += hit / union
            merge_sum += (int(on_targets[j]) - hit) / union
            interference_sum += (int(pred.areas[j]) - int(on_targets[j])) / union
            perception_sum += (int(gt.areas[i]) - hit) / union
    no_candidate_cols = int((~result.candidate.any(axis=0)).sum())
    no_candidate_rows = int((~result.candidate.any(axis=1)).sum())
    fp, fn = int(unmatched_cols.sum()), int(unmatched_rows.sum())
    return OPDCCounts(
        tp=int(matched.sum()),
        fp=fp,
        fn=fn,
        fp_area=fp_area,
        iou_sum=iou_sum,
        merge_sum=merge_sum,
        interference_sum=interference_sum,
        perception_sum=perception_sum,
        interference=no_candidate_cols,
        perception=no_candidate_rows,
        many_to_single=fp - no_candidate_cols,
        single_to_many=fn - no_candidate_rows,
    )


def _box_offsets(radius: int) -> list[int]:
    """Offsets ``-radius..radius`` of a square box's half-side."""
    return list(range(-radius, radius + 1))


def _shift_inside(
    rows: np.ndarray, cols: np.ndarray, dr: int, dc: int, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shift pixel coordinates and keep those inside the image.

    Arguments:
      rows (np.ndarray): int64 ``[K]`` rows.
      cols (np.ndarray): int64 ``[K]`` columns.
      dr (int): row shift.
      dc (int): column shift.
      shape (tuple[int, int]): ``(H, W)``.
    Returns:
      tuple: shifted rows and columns of the kept pixels and the bool ``[K]`` keep mask.
    """
    r, c = rows + dr, cols + dc
    keep = (r >= 0) & (r < shape[0]) & (c >= 0) & (c < shape[1])
    return r[keep], c[keep], keep


def _shooting(
    pred: np.ndarray, pred_l: _Labelled, gt_l: _Labelled, radii: tuple[int, int]
) -> tuple[int, int]:
    """Shooting-rule detections and false-alarm pixels of one image (docs/metrics.md §9).

    A target is detected when a predicted pixel lies in the ``(2 r1 + 1)²`` box centred on any of
    its pixels; a predicted pixel is a false alarm when it lies outside every ``(2 r2 + 1)²`` box
    centred on a target pixel (boxes clipped to the image).

    Arguments:
      pred (np.ndarray): ``H×W`` bool prediction.
      pred_l (_Labelled): its labelling (pixel coordinates).
      gt_l (_Labelled): labelled target.
      radii (tuple[int, int]): ``(r1, r2)`` box half-sides, ``r2 > r1 > 0``.
    Returns:
      tuple[int, int]: ``(detected targets, false-alarm pixels)``.
    """
    if gt_l.n == 0:
        return 0, int(pred_l.ids.size)
    shape = pred.shape
    hit = np.zeros(gt_l.ids.size, dtype=bool)
    for dr in _box_offsets(radii[0]):
        for dc in _box_offsets(radii[0]):
            r, c, keep = _shift_inside(gt_l.rows, gt_l.cols, dr, dc, shape)
            hit[keep] |= pred[r, c]
    detected = np.zeros(gt_l.n + 1, dtype=bool)
    detected[gt_l.ids[hit]] = True
    if pred_l.ids.size == 0:
        return int(detected.sum()), 0
    band = []  # the target pixels widened along columns (flat indices, deduplicated below)
    for dc in _box_offsets(radii[1]):
        r, c, _ = _shift_inside(gt_l.rows, gt_l.cols, 0, dc, shape)
        band.append(r * shape[1] + c)
    band_rows, band_cols = np.divmod(np.unique(np.concatenate(band)), shape[1])
    near = np.zeros(shape, dtype=bool)
    for dr in _box_offsets(radii[1]):
        r, c, _ = _shift_inside(band_rows, band_cols, dr, 0, shape)
        near[r, c] = True
    false_pixels = int(pred_l.ids.size - np.count_nonzero(near[pred_l.rows, pred_l.cols]))
    return int(detected.sum()), false_pixels


def shooting_rule(
    pred_bool: np.ndarray, gt_bool: np.ndarray, *, radii: tuple[int, int] = SHOOTING_RADII
) -> tuple[int, int, int]:
    """Shooting-rule Pd/Fa counts of one image (DTUM box rule, docs/metrics.md §9).

    Arguments:
      pred_bool (np.ndarray): ``H×W`` binary prediction.
      gt_bool (np.ndarray): ``H×W`` binary target.
      radii (tuple[int, int]): detection and exclusion box half-sides (default 1 and 4 px).
    Returns:
      tuple[int, int, int]: ``(detected targets, targets, false-alarm pixels)``.
    """
    pred = _check_mask(pred_bool, "pred_bool")
    gt = _check_mask(gt_bool, "gt_bool")
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and target {gt.shape} differ in shape")
    gt_l = _label(gt)
    detected, false_pixels = _shooting(pred, _label(pred), gt_l, _check_radii(radii))
    return detected, gt_l.n, false_pixels


def _check_radii(radii: Sequence[int]) -> tuple[int, int]:
    """Validate the shooting-rule radii ``(r1, r2)`` with ``r2 > r1 > 0``."""
    r1, r2 = (int(r) for r in radii)
    if not r2 > r1 > 0:
        raise ValueError(f"shooting_radii must be (r1, r2) with r2 > r1 > 0, got {tuple(radii)}")
    return r1, r2


def size_labels(edges: Sequence[int]) -> list[str]:
    """Key suffixes of the target-size bins: ``le9``, ``10_80``, ``gt80`` for edges (9, 80).

    Arguments:
      edges (Sequence[int]): increasing area edges ``e_0 < e_1 < ...`` in pixels.
    Returns:
      list[str]: ``len(edges) + 1`` labels.
    """
    values = [int(e) for e in edges]
    if not values or any(b <= a for a, b in itertools.pairwise(values)) or values[0] < 1:
        raise ValueError(f"size_bins must be increasing positive areas, got {list(edges)}")
    labels = [f"le{values[0]}"]
    labels += [f"{a + 1}_{b}" for a, b in itertools.pairwise(values)]
    return labels + [f"gt{values[-1]}"]


def curve_thresholds(bins: int) -> np.ndarray:
    """Probability thresholds of the pixel curves: ``linspace(0, 1, bins)[:-1]`` (docs §10).

    Arguments:
      bins (int): number of bin edges (PyIRSTDMetrics' ``num_bins``), at least 2.
    Returns:
      np.ndarray: float64 ``[bins - 1]`` increasing thresholds; a pixel counts as positive at
      threshold ``t`` iff its probability is ``>= t``.
    """
    if int(bins) < 2:
        raise ValueError(f"curve_bins must be at least 2, got {bins}")
    return np.linspace(0.0, 1.0, int(bins))[:-1]


def _counts_at_or_above(values: np.ndarray, logit_edges: np.ndarray, total: int) -> np.ndarray:
    """Number of values ``>= logit_edges[k]`` for each k (edges increasing, ``edges[0] = -inf``).

    Only the values reaching ``edges[1]`` are sorted into bins; the rest count for edge 0 only.

    Arguments:
      values (np.ndarray): logits ``[K]`` (any float dtype).
      logit_edges (np.ndarray): float64 ``[T]`` increasing thresholds.
      total (int): ``K``.
    Returns:
      np.ndarray: int64 ``[T]`` counts, non-increasing.
    """
    counts = np.zeros(logit_edges.size, dtype=np.int64)
    counts[0] = total
    if logit_edges.size == 1:
        return counts
    high = values[values >= logit_edges[1]]
    if high.size:
        index = np.searchsorted(logit_edges, high.astype(np.float64), side="right") - 1
        hist = np.bincount(index, minlength=logit_edges.size)
        counts[1:] = np.cumsum(hist[::-1])[::-1][1:]
    return counts


def _ratio0(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` in float64 with 0 where ``den == 0`` (PyIRSTDMetrics' convention)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den != 0)


# --------------------------------------------------------------------------------------------
# torchmetrics classes
# --------------------------------------------------------------------------------------------


def _as_bhw(x: Tensor, name: str) -> Tensor:
    """Bring a ``[B,1,H,W]``, ``[B,H,W]`` or ``[H,W]`` tensor to ``[B,H,W]``.

    Arguments:
      x (Tensor): the input.
      name (str): argument name for the error message.
    Returns:
      Tensor: ``B×H×W`` view.
    """
    if x.dim() == 4 and x.shape[1] == 1:
        return x[:, 0]
    if x.dim() == 3:
        return x
    if x.dim() == 2:
        return x.unsqueeze(0)
    raise ValueError(f"{name} must be B×1×H×W, B×H×W or H×W, got shape {tuple(x.shape)}")


def _host_array(x: Tensor) -> np.ndarray | None:
    """Zero-copy NumPy view of a CPU tensor, or None for accelerator / bfloat16 tensors.

    NumPy is used for the per-pixel work on the CPU: it is much faster than torch's threaded
    kernels on small, busy machines.

    Arguments:
      x (Tensor): any tensor.
    Returns:
      np.ndarray | None: the view, when one exists.
    """
    if x.device.type != "cpu" or x.dtype == torch.bfloat16:
        return None
    return x.numpy()


def _binarise_target(target: Tensor) -> np.ndarray:
    """Binary CPU target from {0,1}, {0,255}, bool or soft masks (docs §1.1).

    Arguments:
      target (Tensor): ``B×H×W``. Bool is used as is; otherwise a batch whose maximum exceeds 1 is
        on the 0-255 scale and binarised with ``> 127``, else with ``> 0.5``.
    Returns:
      np.ndarray: ``B×H×W`` bool.
    """
    if target.dtype == torch.bool:
        return target.cpu().numpy()
    if target.numel() == 0:
        return np.zeros(tuple(target.shape), dtype=bool)
    host = _host_array(target)
    if host is None:
        low, high = (float(v) for v in torch.aminmax(target))
    else:
        low, high = float(host.min()), float(host.max())
    if low < 0:
        raise ValueError("target values must be non-negative ({0,1}, {0,255} or bool masks)")
    cut = 127 if high > 1 else 0.5
    return host > cut if host is not None else (target > cut).cpu().numpy()


def _positive(logits: Tensor, threshold: float) -> np.ndarray:
    """``logits > threshold`` (strict), exact for any float dtype, as a CPU bool array.

    The comparison runs in the logits' dtype when the threshold is representable there (0.0
    always is), otherwise in float64. Accelerator tensors are compared on their device and only
    the bool mask is copied to the CPU.

    Arguments:
      logits (Tensor): ``B×H×W`` float logits.
      threshold (float): logit threshold.
    Returns:
      np.ndarray: ``B×H×W`` bool.
    """
    exact = float(torch.tensor(threshold, dtype=logits.dtype)) == threshold
    host = _host_array(logits)
    if host is not None:
        return host > (threshold if exact else np.float64(threshold))
    if exact:
        return (logits > threshold).cpu().numpy()
    return (logits.to(torch.float64) > threshold).cpu().numpy()


def _check_batch(preds: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Validate and reshape a batch of logits and targets.

    Arguments:
      preds (Tensor): logits ``B×1×H×W`` or ``B×H×W``.
      target (Tensor): same shape, {0,1}, {0,255} or bool.
    Returns:
      tuple[Tensor, Tensor]: detached ``B×H×W`` logits and target (devices unchanged).
    """
    logits = _as_bhw(preds.detach(), "preds")
    tgt = _as_bhw(target.detach(), "target")
    if logits.shape != tgt.shape:
        raise ValueError(
            f"preds {tuple(preds.shape)} and target {tuple(target.shape)} must have the same shape"
            " (score at the target's native resolution: upsample the logits first)"
        )
    if not logits.is_floating_point():
        raise TypeError(f"preds must be float logits, got dtype {preds.dtype}")
    return logits, tgt


def _nan_ratio(num: Tensor, den: Tensor, what: str) -> Tensor:
    """``num / den`` in float64, NaN with a warning when ``den`` is 0.

    Arguments:
      num (Tensor): numerator (any shape).
      den (Tensor): denominator (broadcastable).
      what (str): quantity name for the warning.
    Returns:
      Tensor: float64 ratio.
    """
    num = num.to(torch.float64)
    den = den.to(torch.float64)
    if bool((den == 0).any()):
        message = f"{what} is undefined (denominator 0); returning NaN"
        warnings.warn(message, RuntimeWarning, stacklevel=3)
        log.warning(message)
    return torch.where(den == 0, torch.full_like(num, math.nan), num / den.clamp_min(1))


class _Float64StateMetric(Metric):
    """Metric whose states keep their declared dtypes through ``.to(dtype)`` (e.g. ``16-true``).

    torchmetrics guards ``.half()``/``.double()`` but not ``.to(torch.float16)``; a float64 sum
    cast to fp16 would silently lose precision, so every state is cast back after ``_apply``.
    """

    full_state_update = False
    is_differentiable = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._state_dtypes: dict[str, torch.dtype] = {}

    def _apply(self, fn: Callable, exclude_state: Sequence[str] = "") -> torch.nn.Module:
        """Apply ``fn`` (device moves) and restore each state's declared dtype.

        Arguments:
          fn (Callable): the function ``nn.Module._apply`` passes.
          exclude_state (Sequence[str]): states torchmetrics must leave alone.
        Returns:
          torch.nn.Module: this metric.
        """
        this = super()._apply(fn, exclude_state)
        for key, default in this._defaults.items():
            dtype = self._state_dtypes[key]
            if isinstance(default, Tensor) and default.dtype != dtype:
                this._defaults[key] = default.to(dtype)
            value = getattr(this, key)
            if isinstance(value, Tensor) and value.dtype != dtype:
                setattr(this, key, value.to(dtype))
            elif isinstance(value, list):
                setattr(this, key, [v.to(dtype) if isinstance(v, Tensor) else v for v in value])
        return this

    def _add_sum_state(self, name: str, dtype: torch.dtype, size: int | None = None) -> None:
        """Register a zero-initialised state reduced with ``sum`` across processes.

        Arguments:
          name (str): state name.
          dtype (torch.dtype): int64 for counts, float64 for fractional sums.
          size (int | None): ``None`` for a scalar, else a 1-D state of this length.
        """
        self._state_dtypes[name] = dtype
        shape = () if size is None else (size,)
        self.add_state(name, default=torch.zeros(shape, dtype=dtype), dist_reduce_fx="sum")


class _IRSTDStatsMetric(_Float64StateMetric):
    """Shared states and update of the IoU / nIoU / Pd / Fa metrics (internal base class).

    Arguments:
      threshold (float): a pixel is positive iff ``logit > threshold`` (strict; default 0.0).
      fa_rule (str): ``"component"`` (default) or ``"legacy_area"`` (docs §5.2).
      legacy_fa (bool): True selects ``fa_rule="legacy_area"`` (the issue's name for it).
      fa_normaliser (int | str | None): ``None`` = true pixel counts; ``S`` or ``"fixed:S"``:
        ``S*S`` pixels per image.
      empty_policy (str): nIoU on empty-target images: ``"zero"`` (default, they score 0) or
        ``"skip"`` (excluded from the mean; flag it in reports).
      **kwargs: forwarded to ``torchmetrics.Metric``.
    """

    _with_detection: bool = True

    def __init__(
        self,
        threshold: float = 0.0,
        fa_rule: str = "component",
        legacy_fa: bool = False,
        fa_normaliser: int | str | None = None,
        empty_policy: str = "zero",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if empty_policy not in EMPTY_POLICIES:
            raise ValueError(f"empty_policy must be one of {EMPTY_POLICIES}, got {empty_policy!r}")
        self.threshold = float(threshold)
        self.fa_rule = "legacy_area" if legacy_fa else _check_fa_rule(fa_rule)
        self.fa_normaliser = parse_fa_normaliser(fa_normaliser)
        self.empty_policy = empty_policy
        for name in (
            "inter",
            "union",
            "matched",
            "targets",
            "fa_pixels",
            "pixels",
            "niou_images",
        ):
            self._add_sum_state(name, torch.int64)
        self._add_sum_state("niou_sum", torch.float64)

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Accumulate one batch, image by image.

        Arguments:
          preds (Tensor): float logits ``B×1×H×W`` or ``B×H×W`` (any float dtype and device).
          target (Tensor): ``B×1×H×W`` or ``B×H×W`` with values {0,1}, {0,255} or bool; the same
            ``H×W`` as ``preds``. Sizes may change between calls.
        """
        logits, tgt = _check_batch(preds, target)
        pred = _positive(logits, self.threshold)
        gt = _binarise_target(tgt)
        totals = dict.fromkeys(("inter", "union", "matched", "targets", "fa_pixels", "pixels"), 0)
        niou_sum, niou_images = 0.0, 0
        for b in range(pred.shape[0]):
            stats = image_stats(
                pred[b],
                gt[b],
                fa_rule=self.fa_rule,
                fa_normaliser=self.fa_normaliser,
                with_detection=self._with_detection,
            )
            for key in totals:
                totals[key] += getattr(stats, key)
            if stats.gt_pixels or self.empty_policy == "zero":
                niou_sum += stats.iou
                niou_images += 1
        for key, value in totals.items():
            setattr(self, key, getattr(self, key) + value)
        self.niou_sum += niou_sum
        self.niou_images += niou_images

    def _iou(self) -> Tensor:
        """Dataset IoU ``Σ inter / (EPS + Σ union)`` (0 when nothing was predicted or labelled)."""
        return self.inter.to(torch.float64) / (EPS + self.union.to(torch.float64))

    def _niou(self) -> Tensor:
        """Mean per-image IoU over the images counted by ``empty_policy`` (NaN if none)."""
        return _nan_ratio(self.niou_sum, self.niou_images, "nIoU (no image counted)")

    def _pd(self) -> Tensor:
        """``Σ matched / Σ targets`` (NaN with a warning when there are no targets)."""
        return _nan_ratio(self.matched, self.targets, "Pd (no ground-truth targets)")

    def _fa(self) -> Tensor:
        """``Σ fa_pixels / Σ pixels`` (NaN with a warning when no image was scored)."""
        return _nan_ratio(self.fa_pixels, self.pixels, "Fa (no images scored)")


class IRSTDMetrics(_IRSTDStatsMetric):
    """IoU, nIoU, Pd and Fa, plus optional extra metrics, from one labelling per image.

    Without ``extra`` this is the anchor metric set of docs/metrics.md §2-5. Each name in
    ``extra`` adds metrics computed from the same thresholding and connected components
    (docs/metrics.md §7-11); every state is a sum, so all of them are DDP-correct:

    * ``"pixel"``: dataset-level pixel ``Precision``, ``Recall`` and ``F1`` at ``threshold``;
    * ``"opdc"``: OPDC matching: ``Pd_OPDC``, ``Fa_OPDC``, ``hIoU`` and its error analysis
      (``seg_IoU``, ``seg_mrg_err``, ``seg_itf_err``, ``seg_pcp_err``, ``loc_IoU``,
      ``loc_s2m_err``, ``loc_m2s_err``, ``loc_itf_err``, ``loc_pcp_err``);
    * ``"shooting"``: shooting-rule ``Pd_shoot`` and ``Fa_shoot`` (DTUM box rule);
    * ``"size_bins"``: ``Pd_area_<bin>`` and target IoU ``tIoU_area_<bin>`` per target-size bin;
    * ``"curves"``: threshold-swept pixel precision / recall / F1 / TPR / FPR (:meth:`report`);
    * ``"per_image"``: per-image scores and the worst images by name (:meth:`report`).

    Arguments:
      threshold (float): a pixel is positive iff ``logit > threshold`` (strict; default 0.0).
      fa_rule (str): ``"component"`` (default) or ``"legacy_area"`` (docs/metrics.md §5.2).
      legacy_fa (bool): True selects ``fa_rule="legacy_area"``.
      fa_normaliser (int | str | None): Fa denominator (``None`` = true pixel counts); the
        OPDC and shooting-rule Fa always use true pixel counts.
      empty_policy (str): nIoU on empty-target images: ``"zero"`` (default) or ``"skip"``.
      extra (Sequence[str]): names from :data:`EXTRAS` (empty: anchors only).
      opdc_overlap (float): IoU threshold of the OPDC overlap rule (default 0.5).
      opdc_pad_empty (bool): PyIRSTDMetrics 1.0.2 counts an image without targets as one
        unmatched phantom target (without predictions: one phantom false alarm) in the OPDC
        counts; True (default) reproduces it, False counts real components only.
      shooting_radii (Sequence[int]): shooting rule ``(r1, r2)``: detection box half-side and
        false-alarm exclusion box half-side (default (1, 4): 3×3 and 9×9 boxes).
      size_bins (Sequence[int]): target-area bin edges (default (9, 80): <=9, 10-80, >80 px).
      curve_bins (int): number of probability bin edges of the pixel curves (PyIRSTDMetrics'
        ``num_bins``; thresholds ``linspace(0, 1, curve_bins)[:-1]``).
      worst_images (int): how many images :meth:`report` lists as worst (default 20).
      **kwargs: forwarded to ``torchmetrics.Metric``.
    """

    higher_is_better = None

    def __init__(
        self,
        threshold: float = 0.0,
        fa_rule: str = "component",
        legacy_fa: bool = False,
        fa_normaliser: int | str | None = None,
        empty_policy: str = "zero",
        extra: Sequence[str] = (),
        opdc_overlap: float = OPDC_OVERLAP,
        opdc_pad_empty: bool = True,
        shooting_radii: Sequence[int] = SHOOTING_RADII,
        size_bins: Sequence[int] = SIZE_EDGES,
        curve_bins: int = 256,
        worst_images: int = 20,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            threshold=threshold,
            fa_rule=fa_rule,
            legacy_fa=legacy_fa,
            fa_normaliser=fa_normaliser,
            empty_policy=empty_policy,
            **kwargs,
        )
        names = [str(name) for name in (extra or ())]
        unknown = sorted(set(names) - set(EXTRAS))
        if unknown:
            raise ValueError(f"metrics.extra has unknown name(s) {unknown}; choose from {EXTRAS}")
        self.extra = tuple(name for name in EXTRAS if name in names)
        if not 0.0 <= float(opdc_overlap) < 1.0:
            raise ValueError(f"opdc_overlap must be in [0, 1), got {opdc_overlap}")
        self.opdc_overlap = float(opdc_overlap)
        self.opdc_pad_empty = bool(opdc_pad_empty)
        self.shooting_radii = _check_radii(shooting_radii)
        self.size_edges = tuple(int(e) for e in size_bins)
        self.size_labels = size_labels(self.size_edges)
        self.curve_thresholds = curve_thresholds(curve_bins)
        self.curve_logit_edges = np.array([_logit(t) for t in self.curve_thresholds])
        self.worst_images = int(worst_images)
        if not self.extra:
            return
        for name in ("images", "true_pixels", "gt_pixels"):
            self._add_sum_state(name, torch.int64)
        if "opdc" in self.extra:
            for name in _OPDC_INT_STATES:
                self._add_sum_state(name, torch.int64)
            for name in _OPDC_FLOAT_STATES:
                self._add_sum_state(name, torch.float64)
        if "shooting" in self.extra:
            for name in ("shoot_tp", "shoot_fp_area"):
                self._add_sum_state(name, torch.int64)
        if "size_bins" in self.extra:
            bins = len(self.size_labels)
            self._add_sum_state("size_targets", torch.int64, size=bins)
            self._add_sum_state("size_matched", torch.int64, size=bins)
            self._add_sum_state("size_tiou_sum", torch.float64, size=bins)
        if "curves" in self.extra:
            count = self.curve_thresholds.size
            for name in ("curve_tp", "curve_fp"):
                self._add_sum_state(name, torch.int64, size=count)
            for name in ("curve_precision_sum", "curve_recall_sum", "curve_fpr_sum"):
                self._add_sum_state(name, torch.float64, size=count)
        if "per_image" in self.extra:
            for name, dtype in (("image_rows", torch.float64), ("image_names", torch.uint8)):
                self._state_dtypes[name] = dtype
                self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, preds: Tensor, target: Tensor, names: Sequence[str] | None = None) -> None:
        """Accumulate one batch, image by image.

        Arguments:
          preds (Tensor): float logits ``B×1×H×W`` or ``B×H×W`` (any float dtype and device).
          target (Tensor): ``B×1×H×W`` or ``B×H×W`` with values {0,1}, {0,255} or bool; the same
            ``H×W`` as ``preds``. Sizes may change between calls.
          names (Sequence[str] | None): ``B`` image names for the per-image report (``extra``
            with ``"per_image"``); None numbers the images in update order.
        """
        if not self.extra:
            super().update(preds, target)
            return
        logits, tgt = _check_batch(preds, target)
        pred = _positive(logits, self.threshold)
        gt = _binarise_target(tgt)
        if names is not None and len(names) != pred.shape[0]:
            raise ValueError(f"names has {len(names)} entries for a batch of {pred.shape[0]}")
        values = None
        if "curves" in self.extra:
            host = logits.cpu()
            values = (host.float() if host.dtype == torch.bfloat16 else host).numpy()
        sums = {key: getattr(self, key).cpu().numpy().copy() for key in self._accumulated()}
        rows: list[list[float]] = []
        for b in range(pred.shape[0]):
            row = self._update_image(pred[b], gt[b], None if values is None else values[b], sums)
            rows.append(row)
        for key, value in sums.items():
            state = getattr(self, key)
            setattr(self, key, torch.as_tensor(value, dtype=state.dtype).to(state.device))
        if "per_image" in self.extra:
            first = sum(int(part.shape[0]) for part in self.image_rows)
            labels = (
                list(names) if names is not None else [f"#{first + k}" for k in range(len(rows))]
            )
            self.image_rows.append(torch.tensor(rows, dtype=torch.float64))
            self.image_names.append(_encode_names(labels))

    def _sync_dist(
        self, dist_sync_fn: Callable = gather_all_tensors, process_group: Any = None
    ) -> None:
        """Gather the states; a process that scored no image sends correctly shaped empty
        per-image tables (torchmetrics would send a 1-D float32 placeholder).

        Arguments:
          dist_sync_fn (Callable): the gather function torchmetrics passes.
          process_group (Any): the process group.
        """
        if "per_image" in self.extra:
            if not self.image_rows:
                self.image_rows = [torch.zeros(0, 7, dtype=torch.float64, device=self.device)]
            if not self.image_names:
                self.image_names = [
                    torch.zeros(0, NAME_BYTES, dtype=torch.uint8, device=self.device)
                ]
        super()._sync_dist(dist_sync_fn, process_group)

    def _accumulated(self) -> list[str]:
        """Names of the sum states :meth:`_update_image` adds to."""
        keys = ["inter", "union", "matched", "targets", "fa_pixels", "pixels", "niou_images"]
        keys += ["niou_sum", "images", "true_pixels", "gt_pixels"]
        if "opdc" in self.extra:
            keys += list(_OPDC_INT_STATES) + list(_OPDC_FLOAT_STATES)
        if "shooting" in self.extra:
            keys += ["shoot_tp", "shoot_fp_area"]
        if "size_bins" in self.extra:
            keys += ["size_targets", "size_matched", "size_tiou_sum"]
        if "curves" in self.extra:
            keys += ["curve_tp", "curve_fp", "curve_precision_sum", "curve_recall_sum"]
            keys += ["curve_fpr_sum"]
        return keys

    def _update_image(
        self,
        pred: np.ndarray,
        gt: np.ndarray,
        values: np.ndarray | None,
        sums: dict[str, np.ndarray],
    ) -> list[float]:
        """Add one image to ``sums`` (in place), labelling each mask once.

        Arguments:
          pred (np.ndarray): ``H×W`` bool prediction.
          gt (np.ndarray): ``H×W`` bool target.
          values (np.ndarray | None): ``H×W`` logits (``"curves"`` only).
          sums (dict[str, np.ndarray]): running sums by state name (0-d or 1-d arrays).
        Returns:
          list[float]: the per-image row ``[inter, union, gt_pixels, targets, matched,
          fa_pixels, pixels]``.
        """
        pred_l, gt_l = _label(pred), _label(gt)
        pred_t, gt_t = _table(pred_l), _table(gt_l)
        gt_pixels, pred_pixels = int(gt_l.ids.size), int(pred_l.ids.size)
        needs_pairs = "opdc" in self.extra or "size_bins" in self.extra
        pairs = _pair_intersections(pred_l, gt_l, pred.shape[1]) if needs_pairs else None
        if pairs is not None:
            inter = int(pairs.sum())
        else:
            inter = _intersection(pred_l, gt) if gt_pixels else 0
        gt_to_pred = _greedy_match(gt_t, pred_t)
        matched = int((gt_to_pred >= 0).sum())
        fa_pixels = _fa_pixels(pred_t, gt_to_pred, self.fa_rule)
        size = self.fa_normaliser
        pixels = pred.size if size is None else size * size
        union = pred_pixels + gt_pixels - inter
        for key, value in (
            ("inter", inter),
            ("union", union),
            ("matched", matched),
            ("targets", gt_l.n),
            ("fa_pixels", fa_pixels),
            ("pixels", pixels),
            ("images", 1),
            ("true_pixels", pred.size),
            ("gt_pixels", gt_pixels),
        ):
            sums[key] += value
        if gt_pixels or self.empty_policy == "zero":
            sums["niou_sum"] += inter / (EPS + union)
            sums["niou_images"] += 1
        if "opdc" in self.extra:
            result = _opdc(gt_t, pred_t, pairs, pred.size, self.opdc_overlap, self.opdc_pad_empty)
            counts = _opdc_counts(gt_t, pred_t, result)
            for key, field in _OPDC_FIELDS.items():
                sums[key] += getattr(counts, field)
        if "shooting" in self.extra:
            detected, false_pixels = _shooting(pred, pred_l, gt_l, self.shooting_radii)
            sums["shoot_tp"] += detected
            sums["shoot_fp_area"] += false_pixels
        if "size_bins" in self.extra and gt_l.n:
            bins = np.searchsorted(np.asarray(self.size_edges), gt_t.areas, side="left")
            sums["size_targets"] += np.bincount(bins, minlength=len(self.size_labels))
            hit = np.flatnonzero(gt_to_pred >= 0)
            sums["size_matched"] += np.bincount(bins[hit], minlength=len(self.size_labels))
            for g in hit.tolist():
                j = int(gt_to_pred[g])
                both = int(pairs[g, j])
                sums["size_tiou_sum"][bins[g]] += both / (
                    int(gt_t.areas[g]) + int(pred_t.areas[j]) - both
                )
        if values is not None:
            self._update_curves(values, gt, gt_pixels, sums)
        return [inter, union, gt_pixels, gt_l.n, matched, fa_pixels, pixels]

    def _update_curves(
        self, values: np.ndarray, gt: np.ndarray, gt_pixels: int, sums: dict[str, np.ndarray]
    ) -> None:
        """Add one image to the pixel-curve sums (docs/metrics.md §10).

        Arguments:
          values (np.ndarray): ``H×W`` logits.
          gt (np.ndarray): ``H×W`` bool target.
          gt_pixels (int): ``|G|``.
          sums (dict[str, np.ndarray]): running sums, updated in place.
        """
        edges = self.curve_logit_edges
        positive = _counts_at_or_above(values.reshape(-1), edges, values.size)
        tp = _counts_at_or_above(values[gt], edges, gt_pixels)
        fp = positive - tp
        sums["curve_tp"] += tp
        sums["curve_fp"] += fp
        sums["curve_precision_sum"] += _ratio0(tp, positive)
        sums["curve_recall_sum"] += _ratio0(tp, np.full(tp.shape, gt_pixels))
        sums["curve_fpr_sum"] += _ratio0(fp, np.full(fp.shape, values.size - gt_pixels))

    def compute(self) -> dict[str, Tensor]:
        """Dataset-level scalar metrics (fractions; Fa as a raw ratio).

        Returns:
          dict[str, Tensor]: float64 scalars ``"IoU"``, ``"nIoU"``, ``"Pd"`` (NaN + warning with no
          targets), ``"Fa"`` (NaN with no images), then those of each ``extra`` in the order of
          the class docstring (ratios with a zero denominator are 0 as in PyIRSTDMetrics, except
          the size-bin ones, which are NaN for an empty bin).
        """
        return self._scalars()

    def _scalars(self) -> dict[str, Tensor]:
        """The scalars of :meth:`compute` from the current (possibly synced) states."""
        values = {"IoU": self._iou(), "nIoU": self._niou(), "Pd": self._pd(), "Fa": self._fa()}
        if "pixel" in self.extra:
            values.update(self._pixel_scores())
        if "opdc" in self.extra:
            values.update(self._opdc_scores())
        if "shooting" in self.extra:
            values["Pd_shoot"] = _tensor_ratio0(self.shoot_tp, self.targets)
            values["Fa_shoot"] = _tensor_ratio0(self.shoot_fp_area, self.true_pixels)
        if "size_bins" in self.extra:
            for k, label in enumerate(self.size_labels):
                count = self.size_targets[k].to(torch.float64)
                nan = torch.tensor(math.nan, dtype=torch.float64)
                values[f"Pd_area_{label}"] = torch.where(
                    count > 0, self.size_matched[k] / count.clamp_min(1), nan
                )
                values[f"tIoU_area_{label}"] = torch.where(
                    count > 0, self.size_tiou_sum[k] / count.clamp_min(1), nan
                )
        return values

    def _pixel_scores(self) -> dict[str, Tensor]:
        """Pixel precision, recall and F1 at ``threshold`` from the dataset sums."""
        inter = self.inter.to(torch.float64)
        pred_pixels = (self.union + self.inter - self.gt_pixels).to(torch.float64)
        precision = _tensor_ratio0(inter, pred_pixels)
        recall = _tensor_ratio0(inter, self.gt_pixels)
        f1 = _tensor_ratio0(2 * precision * recall, precision + recall)
        return {"Precision": precision, "Recall": recall, "F1": f1}

    def _opdc_scores(self) -> dict[str, Tensor]:
        """OPDC Pd / Fa, hIoU and the hIoU error analysis (docs/metrics.md §7-8)."""
        tp = self.opdc_tp.to(torch.float64)
        objects = tp + self.opdc_fp + self.opdc_fn
        seg_iou = _tensor_ratio0(self.opdc_iou_sum, tp)
        loc_iou = _tensor_ratio0(tp, objects)
        return {
            "Pd_OPDC": _tensor_ratio0(tp, tp + self.opdc_fn),
            "Fa_OPDC": _tensor_ratio0(self.opdc_fp_area, self.true_pixels),
            "hIoU": seg_iou * loc_iou,
            "seg_IoU": seg_iou,
            "seg_mrg_err": _tensor_ratio0(self.err_merge_sum, tp),
            "seg_itf_err": _tensor_ratio0(self.err_interference_sum, tp),
            "seg_pcp_err": _tensor_ratio0(self.err_perception_sum, tp),
            "loc_IoU": loc_iou,
            "loc_s2m_err": _tensor_ratio0(self.err_single_to_many, objects),
            "loc_m2s_err": _tensor_ratio0(self.err_many_to_single, objects),
            "loc_itf_err": _tensor_ratio0(self.err_interference, objects),
            "loc_pcp_err": _tensor_ratio0(self.err_perception, objects),
        }

    def report(self) -> dict[str, Any]:
        """Everything the evaluation report needs, synced across processes like ``compute``.

        Returns:
          dict[str, Any]: ``"scalars"`` (floats of :meth:`compute`), ``"curves"`` (None without
          ``"curves"``; else float lists under ``threshold`` (probability, increasing),
          ``precision``, ``recall``, ``f1``, ``tpr``, ``fpr`` (dataset-pooled counts) and
          ``mean_precision``, ``mean_recall``, ``mean_tpr``, ``mean_fpr`` (mean of per-image
          curves, PyIRSTDMetrics' "dynamic" curves)), ``"size_bins"`` (None or a list of
          ``{"bin", "targets", "Pd", "tIoU"}``), ``"images"`` (None or every image's
          ``{"name", "IoU", "targets", "missed", "fa_pixels", "Fa"}``, worst first) and
          ``"worst_images"`` (the first ``worst_images`` of those).
        """
        with self.sync_context(
            dist_sync_fn=self.dist_sync_fn,
            should_sync=self._to_sync,
            should_unsync=self._should_unsync,
        ):
            scalars = {key: float(value) for key, value in self._scalars().items()}
            curves = self._curves() if "curves" in self.extra else None
            sizes = None
            if "size_bins" in self.extra:
                sizes = [
                    {
                        "bin": label,
                        "targets": int(self.size_targets[k]),
                        "Pd": scalars[f"Pd_area_{label}"],
                        "tIoU": scalars[f"tIoU_area_{label}"],
                    }
                    for k, label in enumerate(self.size_labels)
                ]
            images = self._images() if "per_image" in self.extra else None
        return {
            "scalars": scalars,
            "curves": curves,
            "size_bins": sizes,
            "images": images,
            "worst_images": None if images is None else images[: self.worst_images],
        }

    def _curves(self) -> dict[str, list[float]]:
        """The pixel curves from the (synced) sums; see :meth:`report`."""
        tp = self.curve_tp.cpu().numpy()
        fp = self.curve_fp.cpu().numpy()
        gt_pixels = int(self.gt_pixels)
        background = int(self.true_pixels) - gt_pixels
        precision = _ratio0(tp, tp + fp)
        recall = _ratio0(tp, np.full(tp.shape, gt_pixels))
        images = max(int(self.images), 1)
        mean_recall = self.curve_recall_sum.cpu().numpy() / images
        return {
            "threshold": self.curve_thresholds.tolist(),
            "precision": precision.tolist(),
            "recall": recall.tolist(),
            "f1": _ratio0(2 * precision * recall, precision + recall).tolist(),
            "tpr": recall.tolist(),
            "fpr": _ratio0(fp, np.full(fp.shape, background)).tolist(),
            "mean_precision": (self.curve_precision_sum.cpu().numpy() / images).tolist(),
            "mean_recall": mean_recall.tolist(),
            "mean_tpr": mean_recall.tolist(),
            "mean_fpr": (self.curve_fpr_sum.cpu().numpy() / images).tolist(),
        }

    def _images(self) -> list[dict[str, Any]]:
        """Per-image scores, worst first (lowest IoU, then most missed targets, most false
        alarms, name); an image with neither prediction nor target has IoU 1."""
        rows = self.image_rows
        names = self.image_names
        if isinstance(rows, list):
            if not rows:
                return []
            rows, names = torch.cat(rows), torch.cat(names)
        table = []
        for row, name in zip(rows.tolist(), _decode_names(names), strict=True):
            inter, union, _, targets, matched, fa_pixels, pixels = row
            table.append(
                {
                    "name": name,
                    "IoU": inter / union if union else 1.0,
                    "targets": int(targets),
                    "missed": int(targets - matched),
                    "fa_pixels": int(fa_pixels),
                    "Fa": fa_pixels / pixels if pixels else math.nan,
                }
            )
        table.sort(key=lambda r: (r["IoU"], -r["missed"], -r["fa_pixels"], r["name"]))
        return table


_OPDC_FIELDS: dict[str, str] = {
    "opdc_tp": "tp",
    "opdc_fp": "fp",
    "opdc_fn": "fn",
    "opdc_fp_area": "fp_area",
    "err_interference": "interference",
    "err_perception": "perception",
    "err_many_to_single": "many_to_single",
    "err_single_to_many": "single_to_many",
    "opdc_iou_sum": "iou_sum",
    "err_merge_sum": "merge_sum",
    "err_interference_sum": "interference_sum",
    "err_perception_sum": "perception_sum",
}
"""State name → :class:`OPDCCounts` field."""

_OPDC_INT_STATES: tuple[str, ...] = tuple(list(_OPDC_FIELDS)[:8])
_OPDC_FLOAT_STATES: tuple[str, ...] = tuple(list(_OPDC_FIELDS)[8:])


def _tensor_ratio0(num: Tensor, den: Tensor) -> Tensor:
    """``num / den`` in float64, 0 where ``den == 0`` (PyIRSTDMetrics' ``divide_func``)."""
    num = torch.as_tensor(num).to(torch.float64)
    den = torch.as_tensor(den).to(torch.float64)
    return torch.where(den == 0, torch.zeros_like(num), num / torch.where(den == 0, 1.0, den))


def _encode_names(names: Sequence[str]) -> Tensor:
    """UTF-8 names as a zero-padded ``[B, NAME_BYTES]`` uint8 tensor (longer names are cut)."""
    out = torch.zeros(len(names), NAME_BYTES, dtype=torch.uint8)
    for k, name in enumerate(names):
        data = str(name).encode("utf-8")[:NAME_BYTES]
        out[k, : len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    return out


def _decode_names(encoded: Tensor) -> list[str]:
    """Inverse of :func:`_encode_names`."""
    return [
        bytes(row).rstrip(b"\0").decode("utf-8", errors="replace") for row in encoded.cpu().numpy()
    ]


def build_metrics(cfg: Mapping[str, Any] | None) -> IRSTDMetrics:
    """The metric object of a ``metrics:`` config node (the call the training/evaluation code
    makes).

    Arguments:
      cfg (Mapping | None): keyword arguments of :class:`IRSTDMetrics` (``threshold``,
        ``fa_rule``, ``fa_normaliser``, ``empty_policy``, ``extra``, ``opdc_overlap``,
        ``opdc_pad_empty``, ``shooting_radii``, ``size_bins``, ``curve_bins``,
        ``worst_images``); None gives the defaults.
    Returns:
      IRSTDMetrics: the metric.
    Raises:
      ValueError: an unknown key (named, with the accepted ones).
    """
    options = dict(cfg or {})
    accepted = set(inspect.signature(IRSTDMetrics.__init__).parameters) - {"self", "kwargs"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ValueError(f"metrics has unknown key(s) {unknown}; accepted: {sorted(accepted)}")
    return IRSTDMetrics(**options)


class IoUMetric(_IRSTDStatsMetric):
    """Dataset-level IoU (§2) alone; skips the connected components. Same arguments as
    :class:`IRSTDMetrics`."""

    higher_is_better = True
    _with_detection = False

    def compute(self) -> Tensor:
        """Dataset IoU.

        Returns:
          Tensor: float64 scalar ``Σ|P∩G| / (EPS + Σ|P∪G|)``.
        """
        return self._iou()


class NIoUMetric(_IRSTDStatsMetric):
    """Mean per-image IoU (§3) alone; ``empty_policy`` applies. Same arguments as
    :class:`IRSTDMetrics`."""

    higher_is_better = True
    _with_detection = False

    def compute(self) -> Tensor:
        """Mean per-image IoU.

        Returns:
          Tensor: float64 scalar nIoU (NaN when no image is counted).
        """
        return self._niou()


class PdMetric(_IRSTDStatsMetric):
    """Target-level probability of detection (§4) alone. Same arguments as
    :class:`IRSTDMetrics`."""

    higher_is_better = True

    def compute(self) -> Tensor:
        """Probability of detection.

        Returns:
          Tensor: float64 scalar Pd (NaN with a warning when there are no targets).
        """
        return self._pd()


class FaMetric(_IRSTDStatsMetric):
    """Pixel-level false-alarm rate (§5) alone; ``fa_rule`` and ``fa_normaliser`` apply. Same
    arguments as :class:`IRSTDMetrics`."""

    higher_is_better = False

    def compute(self) -> Tensor:
        """False-alarm rate.

        Returns:
          Tensor: float64 scalar Fa raw ratio (NaN when no image was scored).
        """
        return self._fa()


class PdFaCurve(_Float64StateMetric):
    """Pd, Fa and IoU at several thresholds (the Pd-Fa curve of evaluate.py); DDP-summed.

    The target is labelled once per image; the prediction once per threshold.

    Arguments:
      thresholds (Sequence[float]): logit thresholds (pixel positive iff ``logit > t``), or
        probability thresholds when ``probabilities=True``.
      probabilities (bool): interpret ``thresholds`` as probabilities ``p``; they are converted to
        logits ``log(p / (1 - p))`` so that ``σ(x) > p`` ⇔ ``x > logit(p)`` (0.5 → 0).
      fa_rule (str): ``"component"`` (default) or ``"legacy_area"``.
      fa_normaliser (int | str | None): Fa denominator, see :func:`parse_fa_normaliser`.
      **kwargs: forwarded to ``torchmetrics.Metric``.
    """

    higher_is_better = None

    def __init__(
        self,
        thresholds: Sequence[float],
        probabilities: bool = False,
        fa_rule: str = "component",
        fa_normaliser: int | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        values = [float(t) for t in thresholds]
        if not values:
            raise ValueError("PdFaCurve needs at least one threshold")
        if probabilities:
            if any(not 0.0 <= p <= 1.0 for p in values):
                raise ValueError(f"probability thresholds must lie in [0, 1], got {values}")
            self.logit_thresholds = [_logit(p) for p in values]
        else:
            self.logit_thresholds = values
        self.thresholds = values
        self.fa_rule = _check_fa_rule(fa_rule)
        self.fa_normaliser = parse_fa_normaliser(fa_normaliser)
        for name in ("inter", "union", "matched", "fa_pixels"):
            self._add_sum_state(name, torch.int64, size=len(values))
        for name in ("targets", "pixels"):
            self._add_sum_state(name, torch.int64)

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Accumulate one batch at every threshold.

        Arguments:
          preds (Tensor): float logits ``B×1×H×W`` or ``B×H×W``.
          target (Tensor): same shape, {0,1}, {0,255} or bool.
        """
        logits, tgt = _check_batch(preds, target)
        gt = _binarise_target(tgt)
        values = logits.cpu()
        values = (values.float() if values.dtype == torch.bfloat16 else values).numpy()
        count = len(self.logit_thresholds)
        inter = np.zeros(count, dtype=np.int64)
        union = np.zeros(count, dtype=np.int64)
        matched = np.zeros(count, dtype=np.int64)
        fa_pixels = np.zeros(count, dtype=np.int64)
        targets = pixels = 0
        for b in range(values.shape[0]):
            gt_table = _table(_label(gt[b]))
            gt_pixels = int(gt_table.areas.sum())
            targets += int(gt_table.areas.size)
            size = self.fa_normaliser
            pixels += gt[b].size if size is None else size * size
            for i, threshold in enumerate(self.logit_thresholds):
                pred_labelled = _label(values[b] > np.float64(threshold))
                pred_table = _table(pred_labelled)
                hit = _intersection(pred_labelled, gt[b]) if gt_pixels else 0
                inter[i] += hit
                union[i] += pred_labelled.ids.size + gt_pixels - hit
                hits, _, false_pixels = _detection_stats(gt_table, pred_table, self.fa_rule)
                matched[i] += hits
                fa_pixels[i] += false_pixels
        device = self.inter.device
        self.inter += torch.from_numpy(inter).to(device)
        self.union += torch.from_numpy(union).to(device)
        self.matched += torch.from_numpy(matched).to(device)
        self.fa_pixels += torch.from_numpy(fa_pixels).to(device)
        self.targets += targets
        self.pixels += pixels

    def compute(self) -> dict[str, Tensor]:
        """The curve, one entry per threshold in the given order.

        Returns:
          dict[str, Tensor]: float64 ``[T]`` tensors ``"threshold"`` (as given), ``"Pd"`` (NaN with
          a warning when there are no targets), ``"Fa"`` (raw ratio) and ``"IoU"``.
        """
        return {
            "threshold": torch.tensor(self.thresholds, dtype=torch.float64),
            "Pd": _nan_ratio(self.matched, self.targets, "Pd (no ground-truth targets)"),
            "Fa": _nan_ratio(self.fa_pixels, self.pixels, "Fa (no images scored)"),
            "IoU": self.inter.to(torch.float64) / (EPS + self.union.to(torch.float64)),
        }


def _logit(p: float) -> float:
    """Float64 logit with the limits ``logit(0) = -inf`` and ``logit(1) = +inf``.

    Arguments:
      p (float): probability in [0, 1].
    Returns:
      float: ``log(p / (1 - p))``.
    """
    if p <= 0.0:
        return -math.inf
    if p >= 1.0:
        return math.inf
    return math.log(p) - math.log1p(-p)


__all__ = [
    "EMPTY_POLICIES",
    "EPS",
    "EXTRAS",
    "FA_RULES",
    "MATCH_DISTANCE",
    "NAME_BYTES",
    "OPDC_OVERLAP",
    "SHOOTING_RADII",
    "SIZE_EDGES",
    "Component",
    "FaMetric",
    "IRSTDMetrics",
    "ImageStats",
    "IoUMetric",
    "MatchResult",
    "NIoUMetric",
    "OPDCCounts",
    "OPDCResult",
    "PdFaCurve",
    "PdMetric",
    "build_metrics",
    "connected_components",
    "curve_thresholds",
    "image_stats",
    "label_components",
    "match_components",
    "opdc_match",
    "parse_fa_normaliser",
    "shooting_rule",
    "size_labels",
]
