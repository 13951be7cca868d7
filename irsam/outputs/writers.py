# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Lightning callbacks that write pictures and predictions: validation sample panels, and the
masks, overlays, probability maps and ``targets.csv`` of a test or predict loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from irsam.data.io import write_png
from irsam.outputs.pictures import overlay, panel, to_uint8_rgb
from irsam.outputs.predictions import (
    TARGET_COLUMNS,
    TRACK_COLUMNS,
    binarise_logits,
    target_rows,
    write_prediction,
    write_targets_csv,
)
from irsam.outputs.tracking import (
    OverlayVideoWriter,
    TrackerState,
    draw_track_ids,
    update_tracks,
)
from irsam.utils import atomic_write_bytes, ensure_writable_dir, get_logger

log = get_logger(__name__)


class SamplePredictionLogger(L.Callback):
    """Log image | ground truth | prediction panels of a few validation images, and one
    image | target panel of the first training batch.

    A panel is made at the first validation epoch of the run, every ``every_n_epochs`` epochs
    and at the last epoch (``trainer.max_epochs``), so every run with validation has at least
    one, however short. Panels go to TensorBoard / wandb loggers when present, and always to
    ``<run>/samples/epoch_<E>.png`` (rank 0 only). The prediction column is the overlay of
    :func:`irsam.outputs.pictures.overlay` (targets coloured by the metrics' matching, with a
    legend). The training panel, ``<run>/samples/train_batch.png``, shows the first batch as the
    network receives it, after augmentation: pasted targets (``dataset.augmentation.copy_paste``)
    appear in both columns.

    Arguments:
      every_n_epochs (int): logging interval in epochs (at least 1).
      num_samples (int): number of images per panel.
      train_batch (bool): also write the training panel at the first training step of the run.
    """

    def __init__(
        self, every_n_epochs: int = 5, num_samples: int = 4, train_batch: bool = True
    ) -> None:
        if int(every_n_epochs) < 1:
            raise ValueError(
                f"callbacks.sample_predictions.every_n_epochs={every_n_epochs} must be >= 1."
            )
        self.every_n_epochs = int(every_n_epochs)
        self.num_samples = num_samples
        self.train_batch = train_batch
        self._rows: list[np.ndarray] = []
        self.panels = 0

    def on_train_batch_start(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        batch: dict[str, Any],
        batch_idx: int,
    ) -> None:
        """Write the training panel at the run's first step (rank 0)."""
        if not self.train_batch or trainer.global_step != 0 or batch_idx != 0:
            return
        if not trainer.is_global_zero:
            return
        rows = []
        for k in range(min(batch["image"].shape[0], self.num_samples)):
            image = batch["image"][k].permute(1, 2, 0).float().cpu().numpy()
            target = batch["mask"][k, 0].float().cpu().numpy() * 255.0
            rows.append(panel([to_uint8_rgb(image), to_uint8_rgb(target)]))
        write_png(Path(trainer.default_root_dir) / "samples" / "train_batch.png", _stack(rows))

    def _active(self, trainer: L.Trainer) -> bool:
        """Whether this validation epoch makes a panel (rank 0, first/every n-th/last epoch)."""
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
        grid = _stack(self._rows)
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


def _stack(rows: list[np.ndarray]) -> np.ndarray:
    """Panel rows (H×W×3 uint8, any widths) stacked top to bottom, padded on the right."""
    width = max(row.shape[1] for row in rows)
    return np.concatenate(
        [np.pad(row, ((0, 0), (0, width - row.shape[1]), (0, 0))) for row in rows], axis=0
    )


class PredictionWriter(L.Callback):
    """Writes masks, overlays, optional probability maps and ``targets.csv`` of a test or
    predict loop, at each image's native resolution, through :mod:`irsam.outputs.predictions`.

    Masks are ``logit > threshold`` with the module's metric threshold (``metrics.threshold``), the
    rule the metrics score. Under DDP every rank writes its own images and rank 0 gathers the
    target rows into one ``targets.csv``. Batches from a frame stream (with ``frame_index``) give
    each target a track id (:func:`irsam.outputs.tracking.update_tracks`) and can be written as an
    overlay video; streams are read in order by one process.

    The output folder is checked for writing at ``setup`` (before any image is segmented); a
    second image of one loop with an already written name is refused (it would overwrite the
    first one's files). With a ``source`` (a frame stream), the frames it left out or repaired
    (``on_error=skip``: unreadable, missing from a truncated file, NaN/Inf pixels) are listed in
    ``skipped.txt`` (``frame<TAB>reason`` per line) and in :attr:`skipped`, and a warning names
    them; ``targets.csv`` is written as usual.

    Arguments:
      output_dir (str): folder receiving ``masks/``, ``overlays/``, ``probs/`` and ``targets.csv``.
      overlays (bool): write colour overlays (targets coloured by the metrics' matching, with a
        legend: with ground truth green hit, yellow missed, red false alarm; without, cyan).
      probabilities (bool): write float32 probability maps as TIFF.
      track_radius (float): frame-to-frame association radius in pixels (frame streams).
      track_max_gap (int): frames a track may go undetected before it ends.
      video (str | None): overlay video file for frame streams (None = no video).
      video_fps (float): frame rate of that video.
      source (FrameStream | None): the stream being predicted, asked for its skipped or repaired
        frames (:meth:`irsam.data.streams.FrameStream.missing`) at the end.
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
        """Reset the rows, names, counters, tracks and video of a new test or predict loop."""
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
            if name in self.written:
                raise ValueError(
                    f"two images of this run are named {name!r}: the second would overwrite "
                    f"{self.output_dir / 'masks' / name}.png. Give the inputs unique names."
                )
            logit_map = logit[0, 0].float().cpu().numpy()
            pred, prob = binarise_logits(logit_map, pl_module.threshold)
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
        """Write ``skipped.txt`` and warn when the source left out or repaired frames."""
        self.skipped = {} if self.source is None else self.source.missing(self.written)
        if not self.skipped:
            return
        text = "".join(f"{file}\t{reason}\n" for file, reason in self.skipped.items())
        atomic_write_bytes(self.output_dir / "skipped.txt", text.encode("utf-8"), what="report")
        log.warning(
            "%d frame(s) skipped or repaired (on_error=skip), listed in %s:\n%s",
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
