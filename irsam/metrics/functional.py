# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Per-image analysis on NumPy masks: every count behind the IRSTD metrics (docs/metrics.md).

One image is analysed by :func:`count_image`: each mask is labelled once (8-connected,
:class:`LabelledMask`), and the anchor counts of §2-5 (intersection, union, greedy centroid
matching, false-alarm pixels) plus the extra counts that :class:`CountOptions` asks for (OPDC
matching §7-8, the shooting rule §9, pixel curves §10, target-size bins §11) come from that one
labelling. The result is one :class:`ImageStats` record; the dataset metrics of
:mod:`irsam.metrics.irstd` are ratios of its sums, and :func:`image_stats` is the checked entry
point for a single pair of masks.

The other public functions serve pictures and notebooks: :func:`label_components`,
:func:`connected_components`, :func:`match_components`, :func:`opdc_match` and
:func:`shooting_rule`.

When the options change the numbers:

* ``fa_rule="legacy_area"`` (DNANet, MSHNet, IRSAM, BasicIRSTD before 2024) differs from the
  default ``"component"`` only on images with an unmatched predicted component whose area equals
  the area of a matched component in the same image: the legacy rule does not count it, so its Fa
  is lower or equal.
* ``fa_normaliser=S`` divides by ``S*S`` per image instead of the true pixel count; it equals the
  default only when every image is ``S×S``. IRSAM uses 512, DNANet 256.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

EPS: float = float(np.finfo(np.float64).eps)
"""The ε guard of IoU and nIoU: float64 machine epsilon, 2.22e-16 (``np.spacing(1)``)."""

MATCH_DISTANCE: float = 3.0
"""A predicted component detects a target iff their centroids are STRICTLY closer than this (px)."""

FA_RULES: tuple[str, ...] = ("component", "legacy_area")
"""Accepted ``fa_rule`` values (docs/metrics.md §5)."""

EMPTY_POLICIES: tuple[str, ...] = ("zero", "skip")
"""Accepted ``empty_policy`` values (docs/metrics.md §3)."""

OPDC_OVERLAP: float = 0.5
"""OPDC overlap rule: a target/prediction pair with component IoU >= this is an overlap match."""

SHOOTING_RADII: tuple[int, int] = (1, 4)
"""Shooting rule (DTUM): detection box half-side and false-alarm exclusion box half-side (px)."""

SIZE_EDGES: tuple[int, ...] = (9, 80)
"""Target-size bin edges (area in px): ``<= 9``, ``10-80``, ``> 80``."""

_STRUCTURE_8 = np.ones((3, 3), dtype=bool)


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


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


class ComponentTable(NamedTuple):
    """Vectorised properties of the ``n`` components of a mask, in label (raster) order.

    Arguments:
      rows (np.ndarray): float64 ``[n]`` centroid rows.
      cols (np.ndarray): float64 ``[n]`` centroid columns.
      areas (np.ndarray): int64 ``[n]`` pixel counts.
    """

    rows: np.ndarray
    cols: np.ndarray
    areas: np.ndarray


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


class ShootingCounts(NamedTuple):
    """Shooting-rule counts of one image (docs/metrics.md §9).

    Arguments:
      detected (int): targets with a predicted pixel inside their detection box.
      false_pixels (int): predicted pixels outside every exclusion box.
    """

    detected: int
    false_pixels: int


class SizeBinCounts(NamedTuple):
    """Per-target-size-bin counts of one image (docs/metrics.md §11), ``K`` bins.

    Arguments:
      targets (np.ndarray): int64 ``[K]`` targets per bin.
      matched (np.ndarray): int64 ``[K]`` targets detected by the §4 matching.
      tiou_sum (np.ndarray): float64 ``[K]`` sum of the detected targets' IoU with the component
        that detected them.
    """

    targets: np.ndarray
    matched: np.ndarray
    tiou_sum: np.ndarray


class CurveCounts(NamedTuple):
    """Pixel counts and per-image rates at each curve threshold (docs/metrics.md §10), ``T``
    thresholds.

    Arguments:
      tp (np.ndarray): int64 ``[T]`` target pixels at or above the threshold.
      fp (np.ndarray): int64 ``[T]`` background pixels at or above the threshold.
      precision (np.ndarray): float64 ``[T]`` this image's precision (0 without positives).
      recall (np.ndarray): float64 ``[T]`` this image's recall (0 without target pixels).
      fpr (np.ndarray): float64 ``[T]`` this image's false-positive rate (0 without background).
    """

    tp: np.ndarray
    fp: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    fpr: np.ndarray


