# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""LightningModule for IRSAM fine-tuning: loss, IRSTD metrics, optimiser, scheduler and logging.

No architecture code lives here: the network is built from ``conf/model/`` and injected.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MaxMetric

from irsam.losses import CompositeLoss
from irsam.metrics import IRSTDMetrics, PdFaCurve
from irsam.models import apply_freeze, build_param_groups, count_parameters
from irsam.utils import get_logger

log = get_logger(__name__)


def native_resolution_logits(logits: torch.Tensor, valid_size: torch.Tensor,
                             orig_size: torch.Tensor) -> list[torch.Tensor]:
    """Bring loader-size logits back to each image's native resolution.

    Each map is cropped to the part of the loader image that holds picture (padding removed), then
    resized bilinearly to the original size (metrics-and-losses.md §1.2).

    Arguments:
      logits (Tensor): B×1×h×w mask logits at the loader resolution.
      valid_size (Tensor): B×2 (h, w) of the picture inside each loader image.
      orig_size (Tensor): B×2 native (H, W) of each image.
    Returns:
      list[Tensor]: B tensors of shape 1×1×H_k×W_k, float32 logits.
    """
    maps = []
    for k in range(logits.shape[0]):
        h, w = (int(v) for v in valid_size[k])
        height, width = (int(v) for v in orig_size[k])
        logit = logits[k : k + 1, :, :h, :w].float()
        if (h, w) != (height, width):
            logit = F.interpolate(logit, size=(height, width), mode="bilinear", align_corners=False)
        maps.append(logit)
    return maps


