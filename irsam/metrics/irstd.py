# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""torchmetrics classes over batches of logits and targets (docs/metrics.md).

* :class:`IRSTDMetrics`: IoU, nIoU, Pd and Fa plus any ``extra`` metrics (OPDC and hIoU, the
  shooting rule, pixel precision/recall/F1 and curves, target-size bins, per-image scores); build
  it from a config with :func:`build_metrics`.
* :class:`PdFaCurve`: Pd, Fa and IoU at several thresholds.

Both binarise a batch once, analyse each image with
:func:`irsam.metrics.functional.count_image` (one labelling per mask) and add the per-image
counts to their states. Every state is a sum (int64 counts, float64 fractional sums) reduced with
``"sum"`` (the per-image table is concatenated), so ``compute()`` / ``report()`` under
``torch.distributed`` (any world size, uneven shards) equal the single-process value on the
union of the shards, up to float64 summation order for the fractional sums.

``empty_policy="skip"`` differs from ``"zero"`` only when some image has an empty target: those
images are dropped from the nIoU mean instead of scoring 0, so nIoU is higher or equal.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.distributed import gather_all_tensors

from irsam.metrics.functional import (
    EMPTY_POLICIES,
    EPS,
    OPDC_OVERLAP,
    SHOOTING_RADII,
    SIZE_EDGES,
    CountOptions,
    ImageStats,
    LabelledMask,
    _check_fa_normaliser,
    _check_fa_rule,
    _check_overlap,
    _check_radii,
    _ratio0,
    count_image,
    curve_thresholds,
    logit,
    size_labels,
)
from irsam.utils import get_logger

log = get_logger(__name__)

EXTRAS: tuple[str, ...] = ("pixel", "opdc", "shooting", "size_bins", "curves", "per_image")
"""Names accepted by ``IRSTDMetrics(extra=[...])`` (docs/metrics.md §7-11)."""

NAME_BYTES: int = 96
"""Per-image names are kept as this many UTF-8 bytes so that they gather across processes."""

ANCHOR_COUNTS: tuple[str, ...] = ("inter", "union", "matched", "targets", "fa_pixels", "pixels")
""":class:`ImageStats` fields summed into the state of the same name by every metric."""

IMAGE_ROW: tuple[str, ...] = (
    "inter",
    "union",
    "gt_pixels",
    "targets",
    "matched",
    "fa_pixels",
    "pixels",
)
""":class:`ImageStats` fields kept per image with ``extra=["per_image"]``, in column order."""

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
"""State name → :class:`irsam.metrics.functional.OPDCCounts` field (8 counts, 4 float sums)."""

_CURVE_FIELDS: dict[str, str] = {
    "curve_tp": "tp",
    "curve_fp": "fp",
    "curve_precision_sum": "precision",
    "curve_recall_sum": "recall",
    "curve_fpr_sum": "fpr",
}
"""State name → :class:`irsam.metrics.functional.CurveCounts` field (2 counts, 3 float sums)."""


# --------------------------------------------------------------------------------------------
# Tensor plumbing
# --------------------------------------------------------------------------------------------


def _as_bhw(x: Tensor, name: str) -> Tensor:
    """A ``[B,1,H,W]``, ``[B,H,W]`` or ``[H,W]`` tensor (``name`` for errors) as ``[B,H,W]``."""
    if x.dim() == 4 and x.shape[1] == 1:
        return x[:, 0]
    if x.dim() == 3:
        return x
    if x.dim() == 2:
        return x.unsqueeze(0)
    raise ValueError(f"{name} must be B×1×H×W, B×H×W or H×W, got shape {tuple(x.shape)}")


def _host_array(x: Tensor) -> np.ndarray | None:
    """Zero-copy NumPy view of a CPU tensor, or None for accelerator / bfloat16 tensors."""
    # NumPy is much faster than torch's threaded kernels for the per-pixel work on small machines
    if x.device.type != "cpu" or x.dtype == torch.bfloat16:
        return None
    return x.numpy()