@dataclass(frozen=True)
class ImageStats:
    """Every count of one image; dataset metrics are ratios of their sums.

    Arguments:
      inter (int): |P ∩ G|, predicted-positive target pixels.
      union (int): |P ∪ G|.
      pred_pixels (int): |P|.
      gt_pixels (int): |G|.
      matched (int): targets detected (one-to-one greedy centroid matching, §4).
      targets (int): ground-truth components (8-connected).
      fa_pixels (int): false-alarm pixels under the chosen ``fa_rule`` (§5).
      pixels (int): Fa denominator of this image: ``H*W``, or ``S*S`` with ``fa_normaliser=S``.
      true_pixels (int): ``H*W``.
      opdc (OPDCCounts | None): OPDC counts (§7-8), when asked for.
      shooting (ShootingCounts | None): shooting-rule counts (§9), when asked for.
      size_bins (SizeBinCounts | None): target-size bin counts (§11), when asked for.
      curves (CurveCounts | None): pixel-curve counts (§10), when asked for.
    """

    inter: int
    union: int
    pred_pixels: int
    gt_pixels: int
    matched: int
    targets: int
    fa_pixels: int
    pixels: int
    true_pixels: int
    opdc: OPDCCounts | None = None
    shooting: ShootingCounts | None = None
    size_bins: SizeBinCounts | None = None
    curves: CurveCounts | None = None

    @property
    def iou(self) -> float:
        """Per-image IoU ``inter / (EPS + union)``: the nIoU summand (0 for an empty target).

        Returns:
          float: in [0, 1].
        """
        return self.inter / (EPS + self.union)


@dataclass(frozen=True, eq=False)
class CountOptions:
    """What :func:`count_image` computes besides the anchor counts, and the Fa rules.

    The values are used as given: :func:`image_stats` and the metric constructors check them.

    Arguments:
      fa_rule (str): one of :data:`FA_RULES`.
      fa_normaliser (int | None): ``None`` = true pixel counts; ``S``: ``S*S`` pixels per image.
      opdc_overlap (float | None): OPDC overlap threshold; None skips the OPDC counts.
      opdc_pad_empty (bool): PyIRSTDMetrics' phantom row/column on empty images (§7).
      shooting_radii (tuple[int, int] | None): shooting-rule ``(r1, r2)``; None skips it.
      size_edges (tuple[int, ...] | None): increasing target-area bin edges; None skips the bins.
      curve_logit_edges (np.ndarray | None): float64 ``[T]`` increasing logit thresholds of the
        pixel curves (``edges[0] = -inf``); None skips the curves.
    """

    fa_rule: str = "component"
    fa_normaliser: int | None = None
    opdc_overlap: float | None = None
    opdc_pad_empty: bool = True
    shooting_radii: tuple[int, int] | None = None
    size_edges: tuple[int, ...] | None = None
    curve_logit_edges: np.ndarray | None = None


# --------------------------------------------------------------------------------------------
# Labelling
# --------------------------------------------------------------------------------------------


def _compress_axis(coords: np.ndarray) -> tuple[np.ndarray, int]:
    """Compressed ``[K]`` coordinates (each run of empty lines becomes one) and the axis length."""
    # Two pixels are 8-adjacent iff their rows and their columns differ by at most 1: one empty
    # line still keeps non-adjacent lines apart, and the order is kept, so the components and
    # their raster label order are unchanged.
    lines, inverse = np.unique(coords, return_inverse=True)
    gaps = np.concatenate(([0], np.cumsum(np.diff(lines) > 1)))
    compressed = np.arange(lines.size) + gaps
    return compressed[inverse], int(compressed[-1]) + 1


