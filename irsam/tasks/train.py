# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Training task: build everything from the config, fit, test the best checkpoint, report
(results.json / results.md in the run folder, as ``evaluate.py`` writes them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
import lightning as L
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from omegaconf import DictConfig, OmegaConf
from torch import nn

from irsam.lit_module import IRSAMLitModule
from irsam.metrics.report import write_results
from irsam.models import count_parameters
from irsam.resume import (
    AtomicCheckpointIO,
    ResumeState,
    experiment_identity,
    resolve_ckpt_path,
    selected_checkpoint,
)
from irsam.tasks.evaluate import test_set_results, training_record
from irsam.tasks.runner import instantiate_group, metric_value, task_wrapper
from irsam.utils import get_logger
from irsam.utils.atomic import ensure_writable_dir, format_size, free_bytes

log = get_logger(__name__)


@task_wrapper
def train(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit on the train split, select on the validation split, then test the selected checkpoint.

    Arguments:
      cfg (DictConfig): the composed ``train.yaml`` config.
    Returns:
      tuple[dict, dict]: (all logged metrics as floats, the built objects; ``optimized_metric``
      is the value of ``cfg.optimized_metric`` after training, None when ``train=false``).
    """
    ensure_writable_dir(cfg.paths.output_dir, "run folder (paths.log_dir=)")
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    datamodule = hydra.utils.instantiate(cfg.dataset)
    model: IRSAMLitModule = hydra.utils.instantiate(cfg.model)
    loggers = instantiate_group(cfg.get("logger"))
    callbacks = instantiate_group(cfg.get("callbacks"))
    if not loggers:  # the LR monitor needs a logger; without one there is nothing to monitor into
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    callbacks.append(ResumeState(cfg.task_name))
    trainer: L.Trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=[AtomicCheckpointIO()]
    )
    counts = count_parameters(model.net)
    log.info(
        "Parameters: total %.3f M, trainable %.3f M, effective %.3f M",
        counts["total"] / 1e6,
        counts["trainable"] / 1e6,
        counts["effective"] / 1e6,
    )
    for logger in trainer.loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    if cfg.get("train") and trainer.is_global_zero:
        check_checkpoint_space(model, trainer)
        datamodule.save_train_subset(cfg.paths.output_dir)

    optimized = None
    if cfg.get("train"):
        requested = cfg.get("ckpt_path")
        if L.fabric.utilities.rank_zero.rank_zero_only.rank == 0:
            AtomicCheckpointIO.remove_leftovers(_checkpoint_search_folders(cfg, trainer, requested))
        identity = experiment_identity(cfg.task_name, model.hparams, datamodule.hparams)
        ckpt_path = resolve_ckpt_path(requested, cfg.paths.log_dir, cfg.task_name, identity)
        trainer.fit(model=model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        optimized = metric_value(trainer.callback_metrics, cfg.get("optimized_metric"))
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}

    if cfg.get("test"):
        best = selected_checkpoint(trainer.checkpoint_callback)
        if not best:
            log.warning("No best checkpoint was saved: testing the current weights")
        trainer.test(model=model, datamodule=datamodule, ckpt_path=best or None, weights_only=True)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items()})
        trained_on = training_record(datamodule.hparams)
        output_dir = cfg.paths.output_dir
        results, markdown = test_set_results(
            trainer, model, datamodule, best or None, trained_on, output_dir
        )
        if trainer.is_global_zero:
            write_results(output_dir, results, markdown)
        log.info("Best checkpoint: %s", best or "none")
    return metrics, {
        "datamodule": datamodule,
        "model": model,
        "trainer": trainer,
        "optimized_metric": optimized,
    }


def check_checkpoint_space(model: nn.Module, trainer: L.Trainer) -> str | None:
    """Warn, before training, when the disk of the checkpoint folder cannot hold the checkpoints
    the run keeps (a full disk is otherwise found at the first save, after an epoch).

    A checkpoint holds every parameter and buffer of ``model`` and the optimiser state, counted
    as two float32 moments per trainable parameter (AdamW's). The run keeps, per
    ``ModelCheckpoint``, ``save_top_k`` checkpoints (all of them, one per epoch, for -1) plus
    ``last.ckpt``, and one more is on disk while a save is written (atomically).

    Arguments:
      model (nn.Module): the LightningModule to train.
      trainer (L.Trainer): the trainer with its checkpoint callbacks.
    Returns:
      str | None: the warning logged, or None when the space is enough or unknown.
    """
    callbacks = [c for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint)]
    kept = sum(_kept_checkpoints(c, trainer.max_epochs) for c in callbacks)
    if not kept:
        return None
    folder = Path(callbacks[0].dirpath or Path(trainer.default_root_dir) / "checkpoints")
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    moments = sum(2 * 4 * p.numel() for p in model.parameters() if p.requires_grad)
    each, free = weights + moments, free_bytes(folder)
    needed = each * (kept + 1)
    if free is None or free >= needed:
        return None
    message = (
        f"the disk of the checkpoint folder {folder} has {format_size(free)} free, but this run "
        f"keeps up to {kept} checkpoints (top-k and last.ckpt) of about {format_size(each)} "
        f"each (weights {format_size(weights)}, optimiser state {format_size(moments)}), plus "
        f"one while saving: about {format_size(needed)}. Free space, lower "
        "callbacks.model_checkpoint.save_top_k, or write the run to a larger disk "
        "(paths.log_dir=<folder>)."
    )
    log.warning(message)
    return message


def _kept_checkpoints(callback: ModelCheckpoint, max_epochs: int | None) -> int:
    """Checkpoints a ``ModelCheckpoint`` keeps: top-k (-1: one per epoch) plus ``last.ckpt``."""
    top_k = callback.save_top_k if callback.save_top_k >= 0 else max(int(max_epochs or 0), 1)
    return top_k + int(bool(callback.save_last))


def _checkpoint_search_folders(
    cfg: DictConfig, trainer: L.Trainer, requested: str | None
) -> list[str | Path]:
    """Folders where a killed save may have left temporary files that this run should remove:
    this run's checkpoint folders, and those ``ckpt_path`` looks at (``auto``: every run of the
    task; a file: its folder)."""
    folders = [c.dirpath for c in trainer.checkpoint_callbacks if getattr(c, "dirpath", None)]
    if requested is not None and str(requested) == "auto":
        folders.append(Path(cfg.paths.log_dir) / cfg.task_name)
    elif requested is not None:
        folders.append(Path(str(requested)).parent)
    return folders
