# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Resuming a training run: atomic checkpoint files (and the removal of a killed save's
leftovers), best-checkpoint bookkeeping that continues in a new run folder (also from a moved
run folder), the random-number states of an exact resume, and ``ckpt_path`` resolution
(``auto``: the newest run of the same experiment; a file: checked against this run's
experiment)."""

from __future__ import annotations

import os
import random
import shutil
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from irsam.data.layouts import LABEL_BUDGET_KEYS
from irsam.models.checkpoints import CheckpointError, read_training_checkpoint
from irsam.utils import MissingFileError, atomic_save_torch, get_logger
from irsam.utils.containers import plain_container

log = get_logger(__name__)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes every checkpoint to a temporary file in its folder, fsyncs, then renames it.

    A run killed at any moment leaves the previous ``last.ckpt`` intact, never half a file.
    Checkpoints hold plain containers and tensors only, so they load with ``weights_only=True``.
    """

    def save_checkpoint(
        self,
        checkpoint: dict[str, Any],
        path: str | os.PathLike,
        storage_options: Any | None = None,
    ) -> None:
        """Save ``checkpoint`` to ``path`` atomically."""
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO does not take storage_options")
        atomic_save_torch(checkpoint, path)

    LEFTOVER_PATTERN = ".*.ckpt.*.tmp"
    """Names of the temporary files a save killed half-way leaves (``.<name>.ckpt.<random>.tmp``,
    see :func:`irsam.utils.atomic.atomic_path`)."""

    @classmethod
    def remove_leftovers(cls, folders: Iterable[str | os.PathLike]) -> list[Path]:
        """Delete the temporary files of killed saves under ``folders`` (recursively).

        Each removed file is logged with its size. A temporary file that a live process still
        holds open (another run saving right now; checked through ``/proc`` on Linux) is left
        alone; where ``/proc`` is absent, only files unmodified for 10 minutes are removed.

        Arguments:
          folders (Iterable[str | PathLike]): folders to search; missing ones are skipped.
        Returns:
          list[Path]: the removed files.
        """
        leftovers = sorted(
            {
                path
                for folder in folders
                if Path(folder).is_dir()
                for path in Path(folder).rglob(cls.LEFTOVER_PATTERN)
                if path.is_file()
            }
        )
        if not leftovers:
            return []
        in_use = _files_open_by_processes()
        removed = []
        for path in leftovers:
            stat = path.stat()
            busy = (
                os.path.realpath(path) in in_use
                if in_use is not None
                else time.time() - stat.st_mtime < 600
            )
            if busy:
                log.info("Left %s in place: a running process is writing it", path)
                continue
            path.unlink(missing_ok=True)
            removed.append(path)
            log.warning(
                "Removed %s (%.1f MB): the temporary file of a checkpoint save that was killed "
                "before it finished",
                path,
                stat.st_size / 1e6,
            )
        return removed


def _files_open_by_processes() -> set[str] | None:
    """Real paths of the files this user's processes hold open (``/proc``); None without it."""
    proc = Path("/proc")
    if not (proc / "self" / "fd").is_dir():
        return None
    paths = set()
    for fd_dir in proc.glob("[0-9]*/fd"):
        try:
            entries = list(os.scandir(fd_dir))
        except OSError:  # another user's process, or one that just ended
            continue
        for entry in entries:
            try:
                paths.add(os.readlink(entry.path))
            except OSError:
                continue
    return paths


class ResumableModelCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` whose bookkeeping survives a resume into a new run folder.

    Lightning restores the best score, the top-k dictionary and the last path only when the
    resumed run writes into the same folder; a resumed ``train.py`` run has a new folder, so it
    would forget them and pick its best checkpoint among the post-resume epochs only. Here the
    stored top-k checkpoints are brought into the new folder (hard link, or copy across file
    systems) and the whole bookkeeping continues: best score and path, top-k dictionary, k-th
    value, current score and last path. The state is stored under Lightning's own key, so
    checkpoints of the plain ``ModelCheckpoint`` resume too.

    A stored top-k file is looked for at its stored path, then at the same place relative to the
    folder of the checkpoint being resumed: a run folder that was moved or copied (another disk,
    an archive folder) resumes with its best checkpoint. A validation-selected checkpoint found
    nowhere is remembered with its score: :meth:`selected_checkpoint` then refuses to name a
    worse one for the test.

    When ``last.ckpt`` is saved at the step that also wrote a top-k checkpoint, it becomes a hard
    link of that file instead of a second copy of the same weights (half the disk and time of an
    improving epoch; the next epoch's atomic save of ``last.ckpt`` replaces the link, not the
    top-k file). File systems without hard links get the copy.

    Arguments: those of ``ModelCheckpoint`` (``conf/callbacks/model_checkpoint.yaml``).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._resume_folder: Path | None = None
        self._missing_best: tuple[str, float] | None = None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Save the top-k checkpoint when the monitored metric improved, and ``last.ckpt`` at
        every checkpoint epoch (Lightning 2.6 writes ``last.ckpt`` only together with a top-k
        save, so a run killed after epochs without improvement would resume from the last
        improvement and lose the epochs since)."""
        super().on_validation_end(trainer, pl_module)
        due = self._every_n_epochs >= 1 and (trainer.current_epoch + 1) % self._every_n_epochs == 0
        if (
            self.save_last
            and due
            and not self._should_skip_saving_checkpoint(trainer)
            and not self._should_save_on_train_epoch_end(trainer)
        ):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        """Write ``filepath``, or hard-link this step's top-k file when it is ``last.ckpt``."""
        same_step = (
            self._last_global_step_saved == trainer.global_step
            and self._last_checkpoint_saved in self.best_k_models
            and os.path.basename(filepath).startswith(self.CHECKPOINT_NAME_LAST)
        )
        if not (same_step and self._hard_link(trainer, self._last_checkpoint_saved, filepath)):
            super()._save_checkpoint(trainer, filepath)

    @staticmethod
    def _hard_link(trainer: L.Trainer, source: str, target: str) -> bool:
        """Atomically hard-link ``target`` to ``source`` (rank 0); False when it was refused."""
        linked = True
        if trainer.is_global_zero:
            folder, name = os.path.split(target)
            temporary = os.path.join(folder, f".{name}.link.tmp")  # a leftover name, if killed
            try:
                if os.path.lexists(temporary):
                    os.remove(temporary)
                os.link(source, temporary)
                os.replace(temporary, target)
            except OSError as error:
                log.info("hard link %s -> %s refused (%s): writing a copy", target, source, error)
                linked = False
        linked = trainer.strategy.broadcast(linked)
        trainer.strategy.barrier()
        return linked

    @property
    def state_key(self) -> str:
        """Lightning's key for this callback's state, the one the plain class uses (it depends on
        ``monitor``, ``mode`` and the save frequency)."""
        return super().state_key.replace(type(self).__qualname__, ModelCheckpoint.__qualname__, 1)

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Note the folder of the checkpoint being resumed (where moved top-k files are looked
        for); warn when it holds the bookkeeping of a differently configured ``ModelCheckpoint``
        (another ``monitor``, ``mode`` or frequency): it cannot continue."""
        self._resume_folder = Path(trainer.ckpt_path).parent if trainer.ckpt_path else None
        stored = [k for k in checkpoint.get("callbacks") or {} if k.startswith("ModelCheckpoint")]
        if stored and self.state_key not in stored:
            log.warning(
                "The checkpoint's best-checkpoint bookkeeping was written by %s; this run "
                "checkpoints with %s, so the best checkpoint restarts from the resumed epoch. "
                "Resume with the same callbacks.model_checkpoint settings to keep it.",
                stored[0],
                self.state_key,
            )

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the bookkeeping; from another folder, bring the top-k files into this one.

        Arguments:
          state_dict (dict): the stored :meth:`ModelCheckpoint.state_dict`.
        """
        old_dir = state_dict.get("dirpath")
        self._missing_best = None
        if old_dir is None or self.dirpath is None:
            super().load_state_dict({**state_dict, "dirpath": self.dirpath})
            return
        moved = {}
        for old_path, score in (state_dict.get("best_k_models") or {}).items():
            new_path = self._adopt(self._locate(old_path, old_dir))
            if new_path is not None:
                moved[old_path] = (new_path, score)
        self.best_k_models = {new: score for new, score in moved.values()}

        def carried(key: str) -> str:
            old = state_dict.get(key) or ""
            return moved[old][0] if old in moved else ""

        stored_best = state_dict.get("best_model_path") or ""
        self.best_model_path = carried("best_model_path")
        self.kth_best_model_path = carried("kth_best_model_path")
        self.best_model_score = state_dict.get("best_model_score") if self.best_model_path else None
        if (
            stored_best
            and not self.best_model_path
            and state_dict.get("best_model_score") is not None
        ):
            self._missing_best = (stored_best, float(state_dict["best_model_score"]))
        self.kth_value = state_dict.get("kth_value", self.kth_value)
        self.current_score = state_dict.get("current_score")
        last = state_dict.get("last_model_path") or ""
        self.last_model_path = os.path.join(self.dirpath, os.path.basename(last)) if last else ""
        if Path(old_dir) != Path(self.dirpath):
            log.info(
                "Best-checkpoint bookkeeping continued from %s: best %s (score %s)",
                old_dir,
                self.best_model_path or "none",
                None if self.best_model_score is None else float(self.best_model_score),
            )

    def _locate(self, old_path: str, old_dir: str) -> Path:
        """A stored checkpoint path, or its place relative to the resumed checkpoint's folder."""
        source = Path(old_path)
        if source.is_file() or self._resume_folder is None:
            return source
        relative = Path(os.path.relpath(source, old_dir))
        if relative.parts and relative.parts[0] == os.pardir:
            relative = Path(source.name)
        found = self._resume_folder / relative
        return found if found.is_file() else source

    def _adopt(self, source: Path) -> str | None:
        """Hard-link (or copy) a stored top-k checkpoint here; its new path, None if it is gone."""
        if not source.is_file():
            log.warning(
                "Stored top-k checkpoint %s is in neither its run folder nor next to the resumed "
                "checkpoint (%s): it is forgotten",
                source,
                self._resume_folder,
            )
            return None
        target = Path(self.dirpath) / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            try:
                os.link(source, target)
            except FileExistsError:  # another rank linked it first
                pass
            except OSError:  # no hard links across file systems: copy under a temporary name
                temporary = target.with_name(f".{target.name}.copy.tmp")
                shutil.copy2(source, temporary)
                os.replace(temporary, target)
        return str(target)

    def selected_checkpoint(self) -> str:
        """The validation-selected checkpoint of the whole run, resumed epochs included.

        Returns:
          str: its path; ``""`` when no checkpoint was selected (no validation ran).
        Raises:
          CheckpointError: the checkpoint selected before the resume could not be found (see
            :meth:`load_state_dict`) and no later epoch scored better: testing the best of the
            resumed epochs would report another checkpoint than the one validation chose.
        """
        if self._missing_best is not None:
            path, score = self._missing_best
            current = None if self.best_model_score is None else float(self.best_model_score)
            beaten = current is not None and (
                current > score if self.mode == "max" else current < score
            )
            if not beaten:
                raise CheckpointError(
                    f"the validation-selected checkpoint {path} ({self.monitor}={score:.6g}) of "
                    "the resumed run is missing (looked in its run folder and next to the "
                    f"resumed checkpoint, in {self._resume_folder}) and no resumed epoch scored "
                    "better, so testing would use another checkpoint. Put the file back and "
                    "test it with python evaluate.py ckpt_path=<file>; the best resumed epoch is "
                    f"{self.best_model_path or 'none'}."
                )
        return self.best_model_path


def selected_checkpoint(callback: ModelCheckpoint | None) -> str:
    """The checkpoint that validation selected, for the test after a fit.

    Arguments:
      callback (ModelCheckpoint | None): the trainer's ``checkpoint_callback``.
    Returns:
      str: its path; ``""`` without a checkpoint callback or a selected checkpoint.
    Raises:
      CheckpointError: see :meth:`ResumableModelCheckpoint.selected_checkpoint`.
    """
    if isinstance(callback, ResumableModelCheckpoint):
        return callback.selected_checkpoint()
    return callback.best_model_path if callback is not None else ""


class ResumeState(L.Callback):
    """Stores what an exact resume needs beyond Lightning's own state, and restores it.

    Every checkpoint gets the task name (``irsam_task_name``, read by ``ckpt_path=auto`` to
    resume only runs of the same experiment) and the random-number states of Python, NumPy,
    torch (CPU) and, once the run has used CUDA, every CUDA device at the time of the save
    (``irsam_rng``). After a resume they are restored at the start of the first resumed epoch,
    so shuffling, dataloader-worker seeds and the augmentation (reseeded from the torch RNG at
    every epoch start, ``IRSTDDataModule.reseed_augmentation``) continue as in an uninterrupted
    run.

    Arguments:
      task_name (str): the run's ``task_name``.
    """

    TASK_KEY = "irsam_task_name"
    RNG_KEY = "irsam_rng"

    def __init__(self, task_name: str) -> None:
        self.task_name = str(task_name)
        self._pending: dict[str, Any] | None = None

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Add the task name and the random-number states to ``checkpoint``."""
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        checkpoint[self.TASK_KEY] = self.task_name
        checkpoint[self.RNG_KEY] = {
            "python": random.getstate(),
            "numpy": {
                "kind": kind,
                "keys": torch.from_numpy(keys.astype(np.int64)),
                "pos": int(pos),
                "has_gauss": int(has_gauss),
                "gauss": float(gauss),
            },
            "torch": torch.get_rng_state(),
            "cuda": _cuda_rng_states(),
        }

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Keep the stored random-number states until training resumes."""
        self._pending = checkpoint.get(self.RNG_KEY)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Restore the stored random-number states on the first epoch after a resume, then
        reseed the training augmentation (every epoch) from the torch RNG."""
        if self._pending is not None:
            self._restore_rng(self._pending)
            self._pending = None
        reseed = getattr(trainer.datamodule, "reseed_augmentation", None)
        if reseed is not None:
            reseed()

    @staticmethod
    def _restore_rng(state: dict[str, Any]) -> None:
        """Set the Python, NumPy, torch and CUDA generators to the states saved with the
        checkpoint (a checkpoint without CUDA states, or a machine without CUDA, leaves the CUDA
        generators as seeded)."""
        numpy_state = state["numpy"]
        random.setstate(_as_tuples(state["python"]))
        np.random.set_state(
            (
                numpy_state["kind"],
                numpy_state["keys"].numpy().astype(np.uint32),
                numpy_state["pos"],
                numpy_state["has_gauss"],
                numpy_state["gauss"],
            )
        )
        torch.set_rng_state(state["torch"])
        cuda = list(state.get("cuda") or [])
        if cuda and torch.cuda.is_available():
            for device, cuda_state in enumerate(cuda[: torch.cuda.device_count()]):
                torch.cuda.set_rng_state(cuda_state, device)


def _cuda_rng_states() -> list[torch.Tensor]:
    """The generator state of every CUDA device; empty while this process has not used CUDA
    (its generators then still hold their seeds, and reading them would start CUDA)."""
    if not (torch.cuda.is_available() and torch.cuda.is_initialized()):
        return []
    return torch.cuda.get_rng_state_all()


def _as_tuples(value: Any) -> Any:
    """Nested lists back to tuples (``random.setstate`` wants the tuples it gave)."""
    return tuple(_as_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


EXPERIMENT_KEYS = (
    "task_name",
    "dataset.name",
    "dataset.root",
    "dataset.split",
    "dataset.label_budget",
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
      ``dataset.label_budget`` the ``train_fraction``, ``train_count`` and ``train_subset_seed``
      of a label budget (None without one), ``model.net`` the network builder, ``loss`` the
      whole loss config.
    """
    data = dict(datamodule_hparams or {})
    root = data.get("root")
    net = plain_container(module_hparams.get("net")) or {}
    return {
        "task_name": task_name,
        "dataset.name": data.get("name"),
        "dataset.root": None if root is None else os.path.realpath(str(root)),
        "dataset.split": data.get("split"),
        "dataset.label_budget": None
        if data.get("train_fraction") is None and data.get("train_count") is None
        else {key: data.get(key) for key in LABEL_BUDGET_KEYS},
        "model.net": net.get("_target_"),
        "loss": plain_container(module_hparams.get("loss")),
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
    multiruns).

    Arguments:
      log_dir (str | PathLike): the logs root (``paths.log_dir``).
      task_name (str): the task whose runs are searched.
    Returns:
      list[Path]: the folders, newest first (by their newest checkpoint).
    """
    files = [p for p in Path(log_dir, task_name).rglob("*.ckpt") if p.is_file()]
    newest: dict[Path, float] = {}
    for path in files:
        newest[path.parent] = max(newest.get(path.parent, 0.0), path.stat().st_mtime)
    return sorted(newest, key=newest.__getitem__, reverse=True)


def _auto_candidates(folder: Path) -> list[Path]:
    """A run's ``*.ckpt`` files in resume order: ``last*`` first, then the others, newest first."""
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
        raise MissingFileError(
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
