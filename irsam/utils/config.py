# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Hydra glue shared by the entry points: instantiation, config printing, checkpoint paths."""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from irsam.callbacks import ResumeState
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


EXPERIMENT_KEYS = (
    "task_name",
    "dataset.name",
    "dataset.root",
    "dataset.split",
    "model.net",
    "loss",
)
"""The keys that define an experiment: ``ckpt_path=auto`` resumes only a run that agrees on all
of them; an explicit ``ckpt_path`` must agree on the network, the dataset name and split, and the
loss."""


def experiment_identity(
    task_name: str | None,
    module_hparams: Mapping[str, Any],
    datamodule_hparams: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The values of :data:`EXPERIMENT_KEYS` of a run, from the module's and the datamodule's
    hyperparameters (what a checkpoint stores as ``hyper_parameters`` and
    ``datamodule_hyper_parameters``), so that a run and a checkpoint are described alike.

    Arguments:
      task_name (str | None): the run's ``task_name``; None when unknown (older checkpoints).
      module_hparams (Mapping): ``IRSAMLitModule`` hyperparameters (``net``, ``loss``, ...).
      datamodule_hparams (Mapping | None): ``IRSTDDataModule`` hyperparameters (``name``,
        ``root``, ``split``, ...).
    Returns:
      dict[str, Any]: key → value; ``dataset.root`` as a real path (None for synthetic data),
      ``model.net`` the network builder, ``loss`` the whole loss config.
    """
    data = dict(datamodule_hparams or {})
    root = data.get("root")
    net = _plain(module_hparams.get("net")) or {}
    return {
        "task_name": task_name,
        "dataset.name": data.get("name"),
        "dataset.root": None if root is None else os.path.realpath(str(root)),
        "dataset.split": data.get("split"),
        "model.net": net.get("_target_"),
        "loss": _plain(module_hparams.get("loss")),
    }


def checkpoint_identity(checkpoint: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`experiment_identity` of the run that wrote a ``train.py`` checkpoint.

    Arguments:
      checkpoint (Mapping): a checkpoint read by ``read_training_checkpoint``.
    Returns:
      dict[str, Any]: as :func:`experiment_identity`.
    """
    data = checkpoint.get("datamodule_hyper_parameters")
    identity = experiment_identity(
        checkpoint.get(ResumeState.TASK_KEY), checkpoint["hyper_parameters"], data
    )
    if data is None:  # a datamodule without saved hyperparameters: its dataset is unknown
        identity = {k: v for k, v in identity.items() if not k.startswith("dataset.")}
    return identity


def _plain(value: Any) -> Any:
    """An OmegaConf node (or a mapping holding them) as plain containers."""
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _flatten(value: Any, prefix: str) -> dict[str, Any]:
    """Nested mappings as ``{"a.b.c": leaf}``."""
    if isinstance(value, Mapping) and value:
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}"))
        return flat
    return {prefix: value}


def identity_differences(
    stored: Mapping[str, Any], current: Mapping[str, Any], keys: Iterable[str] = EXPERIMENT_KEYS
) -> list[str]:
    """The experiment keys on which a checkpoint's run and this run differ, as readable lines.

    A key the checkpoint does not know is skipped: the task name of a file written before it
    was stored (None), the dataset of a datamodule that saved no hyperparameters (absent).

    Arguments:
      stored (Mapping): the checkpoint's :func:`checkpoint_identity`.
      current (Mapping): this run's :func:`experiment_identity`.
      keys (Iterable[str]): the keys to compare.
    Returns:
      list[str]: ``"<key>: <checkpoint value> (checkpoint) vs <value> (this run)"`` per leaf.
    """
    lines = []
    for key in keys:
        if key not in stored or (key == "task_name" and stored[key] is None):
            continue
        old, new = _flatten(stored.get(key), key), _flatten(current.get(key), key)
        for leaf in sorted(set(old) | set(new)):
            if old.get(leaf, "<absent>") != new.get(leaf, "<absent>"):
                lines.append(
                    f"{leaf}: {old.get(leaf, '<absent>')!r} (checkpoint) vs "
                    f"{new.get(leaf, '<absent>')!r} (this run)"
                )
    return lines


def checkpoint_folders(log_dir: str | os.PathLike, task_name: str) -> list[Path]:
    """The folders holding ``.ckpt`` files under ``<log_dir>/<task_name>/`` (single runs and
    multiruns), newest first (by their newest checkpoint)."""
    files = [p for p in Path(log_dir, task_name).rglob("*.ckpt") if p.is_file()]
    newest: dict[Path, float] = {}
    for path in files:
        newest[path.parent] = max(newest.get(path.parent, 0.0), path.stat().st_mtime)
    return sorted(newest, key=newest.__getitem__, reverse=True)