class LabelledMask:
    """A binary mask labelled once (8-connected, ``scipy.ndimage.label`` with a 3×3 structure).

    The labelling runs on a copy of the mask with empty row and column runs collapsed
    (:func:`_compress_axis`), so its cost follows the number of positive pixels rather than the
    image size. Labels come in raster order of each component's first pixel, like skimage
    ``label(connectivity=2)``. The component table is computed on first use and kept.

    Arguments:
      mask (np.ndarray): ``H×W`` bool mask (not checked; :func:`image_stats` checks its input).

    Attributes:
      mask (np.ndarray): the mask.
      ids (np.ndarray): int ``[K]`` label (1..n) of each positive pixel, pixels in raster order.
      rows (np.ndarray): int64 ``[K]`` row of each positive pixel.
      cols (np.ndarray): int64 ``[K]`` column of each positive pixel.
      n (int): number of components.
    """

    __slots__ = ("_table", "cols", "ids", "mask", "n", "rows")

    def __init__(self, mask: np.ndarray) -> None:
        self.mask = mask
        flat = np.flatnonzero(mask)
        self.rows, self.cols = np.divmod(flat, mask.shape[1])
        self._table: ComponentTable | None = None
        if flat.size == 0:
            self.ids, self.n = np.zeros(0, dtype=np.int32), 0
            return
        small_rows, height = _compress_axis(self.rows)
        small_cols, width = _compress_axis(self.cols)
        small = np.zeros((height, width), dtype=bool)
        small[small_rows, small_cols] = True
        labels, n = ndimage.label(small, structure=_STRUCTURE_8)
        self.ids, self.n = labels[small_rows, small_cols], int(n)

    @property
    def pixels(self) -> int:
        """Number of positive pixels ``K``.

        Returns:
          int: ``K``.
        """
        return int(self.ids.size)

    @property
    def table(self) -> ComponentTable:
        """Centroids and areas of the components, vectorised with ``np.bincount``.

        Centroids are (sum of coordinates) / area: exact integer sums and one division, hence
        bit-identical to skimage's ``regionprops(...).centroid``.

        Returns:
          ComponentTable: ``rows``, ``cols`` float64 ``[n]`` and ``areas`` int64 ``[n]``.
        """
        if self._table is None:
            self._table = _table(self)
        return self._table


def _table(labelled: LabelledMask) -> ComponentTable:
    """Centroids and areas of a labelled mask's components (see :attr:`LabelledMask.table`)."""
    ids, n = labelled.ids, labelled.n
    if n == 0:
        empty = np.zeros(0, dtype=np.float64)
        return ComponentTable(empty, empty, np.zeros(0, dtype=np.int64))
    areas = np.bincount(ids, minlength=n + 1)[1:].astype(np.int64)
    row_sums = np.bincount(ids, weights=labelled.rows.astype(np.float64), minlength=n + 1)[1:]
    col_sums = np.bincount(ids, weights=labelled.cols.astype(np.float64), minlength=n + 1)[1:]
    return ComponentTable(row_sums / areas, col_sums / areas, areas)


def _check_mask(mask: np.ndarray, name: str) -> np.ndarray:
    """Validate a 2-D mask (``name`` for the message) and return it as a C-contiguous bool array."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"{name} must be a 2-D H×W mask, got shape {mask.shape}")
    return np.ascontiguousarray(mask, dtype=bool)


def _check_pair(pred_bool: np.ndarray, gt_bool: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate a prediction and a target of the same shape; return them as bool arrays."""
    pred = _check_mask(pred_bool, "pred_bool")
    gt = _check_mask(gt_bool, "gt_bool")
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and target {gt.shape} differ in shape")
    return pred, gt


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


def _components(labelled: LabelledMask) -> list[Component]:
    """The components of a labelled mask with centroids, areas and bounding boxes."""
    if labelled.n == 0:
        return []
    table = labelled.table
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


def connected_components(pred_bool: np.ndarray) -> list[Component]:
    """8-connected components of a binary mask with unweighted centroids, areas and boxes.

    Arguments:
      pred_bool (np.ndarray): ``H×W`` mask, non-zero is positive.
    Returns:
      list[Component]: ``(centroid_row, centroid_col, area, bbox)`` per component in label
      (raster) order; empty for an empty mask.
    """
    return _components(LabelledMask(_check_mask(pred_bool, "pred_bool")))


# --------------------------------------------------------------------------------------------
# Anchor counts: greedy centroid matching and false alarms (§4-5)
# --------------------------------------------------------------------------------------------


def _centroid_distances(gt: ComponentTable, pred: ComponentTable) -> np.ndarray:
    """Euclidean centroid distances ``[m, n]`` in float64 (targets × predicted components)."""
    d_row = gt.rows[:, None] - pred.rows[None, :]
    d_col = gt.cols[:, None] - pred.cols[None, :]
    return np.sqrt(d_row * d_row + d_col * d_col)