class IRSAMLitModule(L.LightningModule):
    """Trains and evaluates a prompt-free IRSAM-family network.

    Logged keys: ``train/loss`` and ``train/loss_<term>``; ``val/loss``, ``val/IoU``, ``val/nIoU``,
    ``val/Pd``, ``val/Fa``, ``val/IoU_best``; ``test/...``. IoU/nIoU/Pd are fractions, Fa is the
    raw ratio (tables print it ×1e6).

    Arguments:
      net (nn.Module): images B×3×H×W float RGB 0–255 → {"mask_logits": B×1×H×W, "edge_logits"?}.
      loss (CompositeLoss): weighted sum of loss terms.
      optimizer (partial | None): optimiser missing only its parameters (Hydra ``_partial_``); its
        ``lr`` and ``weight_decay`` seed the parameter groups. None for evaluation-only modules.
      scheduler (partial | None): LR scheduler missing only its optimiser, stepped once per epoch.
      layer_decay (float): layer-wise LR decay of the encoder (1.0 = off).
      freeze (str): freeze preset applied to ``net`` (``none``, ``encoder``, ``decoder_only``,
        ``wpmd_decoder``).
      compile (bool): run ``net`` through ``torch.compile`` (the state dict keeps plain names).
      metrics (dict | None): keyword arguments of :class:`IRSTDMetrics` (threshold, fa_rule, ...).
      pd_fa_thresholds (list[float] | None): logit thresholds of the test Pd–Fa curve (None = off).
      model_config (dict | None): the resolved model config, stored in checkpoints so that
        ``evaluate.py`` and ``predict.py`` rebuild the network without being told which it is.
      loss_config (dict | None): the resolved loss config, stored likewise (evaluation reports the
        same loss terms).
      train_image_size (int | None): loader resolution used in training, stored likewise.
    """

    def __init__(
        self,
        *,
        net: nn.Module,
        loss: CompositeLoss,
        optimizer: partial | None = None,
        scheduler: partial | None = None,
        layer_decay: float = 1.0,
        freeze: str = "none",
        compile: bool = False,
        metrics: dict[str, Any] | None = None,
        pd_fa_thresholds: list[float] | None = None,
        model_config: dict[str, Any] | None = None,
        loss_config: dict[str, Any] | None = None,
        train_image_size: int | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False, ignore=["net", "loss", "optimizer", "scheduler"])
        self.net = net
        self.loss = loss
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        apply_freeze(self.net, freeze)
        metric_kwargs = dict(metrics or {})
        self.val_metrics = IRSTDMetrics(**metric_kwargs)
        self.test_metrics = IRSTDMetrics(**metric_kwargs)
        self.val_iou_best = MaxMetric()
        self.test_curve = PdFaCurve(pd_fa_thresholds) if pd_fa_thresholds else None
        self._compiled_net: nn.Module | None = None
        self.test_images = 0
        self.test_seconds = 0.0
        self._test_started = 0.0

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the network.

        Arguments:
          images (Tensor): B×3×H×W float RGB, 0–255.
        Returns:
          dict[str, Tensor]: ``mask_logits`` B×1×H×W (and ``edge_logits`` when the model has an edge branch).
        """
        return (self._compiled_net or self.net)(images)

    def setup(self, stage: str) -> None:
        """Compile the network when asked; the compiled wrapper is not registered as a submodule,
        so checkpoints keep the plain ``net.*`` key names."""
        if self.hparams.compile and self._compiled_net is None:
            object.__setattr__(self, "_compiled_net", torch.compile(self.net))

    def on_fit_start(self) -> None:
        """Log the parameter counts (total / trainable / effective) to every logger."""
        counts = count_parameters(self.net)
        for logger in self.loggers:
            logger.log_hyperparams({f"model/params_{k}": v for k, v in counts.items()})

    def on_train_start(self) -> None:
        """Forget the sanity-check validation so that ``val/IoU_best`` starts clean."""
        self.val_metrics.reset()
        self.val_iou_best.reset()

    def on_train_epoch_start(self) -> None:
        """Tell epoch-aware losses (SLS warm-up) the current epoch."""
        self.loss.set_epoch(self.current_epoch)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        """One optimisation step; logs the total loss and each term."""
        outputs = self(batch["image"])
        total, parts = self.loss(outputs, batch)
        size = batch["image"].shape[0]
        self.log("train/loss", total, on_step=True, on_epoch=True, prog_bar=True, batch_size=size)
        for name, value in parts.items():
            self.log(f"train/loss_{name}", value, on_step=False, on_epoch=True, batch_size=size)
        return total

    def _score(self, batch: dict[str, Any], metric: IRSTDMetrics, stage: str) -> list[torch.Tensor]:
        """Forward, log the loss, and update ``metric`` at native resolution; returns native logits."""
        outputs = self(batch["image"])
        total, _ = self.loss(outputs, batch)
        self.log(f"{stage}/loss", total, on_step=False, on_epoch=True, sync_dist=True,
                 batch_size=batch["image"].shape[0])
        native = native_resolution_logits(outputs["mask_logits"], batch["valid_size"], batch["orig_size"])
        for k, logit in enumerate(native):
            height, width = logit.shape[-2:]
            target = batch["mask_native"][k : k + 1, :, :height, :width]
            metric.update(logit, target)
            if stage == "test" and self.test_curve is not None:
                self.test_curve.update(logit, target)
        return native

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Score one validation batch."""
        self._score(batch, self.val_metrics, "val")

    def on_validation_epoch_end(self) -> None:
        """Log the synced validation metrics and the best IoU so far."""
        values = self.val_metrics.compute()
        self.val_metrics.reset()
        for name, value in values.items():
            self.log(f"val/{name}", value, prog_bar=name == "IoU")
        self.val_iou_best(values["IoU"])
        self.log("val/IoU_best", self.val_iou_best.compute(), prog_bar=True)

    def on_test_epoch_start(self) -> None:
        """Start the throughput clock."""
        self.test_images = 0
        self._test_started = time.perf_counter()

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, list[torch.Tensor]]:
        """Score one test batch; returns the native-resolution logits for prediction writers."""
        native = self._score(batch, self.test_metrics, "test")
        self.test_images += batch["image"].shape[0]
        return {"native_logits": native}

    def on_test_epoch_end(self) -> None:
        """Log the synced test metrics and measure images/s (forward + scoring, this process)."""
        self.test_seconds = time.perf_counter() - self._test_started
        values = self.test_metrics.compute()
        self.test_metrics.reset()
        for name, value in values.items():
            self.log(f"test/{name}", value)

    def configure_optimizers(self) -> dict[str, Any]:
        """Optimiser over layer-decayed parameter groups, and an epoch-stepped scheduler."""
        if self.optimizer_factory is None:
            raise ValueError("IRSAMLitModule was built without an optimizer: set the `optimizer` config group to train.")
        defaults = self.optimizer_factory.keywords
        groups = build_param_groups(
            self.net,
            lr=defaults["lr"],
            weight_decay=defaults.get("weight_decay", 0.0),
            layer_decay=self.hparams.layer_decay,
        )
        optimizer = self.optimizer_factory(params=groups)
        if self.scheduler_factory is None:
            return {"optimizer": optimizer}
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "interval": "epoch", "frequency": 1}}
