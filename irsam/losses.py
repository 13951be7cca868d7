# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""IRSTD losses on logits: SoftIoU, Dice, Focal, SLS, edge BCE and their weighted composition.

Definitions: docs/losses.md. Every loss takes ``(logits, target)`` with
``B×1×H×W`` logits (any float dtype) and a target in [0, 1] (soft targets allowed), applies the
sigmoid itself, and computes in float32 with autocast disabled, so fp16/bf16 inputs are safe.
Each returns a float32 scalar.

Ratios divide by ``max(denominator, smallest normal float32)``: identical to the plain formula
whenever the denominator is a normal number, and 0 instead of 0/0 = NaN (value and gradient) in the
degenerate case of an empty target with saturated negative logits (e.g. SLS with ``eps=0``).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import sigmoid_focal_loss

REDUCTIONS: tuple[str, ...] = ("batch", "sample")


def _fp32(logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Both tensors checked (same shape; ``B×H×W`` targets get their channel) and in float32."""
    if target.dim() == logits.dim() - 1 and logits.dim() == 4 and logits.shape[1] == 1:
        target = target.unsqueeze(1)
    if logits.shape != target.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)} and target {tuple(target.shape)} must have the same "
            "shape (resize the target to the logits, e.g. bilinearly for soft targets)"
        )
    if logits.dim() < 2:
        raise ValueError(f"expected a batch B×1×H×W, got shape {tuple(logits.shape)}")
    if not bool(torch.isfinite(logits).all()):
        raise FloatingPointError(
            "the model output holds NaN or Inf values: training has diverged. Lower "
            "optimizer.lr, train in full precision (trainer.precision=32-true) or clip gradients "
            "(trainer.gradient_clip_val=1.0)."
        )
    return logits.float(), target.float()


def _no_autocast(device: torch.device) -> torch.autocast:
    """An autocast-disabled region for ``device`` (losses run in float32)."""
    return torch.autocast(device_type=device.type, enabled=False)


def _ratio(num: Tensor, den: Tensor) -> Tensor:
    """``num / den`` with the denominator clamped at the smallest normal float32 (no 0/0)."""
    return num / den.clamp_min(torch.finfo(den.dtype).tiny)


def _sums(p: Tensor, t: Tensor, per_image: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Overlap sums ``(Σp·t, Σp, Σt)``, per sample (each ``[B]``) or over the whole batch."""
    dims = tuple(range(1, p.dim())) if per_image else tuple(range(p.dim()))
    return (p * t).sum(dims), p.sum(dims), t.sum(dims)


class _OverlapLoss(nn.Module, metaclass=abc.ABCMeta):
    """``1 − overlap ratio`` of sigmoid probabilities; subclasses give the ratio and default."""

    default_reduction = "batch"

    def __init__(self, smooth: float = 1.0, reduction: str | None = None) -> None:
        super().__init__()
        reduction = self.default_reduction if reduction is None else reduction
        if reduction not in REDUCTIONS:
            raise ValueError(
                f"{type(self).__name__}: reduction must be one of {REDUCTIONS} (in the loss "
                f"config: terms.<name>.loss.reduction), got {reduction!r}"
            )
        self.smooth = float(smooth)
        self.reduction = reduction

    @abc.abstractmethod
    def overlap(self, inter: Tensor, s_p: Tensor, s_t: Tensor) -> Tensor:
        """The overlap ratio from the sums (each ``[B]`` or a scalar)."""

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Compute the loss.

        Arguments:
          logits (Tensor): ``B×1×H×W`` mask logits.
          target (Tensor): ``B×1×H×W`` in [0, 1].
        Returns:
          Tensor: float32 scalar in [0, 1].
        """
        with _no_autocast(logits.device):
            x, t = _fp32(logits, target)
            inter, s_p, s_t = _sums(torch.sigmoid(x), t, self.reduction == "sample")
            return 1.0 - self.overlap(inter, s_p, s_t).mean()


class SoftIoULoss(_OverlapLoss):
    """SoftIoU ``1 − (I + s) / (S_p + S_t − I + s)`` on sigmoid probabilities (docs/losses.md §1).

    Arguments:
      smooth (float): s; 1.0 (DNANet, MSHNet), 1e-6 in the IRSAM recipe.
      reduction (str | None): ``"batch"`` (None: the default) = one ratio over the whole batch
        (DNANet/ACM); ``"sample"`` = ``1 − mean_b`` of per-sample ratios (MSHNet, RDIAN).
    """

    default_reduction = "batch"

    def overlap(self, inter: Tensor, s_p: Tensor, s_t: Tensor) -> Tensor:
        """Soft IoU ``(I + s) / (S_p + S_t − I + s)``."""
        return _ratio(inter + self.smooth, s_p + s_t - inter + self.smooth)


class DiceLoss(_OverlapLoss):
    """Dice ``1 − (2I + s) / (S_p + S_t + s)`` on sigmoid probabilities (docs/losses.md §2).

    Arguments:
      smooth (float): s (1.0).
      reduction (str | None): ``"sample"`` (None: the default) = per-sample ratios averaged over
        the batch; ``"batch"`` = one batch-global ratio.
    """

    default_reduction = "sample"

    def overlap(self, inter: Tensor, s_p: Tensor, s_t: Tensor) -> Tensor:
        """Soft Dice ``(2I + s) / (S_p + S_t + s)``."""
        return _ratio(2.0 * inter + self.smooth, s_p + s_t + self.smooth)


class FocalLoss(nn.Module):
    """Sigmoid focal loss (RetinaNet), mean over pixels (docs/losses.md §3): torchvision's
    ``sigmoid_focal_loss`` in float32.

    ``FL = α_t · (1 − p_t)^γ · BCEWithLogits(x, t)`` with ``p_t = p·t + (1−p)(1−t)`` and
    ``α_t = α·t + (1−α)(1−t)``.

    Arguments:
      alpha (float): α in [0, 1]; a negative value disables the α weighting.
      gamma (float): γ ≥ 0, the focusing exponent.
    """

    def __init__(self, alpha: float = 0.25, gamma: float = 2.0) -> None:
        super().__init__()
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        self.alpha = float(alpha)
        self.gamma = float(gamma)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Compute the loss.

        Arguments:
          logits (Tensor): ``B×1×H×W`` mask logits.
          target (Tensor): ``B×1×H×W`` in [0, 1].
        Returns:
          Tensor: float32 scalar, the mean over all pixels.
        """
        with _no_autocast(logits.device):
            x, t = _fp32(logits, target)
            return sigmoid_focal_loss(x, t, alpha=self.alpha, gamma=self.gamma, reduction="mean")


def _location_loss(p: Tensor, t: Tensor) -> Tensor:
    """MSHNet's ``LLoss`` of probabilities ``p`` vs targets ``t`` (docs/losses.md §4, as MSHNet)."""
    height, width = p.shape[-2], p.shape[-1]
    dims = tuple(range(1, p.dim()))
    x_index = torch.arange(width, device=p.device, dtype=p.dtype) / width
    y_index = (torch.arange(height, device=p.device, dtype=p.dtype) / height)[:, None]
    smooth = 1e-8

    def polar(m: Tensor) -> tuple[Tensor, Tensor]:
        c_x = (x_index * m).mean(dims)
        c_y = (y_index * m).mean(dims)
        return torch.sqrt(c_x * c_x + c_y * c_y + smooth), torch.arctan(c_y / (c_x + smooth))

    d_p, theta_p = polar(p)
    d_t, theta_t = polar(t)
    length = torch.minimum(d_p, d_t) / (torch.maximum(d_p, d_t) + smooth)
    angle = (4.0 / math.pi**2) * (theta_p - theta_t) ** 2
    return (1.0 - length + angle).mean()


class SLSLoss(nn.Module):
    """MSHNet scale- and location-sensitive loss (``SLSIoULoss``, CVPR 2024; docs/losses.md §4).

    After warm-up (``epoch > warm_epoch``): ``1 − mean_b(w_b·IoU_b) + L_L`` (``L_L`` only with
    ``with_shape``), with ``w_b = (min(P,T) + V) / (max(P,T) + V)``, ``V = ((P − T)/2)²``.
    During warm-up: ``1 − mean_b IoU_b``. Ratios use smooth ``eps`` (0 = faithful).

    Arguments:
      warm_epoch (int): last warm-up epoch (0-based epochs; 5 → epochs 0-5 are warm-up; −1 = never).
      with_shape (bool): add the location term ``L_L`` after warm-up.
      eps (float): added to the numerators and denominators of IoU_b and w_b (0 for faithfulness;
        a small value avoids 0/0 on empty targets with saturated predictions).

    Attributes:
      epoch (int): the current epoch, set externally (``CompositeLoss.set_epoch``); starts at 0.
    """

    def __init__(self, warm_epoch: int = 5, with_shape: bool = True, eps: float = 0.0) -> None:
        super().__init__()
        self.warm_epoch = int(warm_epoch)
        self.with_shape = bool(with_shape)
        self.eps = float(eps)
        self.epoch = 0

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Compute the loss for the current ``epoch``.

        Arguments:
          logits (Tensor): ``B×1×H×W`` mask logits.
          target (Tensor): ``B×1×H×W`` in [0, 1].
        Returns:
          Tensor: float32 scalar (≥ 0; up to 1 + ~2 with the location term).
        """
        with _no_autocast(logits.device):
            x, t = _fp32(logits, target)
            p = torch.sigmoid(x)
            inter, s_p, s_t = _sums(p, t, per_image=True)
            iou = _ratio(inter + self.eps, s_p + s_t - inter + self.eps)
            if self.epoch <= self.warm_epoch:
                return 1.0 - iou.mean()
            spread = ((s_p - s_t) / 2.0) ** 2
            weight = _ratio(
                torch.minimum(s_p, s_t) + spread + self.eps,
                torch.maximum(s_p, s_t) + spread + self.eps,
            )
            loss = 1.0 - (weight * iou).mean()
            if self.with_shape:
                loss = loss + _location_loss(p, t)
            return loss


class EdgeBCELoss(nn.Module):
    """IRSAM edge loss: BCE on edge probabilities clamped to [1e-6, 1 − 1e-6], fp32, mean.

    The model outputs ``edge_probs`` with the sigmoid already applied, before or after the
    upsampling to the loss resolution as its ``edge_upsample`` option says (the authors apply it
    before: docs/model.md, "Edge branch"). BCE on probabilities is rejected by autocast, so this
    runs outside it, in float32 (docs/losses.md, "Edge BCE").

    Arguments:
      clamp (float): probabilities are clamped to ``[clamp, 1 − clamp]``.
    """

    def __init__(self, clamp: float = 1e-6) -> None:
        super().__init__()
        if not 0.0 < clamp < 0.5:
            raise ValueError(f"clamp must lie in (0, 0.5), got {clamp}")
        self.clamp = float(clamp)

    def forward(self, probs: Tensor, target: Tensor) -> Tensor:
        """Compute the loss.

        Arguments:
          probs (Tensor): ``B×1×H×W`` edge probabilities in [0, 1].
          target (Tensor): ``B×1×H×W`` soft edge map in [0, 1].
        Returns:
          Tensor: float32 scalar.
        """
        with _no_autocast(probs.device):
            p, t = _fp32(probs, target)
            return F.binary_cross_entropy(p.clamp(self.clamp, 1.0 - self.clamp), t)


class CompositeLoss(nn.Module):
    """Weighted sum of named loss terms, each reading one model output and one batch target
    (docs/losses.md §6).

    Built from YAML by Hydra, e.g.::

        _target_: irsam.losses.CompositeLoss
        name: irsam
        terms:
          edge_bce: {loss: {_target_: irsam.losses.EdgeBCELoss}, weight: 5.0,
                     input: edge_probs, target: edge}
          softiou: {loss: {_target_: irsam.losses.SoftIoULoss, smooth: 1.0e-6}, weight: 1.0,
                    input: mask_logits, target: mask}

    Arguments:
      terms (Mapping[str, Mapping[str, Any]]): term name → ``{"loss": nn.Module, "weight": float,
        "input": model output key, "target": batch key}``. ``weight`` defaults to 1.0, ``input`` to
        ``"mask_logits"`` and ``target`` to ``"mask"``. The name is used in ``train/loss_<name>``.
      name (str): the loss config's name, quoted in error messages (e.g. ``"irsam"``).
    """

    def __init__(self, terms: Mapping[str, Mapping[str, Any]], name: str = "composite") -> None:
        super().__init__()
        if not terms:
            raise ValueError(f"loss config {name!r}: CompositeLoss needs at least one term")
        self.name = name
        self.losses = nn.ModuleDict()
        self.weights: dict[str, float] = {}
        self.inputs: dict[str, str] = {}
        self.targets: dict[str, str] = {}
        for term, spec in terms.items():
            unknown = set(spec) - {"loss", "weight", "input", "target"}
            if unknown or "loss" not in spec:
                raise ValueError(
                    f"loss config {name!r}, term {term!r}: expected keys loss (required), weight, "
                    f"input, target; got {sorted(spec)}"
                )
            if not isinstance(spec["loss"], nn.Module):
                raise TypeError(
                    f"loss config {name!r}, term {term!r}: 'loss' must be an nn.Module (give it a "
                    f"_target_), got {type(spec['loss']).__name__}"
                )
            self.losses[str(term)] = spec["loss"]
            self.weights[str(term)] = float(spec.get("weight", 1.0))
            self.inputs[str(term)] = str(spec.get("input", "mask_logits"))
            self.targets[str(term)] = str(spec.get("target", "mask"))

    def set_epoch(self, epoch: int) -> None:
        """Propagate the current epoch to every term that has an ``epoch`` attribute (SLS).

        Arguments:
          epoch (int): 0-based epoch index.
        """
        for loss in self.losses.values():
            if hasattr(loss, "epoch"):
                loss.epoch = int(epoch)

    def forward(
        self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Evaluate every term and their weighted sum.

        Arguments:
          outputs (Mapping[str, Tensor]): model outputs, e.g. ``"mask_logits"`` (logits) and
            ``"edge_probs"`` (probabilities), each ``B×1×H×W``.
          batch (Mapping[str, Tensor]): batch targets, e.g. ``"mask"`` and ``"edge"``, ``B×1×H×W``
            in [0, 1].
        Returns:
          tuple[Tensor, dict[str, Tensor]]: the float32 total ``Σ weight·term`` (the loss to
          optimise) and the unweighted, detached value of each term by name (for logging as
          ``train/loss_<name>``).
        """
        parts: dict[str, Tensor] = {}
        weighted: list[Tensor] = []
        for term, loss in self.losses.items():
            value = loss(self._get(outputs, term, "input"), self._get(batch, term, "target"))
            parts[term] = value.detach()
            weighted.append(value * self.weights[term])
        return sum(weighted[1:], weighted[0]), parts

    def _get(self, source: Mapping[str, Tensor], term: str, role: str) -> Tensor:
        """A term's input (model output) or target (batch entry), with a helpful error."""
        key = self.inputs[term] if role == "input" else self.targets[term]
        if key in source:
            return source[key]
        available = sorted(source)
        if role == "input":
            raise KeyError(
                f"loss config {self.name!r}, term {term!r} reads the model output {key!r}, but the "
                f"model produced only {available}. Use a loss config without this term (e.g. "
                f"loss=softiou for models without an edge head) or a model that outputs {key!r}."
            )
        raise KeyError(
            f"loss config {self.name!r}, term {term!r} needs the batch entry {key!r}, but the "
            f"batch "
            f"holds only {available}. Enable it in the data config (e.g. edge targets for "
            f"edge_probs) or drop the term from the loss config."
        )


__all__ = [
    "CompositeLoss",
    "DiceLoss",
    "EdgeBCELoss",
    "FocalLoss",
    "SLSLoss",
    "SoftIoULoss",
]