def _greedy_match(gt: ComponentTable, pred: ComponentTable) -> np.ndarray:
    """Greedy §4 matching: int64 ``[m]`` index of each target's predicted component, or -1."""
    # targets in label order each take the first still-free candidate closer than 3 px
    gt_to_pred = np.full(gt.areas.size, -1, dtype=np.int64)
    if gt.areas.size == 0 or pred.areas.size == 0:
        return gt_to_pred
    close = _centroid_distances(gt, pred) < MATCH_DISTANCE
    free = np.ones(pred.areas.size, dtype=bool)
    for g in np.flatnonzero(close.any(axis=1)):
        candidates = np.flatnonzero(close[g] & free)
        if candidates.size:
            free[candidates[0]] = False
            gt_to_pred[g] = candidates[0]
    return gt_to_pred


def _fa_pixels(pred: ComponentTable, gt_to_pred: np.ndarray, fa_rule: str) -> int:
    """False-alarm pixels of one image under ``fa_rule`` (§5.1 ``component``, §5.2 legacy)."""
    # component: every pixel of an unmatched component; legacy_area: the area of each component
    # whose area equals no matched area
    matched_areas = pred.areas[gt_to_pred[gt_to_pred >= 0]]
    if fa_rule == "component":
        return int(pred.areas.sum() - matched_areas.sum())
    return int(pred.areas[~np.isin(pred.areas, matched_areas)].sum())


def _check_fa_rule(fa_rule: str) -> str:
    """Return ``fa_rule`` when it is one of :data:`FA_RULES`, else raise ValueError."""
    if fa_rule not in FA_RULES:
        raise ValueError(f"metrics.fa_rule must be one of {FA_RULES}, got {fa_rule!r}")
    return fa_rule


def _check_fa_normaliser(fa_normaliser: int | None) -> int | None:
    """Return the Fa denominator option (None or a positive int side ``S``), else raise."""
    if fa_normaliser is None:
        return None
    if isinstance(fa_normaliser, int) and not isinstance(fa_normaliser, bool) and fa_normaliser > 0:
        return fa_normaliser
    raise ValueError(
        "metrics.fa_normaliser must be null (each image's true pixel count) or a positive int S "
        f"(S*S pixels per image), got {fa_normaliser!r}: write e.g. metrics.fa_normaliser=512 "
        "or metrics.fa_normaliser=null"
    )


def match_components(pred_bool: np.ndarray, gt_bool: np.ndarray) -> MatchResult:
    """Components of prediction and target and their §4 matching (detected / missed / false alarm).

    Arguments:
      pred_bool (np.ndarray): ``H×W`` binary prediction.
      gt_bool (np.ndarray): ``H×W`` binary target.
    Returns:
      MatchResult: both component lists and the target → prediction assignment.
    """
    pred = LabelledMask(_check_mask(pred_bool, "pred_bool"))
    gt = LabelledMask(_check_mask(gt_bool, "gt_bool"))
    gt_to_pred = _greedy_match(gt.table, pred.table)
    return MatchResult(_components(pred), _components(gt), tuple(int(i) for i in gt_to_pred))


def _intersection(pred: LabelledMask, gt: np.ndarray) -> int:
    """|P ∩ G| from the predicted pixels' coordinates and the ``H×W`` bool target."""
    return int(np.count_nonzero(gt[pred.rows, pred.cols]))


# --------------------------------------------------------------------------------------------
# OPDC matching and hIoU error analysis (§7-8)
# --------------------------------------------------------------------------------------------


def _pair_intersections(pred: LabelledMask, gt: LabelledMask) -> np.ndarray:
    """int64 ``[m, n]`` pixel counts ``|pred_j ∩ gt_i|`` of every target and predicted component."""
    # both labellings list their pixels in raster order: one searchsorted of the predicted flat
    # indices into the target's finds the common pixels
    m, n = gt.n, pred.n
    if m == 0 or n == 0:
        return np.zeros((m, n), dtype=np.int64)
    width = gt.mask.shape[1]
    gt_flat = gt.rows * width + gt.cols
    pred_flat = pred.rows * width + pred.cols
    where = np.searchsorted(gt_flat, pred_flat)
    inside = where < gt_flat.size
    inside[inside] = gt_flat[where[inside]] == pred_flat[inside]
    pair = (gt.ids[where[inside]].astype(np.int64) - 1) * n + pred.ids[inside] - 1
    return np.bincount(pair, minlength=m * n).reshape(m, n).astype(np.int64)