def _host_logits(logits: Tensor) -> np.ndarray:
    """``B×H×W`` logits as a CPU NumPy array (bfloat16 widened to float32)."""
    host = logits.cpu()
    return (host.float() if host.dtype == torch.bfloat16 else host).numpy()


def _binarise_target(target: Tensor) -> np.ndarray:
    """Binary ``B×H×W`` CPU bool target from {0,1}, {0,255}, bool or soft masks (docs §1.1)."""
    # bool as is; otherwise a batch whose maximum exceeds 1 is on the 0-255 scale (> 127),
    # else on the 0-1 scale (> 0.5)
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
    """``logits > threshold`` (strict) as a ``B×H×W`` CPU bool array, exact for any float dtype."""
    # The comparison runs in the logits' dtype when the threshold is representable there (0.0
    # always is), otherwise in float64. Accelerator tensors are compared on their device and only
    # the bool mask is copied to the CPU.
    exact = float(torch.tensor(threshold, dtype=logits.dtype)) == threshold
    host = _host_array(logits)
    if host is not None:
        return host > (threshold if exact else np.float64(threshold))
    if exact:
        return (logits > threshold).cpu().numpy()
    return (logits.to(torch.float64) > threshold).cpu().numpy()


def _check_batch(preds: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Validated, detached ``B×H×W`` views of a batch of float logits and same-shape targets."""
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
    """``num / den`` in float64, NaN with a warning naming ``what`` where ``den`` is 0."""
    num = num.to(torch.float64)
    den = den.to(torch.float64)
    if bool((den == 0).any()):
        message = f"{what} is undefined (denominator 0); returning NaN"
        warnings.warn(message, RuntimeWarning, stacklevel=3)
        log.warning(message)
    return torch.where(den == 0, torch.full_like(num, math.nan), num / den.clamp_min(1))


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


# --------------------------------------------------------------------------------------------
# Sum states
# --------------------------------------------------------------------------------------------


class _SumMetric(Metric):
    """Metric of sum states, added to once per ``update``, that keep their declared dtypes."""

    full_state_update = False
    is_differentiable = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._state_dtypes: dict[str, torch.dtype] = {}
        self._zeros: dict[str, int | float | np.ndarray] = {}

    def _apply(self, fn: Callable, exclude_state: Sequence[str] = "") -> torch.nn.Module:
        """Apply ``fn`` (device moves) as ``nn.Module._apply`` does; restore each state's dtype."""
        # torchmetrics guards .half()/.double() but not .to(torch.float16) (precision 16-true): a
        # float64 sum cast to fp16 would silently lose precision, so every state is cast back
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
        """Register a zero sum state (scalar, or 1-D of ``size``), ``sum``-reduced across ranks."""
        self._state_dtypes[name] = dtype
        shape = () if size is None else (size,)
        self.add_state(name, default=torch.zeros(shape, dtype=dtype), dist_reduce_fx="sum")
        integer = dtype == torch.int64
        if size is None:
            self._zeros[name] = 0 if integer else 0.0
        else:
            self._zeros[name] = np.zeros(size, dtype=np.int64 if integer else np.float64)

    def _add_list_state(self, name: str, dtype: torch.dtype) -> None:
        """Register a list state ``name`` of ``dtype`` tensors, concatenated across processes."""
        self._state_dtypes[name] = dtype
        self.add_state(name, default=[], dist_reduce_fx="cat")

    def _batch_sums(self) -> dict[str, Any]:
        """Zero per-batch sums, one per sum state (Python scalars or NumPy vectors)."""
        return {
            key: zero.copy() if isinstance(zero, np.ndarray) else zero
            for key, zero in self._zeros.items()
        }

    def _add_batch(self, sums: Mapping[str, Any]) -> None:
        """Add per-batch sums to the states of the same names."""
        for key, value in sums.items():
            state = getattr(self, key)
            if isinstance(value, np.ndarray):
                value = torch.from_numpy(value).to(state.device)
            setattr(self, key, state + value)


# --------------------------------------------------------------------------------------------
# IRSTDMetrics
# --------------------------------------------------------------------------------------------


class IRSTDMetrics(_SumMetric):
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
      fa_normaliser (int | None): Fa denominator: ``None`` = true pixel counts; an int ``S`` =
        ``S*S`` pixels per image. The OPDC and shooting-rule Fa always use true pixel counts.
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
        fa_normaliser: int | None = None,
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
        super().__init__(**kwargs)
        if empty_policy not in EMPTY_POLICIES:
            raise ValueError(
                f"metrics.empty_policy must be one of {EMPTY_POLICIES}, got {empty_policy!r}"
            )
        self.threshold = float(threshold)
        self.fa_rule = _check_fa_rule(fa_rule)
        self.fa_normaliser = _check_fa_normaliser(fa_normaliser)
        self.empty_policy = empty_policy
        names = [str(name) for name in (extra or ())]
        unknown = sorted(set(names) - set(EXTRAS))
        if unknown:
            raise ValueError(f"metrics.extra has unknown name(s) {unknown}; choose from {EXTRAS}")
        self.extra = tuple(name for name in EXTRAS if name in names)
        self.opdc_overlap = _check_overlap(opdc_overlap)
        self.opdc_pad_empty = bool(opdc_pad_empty)
        self.shooting_radii = _check_radii(shooting_radii)
        self.size_edges = tuple(int(e) for e in size_bins)
        self.size_labels = size_labels(self.size_edges)
        self.curve_thresholds = curve_thresholds(curve_bins)
        self.curve_logit_edges = np.array([logit(t) for t in self.curve_thresholds])
        self.worst_images = int(worst_images)
        self.options = CountOptions(
            fa_rule=self.fa_rule,
            fa_normaliser=self.fa_normaliser,
            opdc_overlap=self.opdc_overlap if "opdc" in self.extra else None,
            opdc_pad_empty=self.opdc_pad_empty,
            shooting_radii=self.shooting_radii if "shooting" in self.extra else None,
            size_edges=self.size_edges if "size_bins" in self.extra else None,
            curve_logit_edges=self.curve_logit_edges if "curves" in self.extra else None,
        )
        for name in (*ANCHOR_COUNTS, "niou_images"):
            self._add_sum_state(name, torch.int64)
        self._add_sum_state("niou_sum", torch.float64)
        if not self.extra:
            return
        for name in ("images", "true_pixels", "gt_pixels"):
            self._add_sum_state(name, torch.int64)
        if "opdc" in self.extra:
            for name, field in _OPDC_FIELDS.items():
                dtype = torch.float64 if field.endswith("_sum") else torch.int64
                self._add_sum_state(name, dtype)
        if "shooting" in self.extra:
            for name in ("shoot_tp", "shoot_fp_area"):
                self._add_sum_state(name, torch.int64)
        if "size_bins" in self.extra:
            bins = len(self.size_labels)
            self._add_sum_state("size_targets", torch.int64, size=bins)
            self._add_sum_state("size_matched", torch.int64, size=bins)
            self._add_sum_state("size_tiou_sum", torch.float64, size=bins)
        if "curves" in self.extra:
            for name, field in _CURVE_FIELDS.items():
                dtype = torch.int64 if field in ("tp", "fp") else torch.float64
                self._add_sum_state(name, dtype, size=self.curve_thresholds.size)
        if "per_image" in self.extra:
            self._add_list_state("image_rows", torch.float64)
            self._add_list_state("image_names", torch.uint8)

    def update(self, preds: Tensor, target: Tensor, names: Sequence[str] | None = None) -> None:
        """Accumulate one batch, image by image.

        Arguments:
          preds (Tensor): float logits ``B×1×H×W`` or ``B×H×W`` (any float dtype and device).
          target (Tensor): ``B×1×H×W`` or ``B×H×W`` with values {0,1}, {0,255} or bool; the same
            ``H×W`` as ``preds``. Sizes may change between calls.
          names (Sequence[str] | None): ``B`` image names for the per-image report (``extra``
            with ``"per_image"``); None numbers the images in update order.
        """
        logits, tgt = _check_batch(preds, target)
        pred = _positive(logits, self.threshold)
        gt = _binarise_target(tgt)
        if names is not None and len(names) != pred.shape[0]:
            raise ValueError(f"names has {len(names)} entries for a batch of {pred.shape[0]}")
        values = _host_logits(logits) if "curves" in self.extra else None
        per_image = "per_image" in self.extra
        sums = self._batch_sums()
        rows = []
        for b in range(pred.shape[0]):
            stats = count_image(
                LabelledMask(pred[b]),
                LabelledMask(gt[b]),
                self.options,
                None if values is None else values[b],
            )
            self._accumulate(sums, stats)
            if per_image:
                rows.append([getattr(stats, key) for key in IMAGE_ROW])
        self._add_batch(sums)
        if per_image:
            first = sum(int(part.shape[0]) for part in self.image_rows)
            if names is None:
                names = [f"#{first + k}" for k in range(len(rows))]
            self.image_rows.append(torch.tensor(rows, dtype=torch.float64))
            self.image_names.append(_encode_names(names))

    def _accumulate(self, sums: dict[str, Any], stats: ImageStats) -> None:
        """Add one image's counts to the per-batch sums of the states."""
        for key in ANCHOR_COUNTS:
            sums[key] += getattr(stats, key)
        if stats.gt_pixels or self.empty_policy == "zero":
            sums["niou_sum"] += stats.iou
            sums["niou_images"] += 1
        if not self.extra:
            return
        sums["images"] += 1
        sums["true_pixels"] += stats.true_pixels
        sums["gt_pixels"] += stats.gt_pixels
        if stats.opdc is not None:
            for key, field in _OPDC_FIELDS.items():
                sums[key] += getattr(stats.opdc, field)
        if stats.shooting is not None:
            sums["shoot_tp"] += stats.shooting.detected
            sums["shoot_fp_area"] += stats.shooting.false_pixels
        if stats.size_bins is not None:
            sums["size_targets"] += stats.size_bins.targets
            sums["size_matched"] += stats.size_bins.matched
            sums["size_tiou_sum"] += stats.size_bins.tiou_sum
        if stats.curves is not None:
            for key, field in _CURVE_FIELDS.items():
                sums[key] += getattr(stats.curves, field)

    def _sync_dist(
        self, dist_sync_fn: Callable = gather_all_tensors, process_group: Any = None
    ) -> None:
        """Gather the states; a process without images sends correctly shaped empty tables."""
        # torchmetrics would send a 1-D float32 placeholder for an empty list state
        if "per_image" in self.extra:
            if not self.image_rows:
                self.image_rows = [
                    torch.zeros(0, len(IMAGE_ROW), dtype=torch.float64, device=self.device)
                ]
            if not self.image_names:
                self.image_names = [
                    torch.zeros(0, NAME_BYTES, dtype=torch.uint8, device=self.device)
                ]
        super()._sync_dist(dist_sync_fn, process_group)

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
        values = {
            "IoU": self.inter.to(torch.float64) / (EPS + self.union.to(torch.float64)),
            "nIoU": _nan_ratio(self.niou_sum, self.niou_images, "nIoU (no image counted)"),
            "Pd": _nan_ratio(self.matched, self.targets, "Pd (no ground-truth targets)"),
            "Fa": _nan_ratio(self.fa_pixels, self.pixels, "Fa (no images scored)"),
        }
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
        """The pixel curves of :meth:`report` from the (synced) sums."""
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
        """Per-image scores of :meth:`report`, worst first (IoU, missed, false alarms, name)."""
        # an image with neither prediction nor target has IoU 1
        rows = self.image_rows
        names = self.image_names
        if isinstance(rows, list):
            if not rows:
                return []
            rows, names = torch.cat(rows), torch.cat(names)
        table = []
        for row, name in zip(rows.tolist(), _decode_names(names), strict=True):
            image = dict(zip(IMAGE_ROW, row, strict=True))
            union, pixels = image["union"], image["pixels"]
            table.append(
                {
                    "name": name,
                    "IoU": image["inter"] / union if union else 1.0,
                    "targets": int(image["targets"]),
                    "missed": int(image["targets"] - image["matched"]),
                    "fa_pixels": int(image["fa_pixels"]),
                    "Fa": image["fa_pixels"] / pixels if pixels else math.nan,
                }
            )
        table.sort(key=lambda r: (r["IoU"], -r["missed"], -r["fa_pixels"], r["name"]))
        return table


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
      ValueError: an unknown key (named, with the accepted ones) or an invalid value.
    """
    options = dict(cfg or {})
    accepted = set(inspect.signature(IRSTDMetrics.__init__).parameters) - {"self", "kwargs"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ValueError(f"metrics has unknown key(s) {unknown}; accepted: {sorted(accepted)}")
    return IRSTDMetrics(**options)


# --------------------------------------------------------------------------------------------
# PdFaCurve
# --------------------------------------------------------------------------------------------


class PdFaCurve(_SumMetric):
    """Pd, Fa and IoU at several thresholds (the Pd-Fa curve of evaluate.py); DDP-summed.

    The target is labelled once per image; the prediction once per threshold.

    Arguments:
      thresholds (Sequence[float]): logit thresholds (pixel positive iff ``logit > t``), or
        probability thresholds when ``probabilities=True``.
      probabilities (bool): interpret ``thresholds`` as probabilities ``p``; they are converted to
        logits ``log(p / (1 - p))`` so that ``σ(x) > p`` ⇔ ``x > logit(p)`` (0.5 → 0).
      fa_rule (str): ``"component"`` (default) or ``"legacy_area"``.
      fa_normaliser (int | None): Fa denominator: ``None`` = true pixel counts; ``S`` = ``S*S``.
      **kwargs: forwarded to ``torchmetrics.Metric``.
    """

    higher_is_better = None

    def __init__(
        self,
        thresholds: Sequence[float],
        probabilities: bool = False,
        fa_rule: str = "component",
        fa_normaliser: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        values = [float(t) for t in thresholds]
        if not values:
            raise ValueError("PdFaCurve needs at least one threshold")
        if probabilities:
            if any(not 0.0 <= p <= 1.0 for p in values):
                raise ValueError(f"probability thresholds must lie in [0, 1], got {values}")
            self.logit_thresholds = [logit(p) for p in values]
        else:
            self.logit_thresholds = values
        self.thresholds = values
        self.fa_rule = _check_fa_rule(fa_rule)
        self.fa_normaliser = _check_fa_normaliser(fa_normaliser)
        self.options = CountOptions(fa_rule=self.fa_rule, fa_normaliser=self.fa_normaliser)
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
        values = _host_logits(logits)
        sums = self._batch_sums()
        for b in range(values.shape[0]):
            labelled_gt = LabelledMask(gt[b])
            for i, threshold in enumerate(self.logit_thresholds):
                pred = LabelledMask(values[b] > np.float64(threshold))
                stats = count_image(pred, labelled_gt, self.options)
                for key in ("inter", "union", "matched", "fa_pixels"):
                    sums[key][i] += getattr(stats, key)
            sums["targets"] += stats.targets
            sums["pixels"] += stats.pixels
        self._add_batch(sums)

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


__all__ = [
    "ANCHOR_COUNTS",
    "EXTRAS",
    "IMAGE_ROW",
    "NAME_BYTES",
    "IRSTDMetrics",
    "PdFaCurve",
    "build_metrics",
]
