# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Hydra glue shared by the tasks: the task wrapper (extras, failures, sweep trials that run out
of memory), config-group instantiation and the optimised-metric lookup."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from irsam.utils import atomic_write_bytes, get_logger

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


def is_out_of_memory(err: BaseException) -> bool:
    """Whether an error is an accelerator or host allocation failure.

    Arguments:
      err (BaseException): the caught error.
    Returns:
      bool: True for ``torch.OutOfMemoryError`` (GPUs) and for the ``RuntimeError`` that
      PyTorch's CPU allocator raises when an allocation fails.
    """
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
