# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Lightning callbacks and plugins: sample panels, the prediction writer, atomic checkpoints,
checkpoint bookkeeping that survives a resume."""

from __future__ import annotations

import os
import random
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from irsam.data.io import write_png
from irsam.outputs import (
    TARGET_COLUMNS,
    TRACK_COLUMNS,
    target_rows,
    write_prediction,
    write_targets_csv,
)
from irsam.tracking import OverlayVideoWriter, TrackerState, draw_track_ids, update_tracks
from irsam.utils import atomic_save_torch, atomic_write_bytes, ensure_writable_dir, get_logger
from irsam.visualize import overlay, panel, to_uint8_rgb

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
    """Real paths of the files that this user's processes hold open (Linux ``/proc``); None
    where ``/proc`` is not available."""
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
    checkpoints of the plain ``ModelCheckpoint`` resume too. Arguments: those of
    ``ModelCheckpoint`` (``conf/callbacks/model_checkpoint.yaml``).
    """

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
        """Write ``filepath``; when it is ``last.ckpt`` and a top-k checkpoint was written at this
        very step, hard-link that file instead of writing the same weights a second time (half
        the disk and time of an improving epoch; the next epoch's atomic save of ``last.ckpt``
        replaces the link, not the top-k file). File systems without hard links get the copy."""
        same_step = (
            self._last_global_step_saved == trainer.global_step
            and self._last_checkpoint_saved in self.best_k_models
            and os.path.basename(filepath).startswith(self.CHECKPOINT_NAME_LAST)
        )
        if not (same_step and self._hard_link(trainer, self._last_checkpoint_saved, filepath)):
            super()._save_checkpoint(trainer, filepath)

    @staticmethod
    def _hard_link(trainer: L.Trainer, source: str, target: str) -> bool:
        """Atomically make ``target`` a hard link of ``source`` (rank 0; the others wait).

        Returns:
          bool: False when the file system refused the link (nothing changed then).
        """
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
        """Warn when the checkpoint holds the bookkeeping of a differently configured
        ``ModelCheckpoint`` (another ``monitor``, ``mode`` or frequency): it cannot continue."""
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
        if old_dir is None or self.dirpath is None or Path(old_dir) == Path(self.dirpath):
            super().load_state_dict({**state_dict, "dirpath": self.dirpath})
            return
        moved = {}
        for old_path, score in (state_dict.get("best_k_models") or {}).items():
            new_path = self._adopt(old_path)
            if new_path is not None:
                moved[old_path] = (new_path, score)
        self.best_k_models = {new: score for new, score in moved.values()}

        def carried(key: str) -> str:
            old = state_dict.get(key) or ""
            return moved[old][0] if old in moved else ""

        self.best_model_path = carried("best_model_path")
        self.kth_best_model_path = carried("kth_best_model_path")
        self.best_model_score = state_dict.get("best_model_score") if self.best_model_path else None
        self.kth_value = state_dict.get("kth_value", self.kth_value)
        self.current_score = state_dict.get("current_score")
        last = state_dict.get("last_model_path") or ""
        self.last_model_path = os.path.join(self.dirpath, os.path.basename(last)) if last else ""
        log.info(
            "Best-checkpoint bookkeeping continued from %s: best %s (score %s)",
            old_dir,
            self.best_model_path or "none",
            None if self.best_model_score is None else float(self.best_model_score),
        )

    def _adopt(self, old_path: str) -> str | None:
        """Hard-link (or copy) one stored top-k checkpoint into this run's folder.

        Returns:
          str | None: its path here, or None when the stored file no longer exists.
        """
        source = Path(old_path)
        if not source.is_file():
            log.warning("Stored top-k checkpoint %s no longer exists: it is forgotten", source)
            return None
        target = Path(self.dirpath) / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            try:
                os.link(source, target)
            except OSError:
                shutil.copy2(source, target)
        return str(target)


