# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""LightningModule for IRSAM fine-tuning: loss, IRSTD metrics, optimiser, scheduler and logging.

No architecture code lives here. The module is built from its config in one call,
``hydra.utils.instantiate(cfg.model)`` (``conf/model/*.yaml``): the network, the loss, the
optimiser and the scheduler arrive as config mappings and are built here, so the same mappings,
stored in every checkpoint, rebuild the module with :meth:`IRSAMLitModule.from_checkpoint`.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
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
    has_peft,
    load_adapter_state_dict,
    merge_peft,
    require_base_weights,
)
from irsam.pretrained import read_model_folder, write_model_folder
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
    "pretrained_weights",
)
"""Constructor arguments of :class:`IRSAMLitModule`, all stored in its checkpoints."""

FOLDER_TARGETS = ("irsam.models.", "irsam.losses.")
"""The only ``_target_`` prefixes a model folder's config may name: reading a folder builds
irsam's own networks and losses, never other code."""

LOADER_KEYS = ("loader_size", "high_bit_norm", "eval_resize", "pad_divisor", "pad_value")
"""The datamodule hyperparameters that prepare images for inference (a model folder keeps them)."""


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


def stored_config(hparams: Mapping[str, Any]) -> dict[str, Any]:
    """A checkpoint's stored hyperparameters in the current layout, ready to rebuild the module.

    The network's size is read under its current name (:data:`SIZE_KEYS`), and the pretrained
    weights file the run started from is moved out of ``net.checkpoint`` into
    ``pretrained_weights`` (provenance): rebuilding never reads it, since the weights come from
    the checkpoint. Checkpoints of every irsam version come out alike.

    Arguments:
      hparams (Mapping): the ``hyper_parameters`` of a checkpoint.
    Returns:
      dict[str, Any]: constructor arguments (``net.checkpoint`` is None).
    """
    config = dict(hparams)
    net = _renamed_sizes(config["net"], "net")
    weights = net.get("checkpoint") or config.get("pretrained_weights")
    if "checkpoint" in net:
        net["checkpoint"] = None
    config["net"] = net
    config["pretrained_weights"] = None if weights is None else str(weights)
    return config


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
      pretrained_weights (str | None): provenance: the weights file ``net.checkpoint`` named when
        the run started. The stored hyperparameters keep it here and set ``net.checkpoint`` to
        None, so that a checkpoint rebuilds (:meth:`from_checkpoint`,
        :meth:`load_from_checkpoint`) on any machine; only adapter-only checkpoints read it again,
        as their base weights. When ``net.checkpoint`` is set, its file is the one recorded.
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
        pretrained_weights: str | None = None,
    ) -> None:
        super().__init__()
        arguments = locals()
        config = {key: plain_container(arguments[key]) for key in CONFIG_KEYS}
        self.save_hyperparameters(stored_config(config), logger=False)
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
        """Rebuild the module stored in a ``train.py`` checkpoint or a model folder and load its
        weights strictly.

        The stored config (:func:`stored_config`) is merged with ``overrides`` (mappings merge key
        by key, e.g. ``metrics={"fa_rule": "legacy_area"}`` keeps the stored threshold); the
        pretrained weights file the run started from is not read, since the weights come from the
        checkpoint itself (adapter-only checkpoints read it as their base weights: from
        ``net.checkpoint`` when given, else from ``pretrained_weights``). The sizes of
        checkpoints that name them all ``image_size`` are read under their current names
        (:data:`SIZE_KEYS`).

        Arguments:
          checkpoint (str | PathLike | Mapping): a ``.ckpt`` path, a model folder
            (:mod:`irsam.pretrained`, written by :meth:`save_pretrained`), or a checkpoint already
            read with :func:`irsam.models.checkpoints.read_training_checkpoint`.
          overrides: constructor arguments to merge into the stored ones (``CONFIG_KEYS``).
        Returns:
          IRSAMLitModule: in eval mode.
        Raises:
          CheckpointError: the file is not a readable ``train.py`` checkpoint or model folder, or
            its weights do not fit the network its config describes.
        """
        source = checkpoint if isinstance(checkpoint, Mapping) else None
        path = "<checkpoint>" if source is not None else str(checkpoint)
        if source is not None:
            data = source
        elif Path(checkpoint).is_dir():
            data = _folder_checkpoint(checkpoint)
        else:
            data = read_training_checkpoint(checkpoint)
        unknown = sorted(set(overrides) - set(CONFIG_KEYS))
        if unknown:
            raise TypeError(f"unknown overrides {unknown}; allowed: {list(CONFIG_KEYS)}")
        stored = OmegaConf.create(stored_config(data["hyper_parameters"]))
        merged = OmegaConf.merge(stored, {k: v for k, v in overrides.items() if v is not None})
        adapter_only = bool(data.get(cls.ADAPTER_ONLY))
        if adapter_only:  # the base weights come from the file the run was trained on
            base = merged.net.get("checkpoint") or merged.get("pretrained_weights")
            merged.net.checkpoint = str(require_base_weights(path, base))
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

    @classmethod
    def load_from_checkpoint(  # type: ignore[override]
        cls,
        checkpoint_path: str | os.PathLike,
        map_location: Any = None,
        hparams_file: str | os.PathLike | None = None,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> IRSAMLitModule:
        """Lightning's loader, on the stored config as :meth:`from_checkpoint` reads it.

        Lightning rebuilds the module from the stored hyperparameters before it loads the
        weights; here they are first brought to the current layout (:func:`stored_config`), so
        that checkpoints written before ``pretrained_weights`` existed, whose ``net.checkpoint``
        names a weights file of the training machine, load anywhere. Adapter-only checkpoints
        rebuild on their base weights (``pretrained_weights``). Only the hyperparameters are read
        ahead (memory-mapped); Lightning then reads the file as usual.

        Arguments:
          checkpoint_path (str | PathLike): a ``.ckpt`` written by ``train.py``.
          map_location (Any): as in Lightning (where the tensors go).
          hparams_file (str | PathLike | None): as in Lightning.
          strict (bool | None): as in Lightning.
          **kwargs: constructor arguments replacing the stored ones.
        Returns:
          IRSAMLitModule: the module, with Lightning's hooks run (``on_load_checkpoint``).
        Raises:
          CheckpointError: an adapter-only checkpoint whose base weights file is missing.
        """
        head = torch.load(checkpoint_path, map_location="cpu", mmap=True, weights_only=True)
        config = stored_config(head["hyper_parameters"])
        if head.get(cls.ADAPTER_ONLY):
            base = require_base_weights(checkpoint_path, config["pretrained_weights"])
            config["net"]["checkpoint"] = str(base)
        del head
        return super().load_from_checkpoint(
            checkpoint_path, map_location, hparams_file, strict, **{**config, **kwargs}
        )

    def save_pretrained(
        self,
        folder: str | os.PathLike,
        loader_size: int | None = None,
        high_bit_norm: str | None = None,
    ) -> Path:
        """Write this module as a model folder: ``config.json`` + ``model.safetensors``
        (:mod:`irsam.pretrained`), PEFT adapters merged into a copy of the network.

        The folder keeps the network config (``checkpoint: null``), the loss, the metric options,
        the threshold, the loader options (:data:`LOADER_KEYS`, loader size from
        :func:`checkpoint_sizes`) and the irsam version; :meth:`from_checkpoint` and
        :meth:`irsam.predictor.Predictor.from_pretrained` read it without pickle.

        Arguments:
          folder (str | PathLike): destination folder (created when missing; its two files are
            replaced).
          loader_size (int | None): the loader size to record; None = the checkpoint's.
          high_bit_norm (str | None): the 16-bit/float mapping to record; None = the checkpoint's.
        Returns:
          Path: the folder.
        """
        net = merge_peft(copy.deepcopy(self.net)) if has_peft(self.net) else self.net
        hparams = stored_config(self.hparams)
        metrics = dict(hparams.get("metrics") or {})
        metrics.pop("threshold", None)
        options = inference_options(self, loader_size, high_bit_norm)
        loader = {k: v for k, v in options.items() if k in LOADER_KEYS}
        config = {
            "net": hparams["net"],
            "loss": hparams["loss"],
            "metrics": metrics,
            "threshold": self.threshold,
            "pd_fa_thresholds": hparams.get("pd_fa_thresholds"),
            **loader,
            "encoder_size": checkpoint_sizes(self)[1],
            "pretrained_weights": hparams["pretrained_weights"],
        }
        return write_model_folder(folder, plain_container(config), net.state_dict())

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
        try:
            total, parts = self.loss(outputs, batch)
        except FloatingPointError as error:  # the loss refuses a non-finite model output
            raise self._diverged("the model output holds NaN or Inf values") from error
        if not bool(torch.isfinite(total)):
            terms = ", ".join(f"{k}={float(v):.4g}" for k, v in parts.items())
            raise self._diverged(f"loss {float(total)} ({terms})")
        size = batch["image"].shape[0]
        self.log("train/loss", total, on_step=True, on_epoch=True, prog_bar=True, batch_size=size)
        for name, value in parts.items():
            self.log(f"train/loss_{name}", value, on_step=False, on_epoch=True, batch_size=size)
        return total

    def _diverged(self, what: str) -> FloatingPointError:
        """The divergence error: the step and epoch, what is not finite, and the fixes."""
        lr = self.hparams.optimizer.get("lr") if self.hparams.optimizer else "?"
        return FloatingPointError(
            f"training diverged at step {self.global_step} (epoch {self.current_epoch}): {what}. "
            f"Lower optimizer.lr (now {lr}), train in full precision (trainer.precision=32-true) "
            "or clip gradients (trainer.gradient_clip_val=1.0). No checkpoint of this step is "
            "written."
        )

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


def _targets(value: Any) -> Iterator[str]:
    """Every ``_target_`` value inside nested mappings and lists."""
    if isinstance(value, Mapping):
        if isinstance(value.get("_target_"), str):
            yield value["_target_"]
        for item in value.values():
            yield from _targets(item)
    elif isinstance(value, list):
        for item in value:
            yield from _targets(item)


def _folder_checkpoint(folder: str | os.PathLike) -> dict[str, Any]:
    """A model folder in the layout of a ``train.py`` checkpoint (hyperparameters, state dict)."""
    config, tensors = read_model_folder(folder)
    foreign = sorted({t for t in _targets(config) if not t.startswith(FOLDER_TARGETS)})
    if foreign:
        raise CheckpointError(
            f"{folder}: config.json builds objects outside irsam's networks and losses "
            f"({', '.join(foreign)}); a model folder may only name {', '.join(FOLDER_TARGETS)}*. "
            "Write the folder again with python export.py format=pretrained."
        )
    hparams = {
        "net": config["net"],
        "loss": config["loss"],
        "metrics": {**(config.get("metrics") or {}), "threshold": config["threshold"]},
        "pd_fa_thresholds": config.get("pd_fa_thresholds"),
        "pretrained_weights": config.get("pretrained_weights"),
    }
    return {
        "hyper_parameters": hparams,
        "state_dict": {f"net.{name}": value for name, value in tensors.items()},
        "datamodule_hyper_parameters": {k: config[k] for k in LOADER_KEYS if k in config},
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


def inference_options(
    module: IRSAMLitModule, loader_size: int | None = None, high_bit_norm: str | None = None
) -> dict[str, Any]:
    """How a checkpoint's module prepares images, with the values a caller sets taking over.

    Arguments:
      module (IRSAMLitModule): from :meth:`IRSAMLitModule.from_checkpoint`.
      loader_size (int | None): side the loader resizes images to; None = the checkpoint's
        (:func:`checkpoint_sizes`).
      high_bit_norm (str | None): mapping of 16-bit / float images to 0–255 (see
        :func:`irsam.data.io.read_image`); None = the checkpoint's (``percentile`` when none is
        stored).
    Returns:
      dict: ``loader_size`` and ``high_bit_norm`` (and, when stored, ``eval_resize``,
      ``pad_divisor``, ``pad_value``).
    """
    stored = module.datamodule_hparams
    options = {
        key: stored[key] for key in ("eval_resize", "pad_divisor", "pad_value") if key in stored
    }
    options["loader_size"] = int(loader_size or checkpoint_sizes(module)[0])
    options["high_bit_norm"] = high_bit_norm or stored.get("high_bit_norm", "percentile")
    return options