def _auto_candidates(folder: Path) -> list[Path]:
    """A run's checkpoints in resume order: ``last*.ckpt`` first, then the others, newest first
    (temporary files of killed saves never match)."""
    files = [p for p in folder.glob("*.ckpt") if p.is_file()]
    return sorted(files, key=lambda p: (p.name.startswith("last"), p.stat().st_mtime), reverse=True)


def resolve_ckpt_path(
    ckpt_path: str | None,
    log_dir: str,
    task_name: str,
    identity: Mapping[str, Any] | None = None,
) -> str | None:
    """Turn ``ckpt_path`` into a checked checkpoint file to resume from.

    ``auto`` looks at the runs under ``<log_dir>/<task_name>/`` (single runs and multiruns),
    newest first, and resumes the first one whose stored experiment matches ``identity`` on
    :data:`EXPERIMENT_KEYS`; each run that differs is skipped with one log line naming the keys
    (checkpoint vs this run). Within a run it takes ``last.ckpt``, or, when that is unreadable
    (reported), the newest readable epoch checkpoint. With no match it returns None (a fresh
    start, said in the log). Any other value must be a readable ``train.py`` checkpoint of the
    same network, dataset (name and split) and loss as this run; another dataset root is only
    reported (the same dataset may have moved).

    Arguments:
      ckpt_path (str | None): None, ``auto``, or a path.
      log_dir (str): the logs root (``paths.log_dir``).
      task_name (str): the task whose runs are searched.
      identity (Mapping | None): this run's :func:`experiment_identity`; None skips the checks.
    Returns:
      str | None: a checkpoint file, or None.
    Raises:
      FileNotFoundError: the path does not exist.
      CheckpointError: unreadable, not a ``train.py`` checkpoint, or another experiment.
    """
    if ckpt_path is None:
        return None
    if str(ckpt_path) == "auto":
        return _resolve_auto(log_dir, task_name, identity)
    if not Path(ckpt_path).is_file():
        raise FileNotFoundError(
            f"ckpt_path={ckpt_path}: no such file. Give the path of a .ckpt written by train.py "
            "(e.g. logs/train/runs/<time>/checkpoints/last.ckpt) or ckpt_path=auto."
        )
    checkpoint = read_training_checkpoint(ckpt_path)
    if identity is None:
        return str(ckpt_path)
    stored = checkpoint_identity(checkpoint)
    if stored["model.net"] != identity["model.net"]:
        raise CheckpointError(
            f"ckpt_path={ckpt_path} holds a {stored['model.net']} network; this run builds "
            f"{identity['model.net']}. Drop the model override to resume it, or start a "
            "new run from its weights with model.net.checkpoint=<file> (no ckpt_path)."
        )
    moved = identity_differences(stored, identity, ["dataset.root"])
    if moved:  # the same dataset in another folder (a new mount, a faster disk)
        log.warning("ckpt_path=%s: resuming although %s", ckpt_path, moved[0])
    differences = identity_differences(stored, identity, ["dataset.name", "dataset.split", "loss"])
    if differences:
        raise CheckpointError(
            f"ckpt_path={ckpt_path} was trained on another experiment: "
            + "; ".join(differences)
            + ". Resuming continues the same run: drop the dataset/loss overrides that differ, "
            "or start a new run from its weights with model.net.checkpoint=<file> (no ckpt_path)."
        )
    return str(ckpt_path)


def _resolve_auto(log_dir: str, task_name: str, identity: Mapping[str, Any] | None) -> str | None:
    """``ckpt_path=auto``: the newest valid checkpoint of the newest matching run, or None."""
    where = Path(log_dir) / task_name
    folders = checkpoint_folders(log_dir, task_name)
    skipped = 0
    for folder in folders:
        for candidate in _auto_candidates(folder):
            try:
                checkpoint = read_training_checkpoint(candidate)
            except (CheckpointError, FileNotFoundError) as err:
                log.warning("ckpt_path=auto: skipping %s: %s", candidate, err)
                continue
            differences = (
                identity_differences(checkpoint_identity(checkpoint), identity)
                if identity is not None
                else []
            )
            if differences:
                log.info(
                    "ckpt_path=auto: skipping the run in %s (another experiment): %s",
                    folder,
                    "; ".join(differences),
                )
                skipped += 1
                break
            log.info("ckpt_path=auto: resuming from %s", candidate)
            return str(candidate)
    if not folders:
        reason = f"no checkpoint under {where}"
    elif skipped == len(folders):
        reason = f"none of the {skipped} runs under {where} is this experiment (see above)"
    else:
        reason = f"no readable checkpoint of this experiment under {where} (see above)"
    log.info("ckpt_path=auto: %s; starting fresh", reason)
    return None


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