def _opdc(
    gt: ComponentTable,
    pred: ComponentTable,
    inter: np.ndarray,
    image_pixels: int,
    overlap: float,
    pad_empty: bool,
) -> OPDCResult:
    """OPDC matching (§7) of ``m`` targets and ``n`` predictions with ``[m, n]`` intersections."""
    # Phantom pairs (pad_empty: one row / column when m or n is 0) are H*W pixels apart.
    # 1. Overlap priority: a minimum-total-distance assignment over all pairs, of which only the
    #    pairs with component IoU >= overlap are kept.
    # 2. Distance compensation: a second minimum-distance assignment between the targets and
    #    predictions still free, keeping the pairs whose centroids are < 3 px apart.
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
    pred, gt = (LabelledMask(mask) for mask in _check_pair(pred_bool, gt_bool))
    inter = _pair_intersections(pred, gt)
    return _opdc(gt.table, pred.table, inter, pred.mask.size, overlap, pad_empty)


def _opdc_counts(gt: ComponentTable, pred: ComponentTable, result: OPDCResult) -> OPDCCounts:
    """One image's OPDC matching as :class:`OPDCCounts` (float sums in row-major pair order)."""
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


def _check_overlap(overlap: float) -> float:
    """Return the OPDC overlap threshold as a float in [0, 1), else raise ValueError."""
    if not 0.0 <= float(overlap) < 1.0:
        raise ValueError(f"metrics.opdc_overlap must be in [0, 1), got {overlap}")
    return float(overlap)


# --------------------------------------------------------------------------------------------
# Shooting rule (§9)
# --------------------------------------------------------------------------------------------


def _box_offsets(radius: int) -> list[int]:
    """Offsets ``-radius..radius`` of a square box's half-side."""
    return list(range(-radius, radius + 1))


