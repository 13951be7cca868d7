# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""LightningModule for IRSAM fine-tuning: loss, IRSTD metrics, optimiser, scheduler and logging.

No architecture code lives here. The module is built from its config in one call,
``hydra.utils.instantiate(cfg.model)`` (``conf/model/*.yaml``): the network, the loss, the
optimiser and the scheduler arrive as config mappings and are built here, so the same mappings,
stored in every checkpoint, rebuild the module with :meth:`IRSAMLitModule.from_checkpoint`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

import hydra
import lightning as L
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torchmetrics import MaxMetric

from irsam.metrics import IRSTDMetrics, PdFaCurve, build_metrics
from irsam.models import apply_freeze, build_param_groups, count_parameters
from irsam.models.checkpoints import CheckpointError, read_training_checkpoint
from irsam.models.peft import (
    adapter_state_dict,
    apply_peft,
    load_adapter_state_dict,
    require_base_weights,
)
from irsam.utils.containers import plain_container

CONFIG_KEYS = (
    "net",
    "loss",
    "optimizer",
    "scheduler",
    "freeze",
    "layer_decay",
    "compile",
    "metrics",
    "pd_fa_thresholds",
    "peft",
)
"""Constructor arguments of :class:`IRSAMLitModule`, all stored in its checkpoints."""


SIZE_KEYS = {"net": "encoder_size", "datamodule": "loader_size", "synthetic": "native_size"}
"""The names of the three sizes in a checkpoint's hyperparameters: the network's internal input
side (``net``), the loader's side (the datamodule's) and the synthetic set's rendered side (the
datamodule's ``synthetic``). A checkpoint that names one of them ``image_size`` is read under
these names."""


def _renamed_sizes(config: Mapping[str, Any], section: str) -> dict[str, Any]:
    """``config`` with an ``image_size`` key renamed to the current name of ``section``'s size."""
    plain = dict(config)
    if "image_size" in plain:
        plain[SIZE_KEYS[section]] = plain.pop("image_size")
    return plain


def native_resolution_logits(
    logits: torch.Tensor, valid_size: torch.Tensor, orig_size: torch.Tensor
) -> list[torch.Tensor]:
    """Bring loader-size logits back to each image's native resolution.

    Each map is cropped to the part of the loader image that holds picture (padding removed), then
    resized bilinearly to the original size (docs/metrics.md, "Resolution").

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
    """Trains, evaluates and runs a prompt-free IRSAM-family network.

    Logged keys: ``train/loss`` and ``train/loss_<term>``; ``val/loss``, ``val/IoU``, ``val/nIoU``,
    ``val/Pd``, ``val/Fa``, ``val/IoU_best``; ``test/...``. IoU/nIoU/Pd are fractions, Fa is the
    raw ratio (tables print it ×1e6).

    Every argument is a plain value or a config mapping with ``_target_``; all of them are saved
    as hyperparameters (plain containers, so checkpoints load with ``weights_only=True``).

    Arguments:
      net (Mapping): network builder config (``conf/model/*.yaml`` ``net:``): images B×3×H×W float
        RGB 0–255 → {"mask_logits": B×1×H×W, "edge_probs": B×1×H×W (edge models)}.
      loss (Mapping): :class:`irsam.losses.CompositeLoss` config (``conf/loss/``).
      optimizer (Mapping | None): optimiser config with ``_partial_: true``; its ``lr`` and
        ``weight_decay`` seed the parameter groups. None for evaluation-only modules.
      scheduler (Mapping | None): LR scheduler config with ``_partial_: true``, stepped per epoch.
      freeze (str): the one freeze knob: ``none``, ``encoder``, ``wpmd_decoder`` or
        ``decoder_only`` (:mod:`irsam.models.freeze`).
      layer_decay (float): layer-wise LR decay of the encoder (1.0 = off).
      compile (bool): run ``net`` through ``torch.compile`` (the state dict keeps plain names).
      metrics (Mapping | None): keyword arguments of :class:`IRSTDMetrics` (threshold, fa_rule,
        fa_normaliser, empty_policy, extra metrics: docs/metrics.md §13); ``threshold`` also
        binarises saved masks.
      pd_fa_thresholds (list[float] | None): logit thresholds of the test Pd–Fa curve (None = off).
      peft (Mapping | None): parameter-efficient fine-tuning (``conf/peft/*.yaml``: ``method``
        none | lora | loha | ia3, ``target_modules``, ``options``, ``save_adapter_only``),
        applied after ``freeze`` (docs/peft-export.md). With ``save_adapter_only`` checkpoints
        hold only the trainable delta and rebuild on the base weights of ``net.checkpoint``.
    """

    ADAPTER_ONLY = "irsam_adapter_only"
    """Checkpoint key marking a state dict that holds only the PEFT delta."""

    VAL_IOU_BEST = "irsam_val_iou_best"
    """Checkpoint key holding the best validation IoU so far (a 0-d float tensor)."""

    def __init__(
        self,
        *,
        net: Mapping[str, Any],
        loss: Mapping[str, Any],
        optimizer: Mapping[str, Any] | None = None,
        scheduler: Mapping[str, Any] | None = None,
        freeze: str = "none",
        layer_decay: float = 1.0,
        compile: bool = False,
        metrics: Mapping[str, Any] | None = None,
        pd_fa_thresholds: list[float] | None = None,
        peft: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        arguments = locals()
        config = {key: plain_container(arguments[key]) for key in CONFIG_KEYS}
        self.save_hyperparameters(config, logger=False)
        self.net = hydra.utils.instantiate(config["net"])
        apply_freeze(self.net, freeze)
        apply_peft(self.net, config["peft"])
        self.loss = hydra.utils.instantiate(config["loss"])
        metric_options = dict(config["metrics"] or {})
        self.threshold = float(metric_options.get("threshold", 0.0))
        self.val_metrics = build_metrics(metric_options)
        self.test_metrics = build_metrics(metric_options)
        self.test_report: dict[str, Any] = {}
        self.val_iou_best = MaxMetric()
        self.test_curve = PdFaCurve(pd_fa_thresholds) if pd_fa_thresholds else None
        self._runner: Any = None
        self.test_images = 0
        self.test_seconds = 0.0
        self._test_started = 0.0
        self.datamodule_hparams: dict[str, Any] = {}
        """The datamodule hyperparameters stored with the checkpoint this module was loaded from
        (:meth:`from_checkpoint`); empty otherwise."""

    @classmethod
    def from_checkpoint(
        cls, checkpoint: str | os.PathLike | Mapping[str, Any], **overrides: Any
    ) -> IRSAMLitModule:
        """Rebuild the module stored in a ``train.py`` checkpoint and load its weights strictly.

        The stored config is merged with ``overrides`` (mappings merge key by key, e.g.
        ``metrics={"fa_rule": "legacy_area"}`` keeps the stored threshold); pretrained-weight
        paths are dropped, since the weights come from the checkpoint itself. The sizes of
        checkpoints that name them all ``image_size`` are read under their current names
        (:data:`SIZE_KEYS`).

        Arguments:
          checkpoint (str | PathLike | Mapping): a ``.ckpt`` path, or a checkpoint already read
            with :func:`irsam.models.checkpoints.read_training_checkpoint`.
          overrides: constructor arguments to merge into the stored ones (``CONFIG_KEYS``).
        Returns:
          IRSAMLitModule: in eval mode.
        Raises:
          CheckpointError: the file is not a readable ``train.py`` checkpoint, or its weights do
            not fit the network its config describes.
        """
        source = checkpoint if isinstance(checkpoint, Mapping) else None
        path = "<checkpoint>" if source is not None else str(checkpoint)
        data = source if source is not None else read_training_checkpoint(checkpoint)
        unknown = sorted(set(overrides) - set(CONFIG_KEYS))
        if unknown:
            raise TypeError(f"unknown overrides {unknown}; allowed: {list(CONFIG_KEYS)}")
        hparams = dict(data["hyper_parameters"])
        hparams["net"] = _renamed_sizes(hparams["net"], "net")
        stored = OmegaConf.create(hparams)
        merged = OmegaConf.merge(stored, {k: v for k, v in overrides.items() if v is not None})
        adapter_only = bool(data.get(cls.ADAPTER_ONLY))
        if adapter_only:  # the base weights come from the file the run was trained on
            merged.net.checkpoint = str(require_base_weights(path, merged.net.get("checkpoint")))
        else:
            merged.net.checkpoint = None
        module = cls(**OmegaConf.to_container(merged, resolve=True))
        try:
            if adapter_only:
                delta = {k[4:]: v for k, v in data["state_dict"].items() if k.startswith("net.")}
                load_adapter_state_dict(module.net, delta, source=path)
            else:
                module.load_state_dict(data["state_dict"], strict=True)
        except RuntimeError as err:
            raise CheckpointError(
                f"{path}: its weights do not fit the network its own config builds "
                f"({merged.net._target_}): {str(err).splitlines()[0]}"
            ) from err
        datamodule = _renamed_sizes(data.get("datamodule_hyper_parameters") or {}, "datamodule")
        if isinstance(datamodule.get("synthetic"), Mapping):
            datamodule["synthetic"] = _renamed_sizes(datamodule["synthetic"], "synthetic")
        module.datamodule_hparams = datamodule
        return module.eval()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the best validation IoU so far (``val/IoU_best``, whose metric state is not
        part of the state dict) so that a resume continues it; with ``peft.save_adapter_only``,
        keep only the trainable delta (adapters, WPMD, decoder) in the state dict and mark it."""
        checkpoint[self.VAL_IOU_BEST] = self.val_iou_best.max_value.detach().cpu().clone()
        if (self.hparams.peft or {}).get("save_adapter_only"):
            delta = adapter_state_dict(self.net)
            checkpoint["state_dict"] = {f"net.{k}": v for k, v in delta.items()}
            checkpoint[self.ADAPTER_ONLY] = True

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Resuming: continue ``val/IoU_best`` from the stored value. An adapter-only checkpoint:
        the frozen base weights are the ones this module was built with (``net.checkpoint``); the
        file supplies the delta.

        Raises:
          CheckpointError: the checkpoint stores no best validation IoU (it was not written by
            ``train.py``).
        """
        if self.VAL_IOU_BEST not in checkpoint:
            raise CheckpointError(
                f"the checkpoint to resume stores no {self.VAL_IOU_BEST!r} (val/IoU_best): it was "
                "not written by train.py. Resume from a checkpoint train.py wrote, or start a new "
                "run from its weights with model.net.checkpoint=<file>."
            )
        current = self.val_iou_best.max_value
        best = checkpoint[self.VAL_IOU_BEST]
        self.val_iou_best.max_value = best.to(device=current.device, dtype=current.dtype)
        if checkpoint.get(self.ADAPTER_ONLY):
            checkpoint["state_dict"] = {**self.state_dict(), **checkpoint["state_dict"]}

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the network.

        Arguments:
          images (Tensor): B×3×H×W float RGB, 0–255.
        Returns:
          dict[str, Tensor]: ``mask_logits`` B×1×H×W (and ``edge_probs`` for edge models).
        """
        return (self._runner or self.net)(images)

    def use_runner(self, runner: Any) -> None:
        """Run ``runner(images)`` instead of ``net`` in :meth:`forward` (a ``torch.compile``
        wrapper, or an ONNX session for ``predict.py backend=onnx``). It is not registered as a
        submodule, so checkpoints keep the plain ``net.*`` key names.

        Arguments:
          runner (Callable): images B×3×H×W float 0–255 → ``{"mask_logits": B×1×H×W, ...}``.
        """
        object.__setattr__(self, "_runner", runner)

    def setup(self, stage: str) -> None:
        """Compile the network when asked (``compile=true``)."""
        if self.hparams.compile and self._runner is None:
            self.use_runner(torch.compile(self.net))

    def on_fit_start(self) -> None:
        """Log the parameter counts (total / trainable / effective) to every logger."""
        counts = count_parameters(self.net)
        for logger in self.loggers:
            logger.log_hyperparams({f"model/params_{k}": v for k, v in counts.items()})

    def on_train_epoch_start(self) -> None:
        """Tell epoch-aware losses (SLS warm-up) the current epoch."""
        self.loss.set_epoch(self.current_epoch)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        """One optimisation step; logs the total loss and each term.

        Raises:
          FloatingPointError: the loss (or the model output it reads) is not finite: the run
            stops at once with the step, the loss terms and the likely fixes.
        """
        outputs = self(batch["image"])
        total, parts = self.loss(outputs, batch)
        if not bool(torch.isfinite(total)):
            terms = ", ".join(f"{k}={float(v):.4g}" for k, v in parts.items())
            raise FloatingPointError(
                f"training diverged at step {self.global_step} (epoch {self.current_epoch}): "
                f"loss {float(total)} ({terms}). Lower optimizer.lr (now "
                f"{self.hparams.optimizer.get('lr') if self.hparams.optimizer else '?'}), train "
                "in full precision (trainer.precision=32-true) or clip gradients "
                "(trainer.gradient_clip_val=1.0). No checkpoint of this step is written."
            )
        size = batch["image"].shape[0]
        self.log("train/loss", total, on_step=True, on_epoch=True, prog_bar=True, batch_size=size)
        for name, value in parts.items():
            self.log(f"train/loss_{name}", value, on_step=False, on_epoch=True, batch_size=size)
        return total

    def _native_logits(self, batch: dict[str, Any]) -> tuple[dict[str, Any], list[torch.Tensor]]:
        """Forward a batch; returns the outputs and the native-resolution mask logits."""
        outputs = self(batch["image"])
        native = native_resolution_logits(
            outputs["mask_logits"], batch["valid_size"], batch["orig_size"]
        )
        return outputs, native

    def _score(self, batch: dict[str, Any], metric: IRSTDMetrics, stage: str) -> list[torch.Tensor]:
        """Forward, log the loss, update ``metric`` at native resolution; return native logits."""
        outputs, native = self._native_logits(batch)
        total, _ = self.loss(outputs, batch)
        self.log(
            f"{stage}/loss",
            total,
            on_step=False,
            on_epoch=True,
            sync_dist=True,
            batch_size=batch["image"].shape[0],
        )
        for k, logit in enumerate(native):
            height, width = logit.shape[-2:]
            target = batch["mask_native"][k : k + 1, :, :height, :width]
            metric.update(logit, target, names=[batch["name"][k]])
            if stage == "test" and self.test_curve is not None:
                self.test_curve.update(logit, target)
        return native

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Score one validation batch."""
        self._score(batch, self.val_metrics, "val")

    def on_validation_epoch_end(self) -> None:
        """Log the synced validation metrics and the best IoU so far.

        The sanity-check validation before training (``trainer.num_sanity_val_steps``) never
        counts toward ``val/IoU_best``, so the best is never reset at train start and continues
        across a resume.
        """
        values = self.val_metrics.compute()
        self.val_metrics.reset()
        for name, value in values.items():
            self.log(f"val/{name}", value, prog_bar=name == "IoU")
        if self._trainer is not None and self.trainer.sanity_checking:
            return
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
        """Log the synced test metrics, keep the full report (curves, size bins, worst images:
        ``test_report``) and measure images/s (forward + scoring, this process)."""
        self.test_seconds = time.perf_counter() - self._test_started
        self.test_report = self.test_metrics.report()
        self.test_metrics.reset()
        for name, value in self.test_report["scalars"].items():
            self.log(f"test/{name}", value)

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, list[torch.Tensor]]:
        """Segment one batch without ground truth.

        Returns:
          dict: ``native_logits``, one 1×1×H_k×W_k float32 logit map per image (native size).
        """
        return {"native_logits": self._native_logits(batch)[1]}

    def configure_optimizers(self) -> dict[str, Any]:
        """Optimiser over layer-decayed parameter groups, and an epoch-stepped scheduler."""
        if self.hparams.optimizer is None:
            raise ValueError(
                "this module was built without an optimizer: set the `optimizer` config group."
            )
        factory = hydra.utils.instantiate(self.hparams.optimizer)
        groups = build_param_groups(
            self.net,
            lr=factory.keywords["lr"],
            weight_decay=factory.keywords.get("weight_decay", 0.0),
            layer_decay=self.hparams.layer_decay,
        )
        optimizer = factory(params=groups)
        if self.hparams.scheduler is None:
            return {"optimizer": optimizer}
        scheduler = hydra.utils.instantiate(self.hparams.scheduler)(optimizer=optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch", "frequency": 1},
        }


def checkpoint_sizes(module: IRSAMLitModule) -> tuple[int, int]:
    """The two sizes a checkpoint was trained at: what evaluation, prediction and export use.

    Arguments:
      module (IRSAMLitModule): from :meth:`IRSAMLitModule.from_checkpoint`.
    Returns:
      tuple[int, int]: ``(loader_size, encoder_size)``: the side the training loader resized
      images to (the encoder size when the checkpoint stores no datamodule), and the network's
      internal square input side.
    """
    encoder_size = int(module.net.img_size)
    return int(module.datamodule_hparams.get("loader_size") or encoder_size), encoder_size