class ResumeState(L.Callback):
    """Stores what an exact resume needs beyond Lightning's own state, and restores it.

    Every checkpoint gets the task name (``irsam_task_name``, read by ``ckpt_path=auto`` to
    resume only runs of the same experiment) and the random-number states of Python, NumPy and
    torch (CPU) at the time of the save (``irsam_rng``). After a resume they are restored at the
    start of the first resumed epoch, so shuffling, dataloader-worker seeds and the augmentation
    (reseeded from the torch RNG at every epoch start, ``IRSTDDataModule.reseed_augmentation``)
    continue as in an uninterrupted run.

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
        """Set the Python, NumPy and torch generators to the states saved with the checkpoint."""
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


def _as_tuples(value: Any) -> Any:
    """Nested lists back to tuples (``random.setstate`` wants the tuples it gave)."""
    return tuple(_as_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


class SamplePredictionLogger(L.Callback):
    """Log image | ground truth | prediction panels of a few validation images.

    A panel is made at the first validation epoch of the run, every ``every_n_epochs`` epochs
    and at the last epoch (``trainer.max_epochs``), so every run with validation has at least
    one, however short. Panels go to TensorBoard / wandb loggers when present, and always to
    ``<run>/samples/epoch_<E>.png`` (rank 0 only). The prediction column is the overlay of
    :func:`irsam.visualize.overlay` (targets coloured by the metrics' matching, with a legend).

    Arguments:
      every_n_epochs (int): logging interval in epochs (at least 1).
      num_samples (int): number of validation images per panel.
    """

    def __init__(self, every_n_epochs: int = 5, num_samples: int = 4) -> None:
        if int(every_n_epochs) < 1:
            raise ValueError(
                f"callbacks.sample_predictions.every_n_epochs={every_n_epochs} must be >= 1."
            )
        self.every_n_epochs = int(every_n_epochs)
        self.num_samples = num_samples
        self._rows: list[np.ndarray] = []
        self.panels = 0

    def _active(self, trainer: L.Trainer) -> bool:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return False
        epoch = trainer.current_epoch + 1
        last = trainer.max_epochs is not None and trainer.max_epochs > 0
        return (
            self.panels == 0
            or epoch % self.every_n_epochs == 0
            or (last and epoch >= trainer.max_epochs)
        )

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Start a new panel."""
        self._rows = []

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: dict[str, Any],
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Collect rows from the first validation batches."""
        if not self._active(trainer) or len(self._rows) >= self.num_samples:
            return
        with torch.inference_mode():
            logits = pl_module(batch["image"])["mask_logits"]
        for k in range(min(batch["image"].shape[0], self.num_samples - len(self._rows))):
            image = batch["image"][k].permute(1, 2, 0).float().cpu().numpy()
            gt = batch["mask"][k, 0].cpu().numpy() > 0.5
            pred = logits[k, 0].float().cpu().numpy() > 0
            self._rows.append(
                panel([to_uint8_rgb(image), to_uint8_rgb(gt * 255.0), overlay(image, pred, gt)])
            )

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Write the panel to disk and to image-capable loggers."""
        if not self._active(trainer) or not self._rows:
            return
        width = max(row.shape[1] for row in self._rows)
        grid = np.concatenate(
            [np.pad(row, ((0, 0), (0, width - row.shape[1]), (0, 0))) for row in self._rows],
            axis=0,
        )
        write_png(
            Path(trainer.default_root_dir) / "samples" / f"epoch_{trainer.current_epoch:03d}.png",
            grid,
        )
        self.panels += 1
        for logger in trainer.loggers:
            if hasattr(logger, "log_image"):  # wandb
                logger.log_image(key="val/samples", images=[grid], step=trainer.global_step)
            elif hasattr(getattr(logger, "experiment", None), "add_image"):  # TensorBoard
                logger.experiment.add_image(
                    "val/samples", grid, trainer.global_step, dataformats="HWC"
                )


class PredictionWriter(L.Callback):
    """Writes masks, overlays, optional probability maps and ``targets.csv`` of a test or
    predict loop, at each image's native resolution, through :mod:`irsam.outputs`.

    Masks are ``logit > threshold`` with the module's metric threshold (``metrics.threshold``), the
    rule the metrics score. Under DDP every rank writes its own images and rank 0 gathers the
    target rows into one ``targets.csv``. Batches from a frame stream (with ``frame_index``) give
    each target a track id (:func:`irsam.tracking.update_tracks`) and can be written as an overlay
    video; streams are read in order by one process.

    The output folder is checked for writing at ``setup`` (before any image is segmented). With
    a ``source`` (a frame stream), the frames it skipped as unreadable (``on_error=skip``) are
    listed in ``skipped.txt`` (``file<TAB>reason`` per line) and in :attr:`skipped`, and a
    warning names them; ``targets.csv`` is written as usual.

    Arguments:
      output_dir (str): folder receiving ``masks/``, ``overlays/``, ``probs/`` and ``targets.csv``.
      overlays (bool): write colour overlays (targets coloured by the metrics' matching, with a
        legend: with ground truth green hit, yellow missed, red false alarm; without, cyan).
      probabilities (bool): write float32 probability maps as TIFF.
      track_radius (float): frame-to-frame association radius in pixels (frame streams).
      track_max_gap (int): frames a track may go undetected before it ends.
      video (str | None): overlay video file for frame streams (None = no video).
      video_fps (float): frame rate of that video.
      source (FrameStream | None): the stream being predicted, asked for its skipped frames
        (:meth:`irsam.data.streams.FrameStream.missing`) at the end.
    """

    def __init__(
        self,
        output_dir: str,
        overlays: bool = True,
        probabilities: bool = False,
        track_radius: float = 5.0,
        track_max_gap: int = 2,
        video: str | None = None,
        video_fps: float = 25.0,
        source: Any | None = None,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.source = source
        self.skipped: dict[str, str] = {}
        self.overlays = overlays or video is not None
        self.probabilities = probabilities
        self.track_radius = track_radius
        self.track_max_gap = track_max_gap
        self.video_path = video
        self.video_fps = video_fps
        self._start()

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Check that the output folder can be written, before any image is segmented."""
        ensure_writable_dir(self.output_dir, "prediction output folder")

    def _start(self, *_: Any) -> None:
        self.rows: list[tuple[Any, ...]] = []
        self.written: set[str] = set()
        self.images = 0
        self.tracked = False
        self.tracks = TrackerState()
        self.video: OverlayVideoWriter | None = None

    def _write(self, pl_module: L.LightningModule, outputs: Any, batch: dict[str, Any]) -> None:
        """Write one batch (``outputs["native_logits"]``: 1×1×H×W logits per image)."""
        for k, logit in enumerate(outputs["native_logits"]):
            height, width = logit.shape[-2:]
            name = batch["name"][k]
            logit_map = logit[0, 0].float().cpu().numpy()
            pred = logit_map > pl_module.threshold
            prob = 1.0 / (1.0 + np.exp(-logit_map))
            h, w = (int(v) for v in batch["valid_size"][k])
            image = (
                torch.nn.functional.interpolate(
                    batch["image"][k : k + 1, :, :h, :w].float(),
                    size=(height, width),
                    mode="bilinear",
                    align_corners=False,
                )[0]
                .permute(1, 2, 0)
                .cpu()
                .numpy()
            )
            gt = None
            if "mask_native" in batch:
                gt = batch["mask_native"][k, 0, :height, :width].cpu().numpy() > 0.5
            picture = write_prediction(
                self.output_dir,
                name,
                image,
                pred,
                gt=gt,
                prob=prob if self.probabilities else None,
                overlays=self.overlays,
            )
            rows = target_rows(name, pred, prob)
            if "frame_index" in batch:
                frame = int(batch["frame_index"][k])
                centroids = np.array([[row[2], row[3]] for row in rows]).reshape(-1, 2)
                self.tracks, ids = update_tracks(
                    self.tracks,
                    frame,
                    centroids,
                    radius=self.track_radius,
                    max_gap=self.track_max_gap,
                )
                rows = [(*row, frame, track) for row, track in zip(rows, ids, strict=True)]
                self.tracked = True
                if self.video_path is not None and picture is not None:
                    if self.video is None:
                        self.video = OverlayVideoWriter(self.video_path, fps=self.video_fps)
                    self.video.write(draw_track_ids(picture, centroids, ids))
            self.rows.extend(rows)
            self.written.add(name)
            self.images += 1

    def _finish(self, trainer: L.Trainer, *_: Any) -> None:
        """Gather the target rows of every rank and write ``targets.csv`` on rank 0."""
        if self.video is not None:
            self.video.close()
        rows = self.rows
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            gathered: list[Any] = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(gathered, rows)
            rows = sorted((row for part in gathered for row in part), key=lambda r: (r[0], r[1]))
        if trainer.is_global_zero:
            columns = TARGET_COLUMNS + TRACK_COLUMNS if self.tracked else TARGET_COLUMNS
            write_targets_csv(self.output_dir / "targets.csv", rows, columns)
            self._report_skipped()

    def _report_skipped(self) -> None:
        """Write ``skipped.txt`` and warn when the source skipped unreadable frames."""
        self.skipped = {} if self.source is None else self.source.missing(self.written)
        if not self.skipped:
            return
        text = "".join(f"{file}\t{reason}\n" for file, reason in self.skipped.items())
        atomic_write_bytes(self.output_dir / "skipped.txt", text.encode("utf-8"), what="report")
        log.warning(
            "%d unreadable frame(s) skipped (on_error=skip), listed in %s:\n%s",
            len(self.skipped),
            self.output_dir / "skipped.txt",
            "\n".join(f"    {file}: {reason}" for file, reason in self.skipped.items()),
        )

    on_test_epoch_start = _start
    on_predict_epoch_start = _start
    on_test_epoch_end = _finish
    on_predict_epoch_end = _finish

    def on_test_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: dict[str, Any],
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Write the images of one test (or prediction) batch."""
        self._write(pl_module, outputs, batch)

    on_predict_batch_end = on_test_batch_end