def _shift_inside(
    rows: np.ndarray, cols: np.ndarray, dr: int, dc: int, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coordinates shifted by ``(dr, dc)`` that stay inside ``shape``, and the ``[K]`` keep mask."""
    r, c = rows + dr, cols + dc
    keep = (r >= 0) & (r < shape[0]) & (c >= 0) & (c < shape[1])
    return r[keep], c[keep], keep


def _shooting(pred: LabelledMask, gt: LabelledMask, radii: tuple[int, int]) -> ShootingCounts:
    """Shooting-rule counts (§9) of one image with box half-sides ``radii = (r1, r2)``."""
    # A target is detected when a predicted pixel lies in the (2 r1 + 1)² box centred on any of
    # its pixels; a predicted pixel is a false alarm when it lies outside every (2 r2 + 1)² box
    # centred on a target pixel (boxes clipped to the image).
    if gt.n == 0:
        return ShootingCounts(0, pred.pixels)
    shape = pred.mask.shape
    hit = np.zeros(gt.ids.size, dtype=bool)
    for dr in _box_offsets(radii[0]):
        for dc in _box_offsets(radii[0]):
            r, c, keep = _shift_inside(gt.rows, gt.cols, dr, dc, shape)
            hit[keep] |= pred.mask[r, c]
    detected = np.zeros(gt.n + 1, dtype=bool)
    detected[gt.ids[hit]] = True
    if pred.pixels == 0:
        return ShootingCounts(int(detected.sum()), 0)
    band = []  # the target pixels widened along columns (flat indices, deduplicated below)
    for dc in _box_offsets(radii[1]):
        r, c, _ = _shift_inside(gt.rows, gt.cols, 0, dc, shape)
        band.append(r * shape[1] + c)
    band_rows, band_cols = np.divmod(np.unique(np.concatenate(band)), shape[1])
    near = np.zeros(shape, dtype=bool)
    for dr in _box_offsets(radii[1]):
        r, c, _ = _shift_inside(band_rows, band_cols, dr, 0, shape)
        near[r, c] = True
    false_pixels = pred.pixels - int(np.count_nonzero(near[pred.rows, pred.cols]))
    return ShootingCounts(int(detected.sum()), false_pixels)


def _check_radii(radii: Sequence[int]) -> tuple[int, int]:
    """Return the shooting-rule radii ``(r1, r2)`` as ints when ``r2 > r1 > 0``, else raise."""
    r1, r2 = (int(r) for r in radii)
    if not r2 > r1 > 0:
        raise ValueError(
            f"metrics.shooting_radii must be (r1, r2) with r2 > r1 > 0, got {tuple(radii)}"
        )
    return r1, r2


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
    pred, gt = (LabelledMask(mask) for mask in _check_pair(pred_bool, gt_bool))
    detected, false_pixels = _shooting(pred, gt, _check_radii(radii))
    return detected, gt.n, false_pixels


# --------------------------------------------------------------------------------------------
# Target-size bins (§11) and pixel curves (§10)
# --------------------------------------------------------------------------------------------


def size_labels(edges: Sequence[int]) -> list[str]:
    """Key suffixes of the target-size bins: ``le9``, ``10_80``, ``gt80`` for edges (9, 80).

    Arguments:
      edges (Sequence[int]): increasing area edges ``e_0 < e_1 < ...`` in pixels.
    Returns:
      list[str]: ``len(edges) + 1`` labels.
    """
    values = [int(e) for e in edges]
    if not values or any(b <= a for a, b in itertools.pairwise(values)) or values[0] < 1:
        raise ValueError(f"metrics.size_bins must be increasing positive areas, got {list(edges)}")
    labels = [f"le{values[0]}"]
    labels += [f"{a + 1}_{b}" for a, b in itertools.pairwise(values)]
    return labels + [f"gt{values[-1]}"]


def _size_bin_counts(
    gt: ComponentTable,
    pred: ComponentTable,
    gt_to_pred: np.ndarray,
    pairs: np.ndarray,
    edges: tuple[int, ...],
) -> SizeBinCounts:
    """Targets, detected targets and target-IoU sums per size bin of one image (§11)."""
    count = len(edges) + 1
    bins = np.searchsorted(np.asarray(edges), gt.areas, side="left")
    hit = np.flatnonzero(gt_to_pred >= 0)
    tiou_sum = np.zeros(count, dtype=np.float64)
    for g in hit.tolist():
        j = int(gt_to_pred[g])
        both = int(pairs[g, j])
        tiou_sum[bins[g]] += both / (int(gt.areas[g]) + int(pred.areas[j]) - both)
    return SizeBinCounts(
        np.bincount(bins, minlength=count), np.bincount(bins[hit], minlength=count), tiou_sum
    )


def curve_thresholds(bins: int) -> np.ndarray:
    """Probability thresholds of the pixel curves: ``linspace(0, 1, bins)[:-1]`` (docs §10).

    Arguments:
      bins (int): number of bin edges (PyIRSTDMetrics' ``num_bins``), at least 2.
    Returns:
      np.ndarray: float64 ``[bins - 1]`` increasing thresholds; a pixel counts as positive at
      threshold ``t`` iff its probability is ``>= t``.
    """
    if int(bins) < 2:
        raise ValueError(f"metrics.curve_bins must be at least 2, got {bins}")
    return np.linspace(0.0, 1.0, int(bins))[:-1]


def logit(p: float) -> float:
    """Float64 logit with the limits ``logit(0) = -inf`` and ``logit(1) = +inf``.

    Arguments:
      p (float): probability in [0, 1].
    Returns:
      float: ``log(p / (1 - p))``; ``σ(x) > p`` ⇔ ``x > logit(p)``.
    """
    if p <= 0.0:
        return -math.inf
    if p >= 1.0:
        return math.inf
    return math.log(p) - math.log1p(-p)


def _counts_at_or_above(values: np.ndarray, logit_edges: np.ndarray, total: int) -> np.ndarray:
    """int64 ``[T]`` count of the ``total`` values ``>= logit_edges[k]`` (``edges[0] = -inf``)."""
    # only the values reaching edges[1] are sorted into bins; the rest count for edge 0 only
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


def _curve_counts(
    values: np.ndarray, gt: np.ndarray, gt_pixels: int, logit_edges: np.ndarray
) -> CurveCounts:
    """Pixel-curve counts of one image from its ``H×W`` logits and bool target (§10)."""
    positive = _counts_at_or_above(values.reshape(-1), logit_edges, values.size)
    tp = _counts_at_or_above(values[gt], logit_edges, gt_pixels)
    fp = positive - tp
    return CurveCounts(
        tp=tp,
        fp=fp,
        precision=_ratio0(tp, positive),
        recall=_ratio0(tp, np.full(tp.shape, gt_pixels)),
        fpr=_ratio0(fp, np.full(fp.shape, values.size - gt_pixels)),
    )


# --------------------------------------------------------------------------------------------
# The per-image record
# --------------------------------------------------------------------------------------------


def count_image(
    pred: LabelledMask,
    gt: LabelledMask,
    options: CountOptions,
    values: np.ndarray | None = None,
) -> ImageStats:
    """Every per-image count the metrics sum, from one labelling per mask.

    The anchor counts (§2-5) are always computed; ``options`` adds the OPDC, shooting-rule,
    size-bin and curve counts. A target labelled once can be scored against several predictions
    (the thresholds of a Pd-Fa curve): its component table is kept by the :class:`LabelledMask`.

    Arguments:
      pred (LabelledMask): the labelled ``H×W`` prediction.
      gt (LabelledMask): the labelled ``H×W`` target, same shape (not checked).
      options (CountOptions): the Fa rules and the extra counts to compute.
      values (np.ndarray | None): ``H×W`` logits of the prediction; needed only with
        ``options.curve_logit_edges``.
    Returns:
      ImageStats: the image's counts.
    """
    pred_pixels, gt_pixels = pred.pixels, gt.pixels
    size_edges = options.size_edges
    pairs = None
    if options.opdc_overlap is not None or size_edges is not None:
        pairs = _pair_intersections(pred, gt)
        inter = int(pairs.sum())
    else:
        inter = _intersection(pred, gt.mask) if gt_pixels else 0
    gt_table, pred_table = gt.table, pred.table
    gt_to_pred = _greedy_match(gt_table, pred_table)
    true_pixels = pred.mask.size
    opdc = shooting = size_bins = curves = None
    if options.opdc_overlap is not None:
        matching = _opdc(
            gt_table, pred_table, pairs, true_pixels, options.opdc_overlap, options.opdc_pad_empty
        )
        opdc = _opdc_counts(gt_table, pred_table, matching)
    if options.shooting_radii is not None:
        shooting = _shooting(pred, gt, options.shooting_radii)
    if size_edges is not None:
        size_bins = _size_bin_counts(gt_table, pred_table, gt_to_pred, pairs, size_edges)
    if options.curve_logit_edges is not None:
        if values is None:
            raise ValueError("count_image needs the logits (values) for the pixel curves")
        curves = _curve_counts(values, gt.mask, gt_pixels, options.curve_logit_edges)
    size = options.fa_normaliser
    return ImageStats(
        inter=inter,
        union=pred_pixels + gt_pixels - inter,
        pred_pixels=pred_pixels,
        gt_pixels=gt_pixels,
        matched=int((gt_to_pred >= 0).sum()),
        targets=gt.n,
        fa_pixels=_fa_pixels(pred_table, gt_to_pred, options.fa_rule),
        pixels=true_pixels if size is None else size * size,
        true_pixels=true_pixels,
        opdc=opdc,
        shooting=shooting,
        size_bins=size_bins,
        curves=curves,
    )


def image_stats(
    pred_bool: np.ndarray,
    gt_bool: np.ndarray,
    *,
    fa_rule: str = "component",
    fa_normaliser: int | None = None,
) -> ImageStats:
    """The anchor counts of §2-5 of one prediction and target (checked :func:`count_image`).

    Arguments:
      pred_bool (np.ndarray): ``H×W`` binary prediction (non-zero positive).
      gt_bool (np.ndarray): ``H×W`` binary target, same shape.
      fa_rule (str): ``"component"`` (default) or ``"legacy_area"`` (§5.2).
      fa_normaliser (int | None): Fa denominator: None = ``H*W``; ``S`` = ``S*S``.
    Returns:
      ImageStats: the counts of this image (no extra counts).
    """
    pred, gt = _check_pair(pred_bool, gt_bool)
    options = CountOptions(
        fa_rule=_check_fa_rule(fa_rule), fa_normaliser=_check_fa_normaliser(fa_normaliser)
    )
    return count_image(LabelledMask(pred), LabelledMask(gt), options)


__all__ = [
    "EMPTY_POLICIES",
    "EPS",
    "FA_RULES",
    "MATCH_DISTANCE",
    "OPDC_OVERLAP",
    "SHOOTING_RADII",
    "SIZE_EDGES",
    "Component",
    "ComponentTable",
    "CountOptions",
    "CurveCounts",
    "ImageStats",
    "LabelledMask",
    "MatchResult",
    "OPDCCounts",
    "OPDCResult",
    "ShootingCounts",
    "SizeBinCounts",
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
