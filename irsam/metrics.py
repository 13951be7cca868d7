# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""IRSTD metrics: IoU, nIoU, Pd and Fa, exactly as defined in docs/metrics-and-losses.md §1-6.

Two layers:

* **Pure functions** on NumPy boolean masks, usable without torchmetrics (the predict script and
  notebooks): :func:`label_components`, :func:`connected_components`, :func:`match_components`
  and :func:`image_stats`.
* **torchmetrics classes** accumulating dataset-level sums: :class:`IRSTDMetrics` (all four
  metrics, one connected-component analysis per image), the single-metric classes
  :class:`IoUMetric`, :class:`NIoUMetric`, :class:`PdMetric`, :class:`FaMetric`, and the
  threshold sweep :class:`PdFaCurve`.

Every state is a sum (int64 counts, float64 fractional sums) reduced with ``"sum"``, so
``compute()`` under ``torch.distributed`` (any world size, uneven shards) equals the
single-process value on the union of the shards, up to float64 summation order for nIoU.

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

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor
from torchmetrics import Metric

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


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Full-size 8-connected label image (for overlays).

    Arguments:
      mask (np.ndarray): ``H×W`` mask, non-zero is positive.
    Returns:
      tuple[np.ndarray, int]: int32 ``H×W`` labels (0 background, 1..n in raster order of each
      component's first pixel) and ``n``.
    """
    mask = _check_mask(mask, "mask")
    labels, n = ndimage.label(mask, structure=_STRUCTURE_8)
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
    """IoU, nIoU, Pd and Fa together, sharing one thresholding and labelling per image.

    Constructor arguments are those of the shared base (``threshold=0.0``,
    ``fa_rule="component"``, ``legacy_fa=False``, ``fa_normaliser=None``,
    ``empty_policy="zero"``, torchmetrics kwargs). Call ``update(preds, target)`` with logits and
    targets as documented there.
    """

    higher_is_better = None

    def compute(self) -> dict[str, Tensor]:
        """Dataset-level metrics (fractions; Fa as a raw ratio).

        Returns:
          dict[str, Tensor]: float64 scalars ``"IoU"``, ``"nIoU"``, ``"Pd"`` (NaN + warning with no
          targets), ``"Fa"`` (NaN with no images).
        """
        return {"IoU": self._iou(), "nIoU": self._niou(), "Pd": self._pd(), "Fa": self._fa()}


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
    "FA_RULES",
    "MATCH_DISTANCE",
    "Component",
    "FaMetric",
    "IRSTDMetrics",
    "ImageStats",
    "IoUMetric",
    "MatchResult",
    "NIoUMetric",
    "PdFaCurve",
    "PdMetric",
    "connected_components",
    "image_stats",
    "label_components",
    "match_components",
    "parse_fa_normaliser",
]
