# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Hydra glue shared by the entry points: instantiation, config printing, checkpoint paths."""

from __future__ import annotations

import functools
import glob
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from irsam.models.checkpoints import CheckpointError, read_training_checkpoint
from irsam.utils.atomic import atomic_write_bytes
from irsam.utils.logging import get_logger

log = get_logger(__name__)


def instantiate_group(cfg: DictConfig | None) -> list[Any]:
    """Instantiate every ``_target_`` entry of a config group mapping (callbacks, loggers).

    Arguments:
      cfg (DictConfig | None): mapping name → config with ``_target_``; None gives an empty list.
    Returns:
      list[Any]: the instantiated objects in config order.
    """
    if not cfg:
        return []
    if not isinstance(cfg, DictConfig):
        raise TypeError(f"expected a mapping of configs, got {type(cfg).__name__}")
    return [
        hydra.utils.instantiate(node)
        for node in cfg.values()
        if isinstance(node, DictConfig) and "_target_" in node
    ]


def apply_extras(cfg: DictConfig) -> None:
    """Apply ``cfg.extras``: silence warnings and print/save the config tree (rank 0).

    Arguments:
      cfg (DictConfig): the composed task config.
    """
    extras = cfg.get("extras") or {}
    if extras.get("ignore_warnings"):
        warnings.filterwarnings("ignore")
    if extras.get("print_config"):
        text = OmegaConf.to_yaml(cfg, resolve=False)
        log.info("Composed config:\n%s", text)
        output_dir = cfg.get("paths", {}).get("output_dir")
        if output_dir and L.fabric.utilities.rank_zero.rank_zero_only.rank == 0:
            atomic_write_bytes(Path(output_dir) / "config_tree.log", text.encode())
            atomic_write_bytes(
                Path(output_dir) / "tags.log", str(list(cfg.get("tags") or [])).encode()
            )


def resolve_ckpt_path(
    ckpt_path: str | None, log_dir: str, task_name: str, model_cfg: DictConfig | None = None
) -> str | None:
    """Turn ``ckpt_path`` into a checked checkpoint file to resume from.

    ``auto`` picks the newest ``last.ckpt`` under ``<log_dir>/<task_name>/`` (single runs and
    multiruns), or None when there is none (a fresh start). Any other value must be a readable
    ``train.py`` checkpoint; with ``model_cfg`` its network must be the one this run builds.

    Arguments:
      ckpt_path (str | None): None, ``auto``, or a path.
      log_dir (str): the logs root (``paths.log_dir``).
      task_name (str): the task whose runs are searched.
      model_cfg (DictConfig | None): this run's ``model`` config, checked against the file's.
    Returns:
      str | None: a checkpoint file, or None.
    Raises:
      FileNotFoundError: the path does not exist.
      CheckpointError: unreadable, not a ``train.py`` checkpoint, or another network.
    """
    if ckpt_path is None:
        return None
    if str(ckpt_path) == "auto":
        candidates = glob.glob(os.path.join(log_dir, task_name, "**", "last.ckpt"), recursive=True)
        if not candidates:
            log.info(
                "ckpt_path=auto: no last.ckpt under %s; starting fresh", Path(log_dir) / task_name
            )
            return None
        ckpt_path = max(candidates, key=os.path.getmtime)
        log.info("ckpt_path=auto: resuming from %s", ckpt_path)
    if not Path(ckpt_path).is_file():
        raise FileNotFoundError(
            f"ckpt_path={ckpt_path}: no such file. Give the path of a .ckpt written by train.py "
            "(e.g. logs/train/runs/<time>/checkpoints/last.ckpt) or ckpt_path=auto."
        )
    stored = read_training_checkpoint(ckpt_path)["hyper_parameters"]["net"]
    if model_cfg is not None and stored.get("_target_") != model_cfg.net.get("_target_"):
        raise CheckpointError(
            f"ckpt_path={ckpt_path} holds a {stored.get('_target_')} network; this run builds "
            f"{model_cfg.net.get('_target_')}. Drop the model override to resume it, or start a "
            "new run from its weights with model.net.checkpoint=<file> (no ckpt_path)."
        )
    return str(ckpt_path)


def is_out_of_memory(err: BaseException) -> bool:
    """True for an accelerator or host allocation failure (``torch.OutOfMemoryError`` on GPUs;
    CPU allocations that fail raise a ``RuntimeError`` from PyTorch's CPU allocator)."""
    return isinstance(err, torch.OutOfMemoryError) or (
        isinstance(err, RuntimeError) and "can't allocate memory" in str(err)
    )


def task_wrapper(
    task: Callable[[DictConfig], tuple[dict, dict]],
) -> Callable[[DictConfig], tuple[dict, dict]]:
    """Run a task with extras applied, log failures with the run folder, and close wandb runs.

    In a multirun, a trial that runs out of memory logs the error and returns no
    ``optimized_metric`` instead of raising: hydra-optuna-sweeper records the trial as failed and,
    with ``max_failure_rate: 1.0`` (``conf/hparams_search/irsam_optuna.yaml``), goes on; a plain
    grid moves on to its next job.

    Arguments:
      task (Callable): ``task(cfg) -> (metric_dict, object_dict)``.
    Returns:
      Callable: the wrapped task.
    """

    @functools.wraps(task)
    def wrapped(cfg: DictConfig) -> tuple[dict, dict]:
        apply_extras(cfg)
        try:
            return task(cfg)
        except (torch.OutOfMemoryError, RuntimeError) as err:
            from hydra.core.hydra_config import HydraConfig

            multirun = HydraConfig.initialized() and HydraConfig.get().mode.name == "MULTIRUN"
            if not (multirun and is_out_of_memory(err)):
                raise
            log.exception("out of memory: this sweep trial is marked failed")
            name = cfg.get("optimized_metric") or "val/IoU_best"
            return {name: float("nan")}, {"optimized_metric": None}
        finally:
            log.info("Output dir: %s", cfg.paths.output_dir)
            try:
                import wandb

                if wandb.run is not None:
                    wandb.finish()
            except ImportError:
                pass

    return wrapped


def metric_value(metrics: dict[str, Any], name: str | None) -> float | None:
    """Read a float from a metric dict (``trainer.callback_metrics``), for sweeps.

    Arguments:
      metrics (dict): metric name → tensor or float.
      name (str | None): key to read; None returns None.
    Returns:
      float | None: the value.
    """
    if not name:
        return None
    if name not in metrics:
        raise KeyError(f"optimized_metric={name!r} was not logged; available: {sorted(metrics)}")
    value = metrics[name]
    return float(value.item() if hasattr(value, "item") else value)
