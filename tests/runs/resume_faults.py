# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Test-only callbacks that record a run and kill it with SIGKILL at chosen moments.

``train.py`` builds them from overrides such as
``+callbacks.record._target_=resume_faults.EpochRecorder +callbacks.record.path=<file>``, with
``tests/runs/`` on ``PYTHONPATH`` (``test_resume.py`` does that).
"""

from __future__ import annotations

import io
import json
import os
import signal
from pathlib import Path
from typing import Any

import lightning as L
import torch


def _kill_now() -> None:
    """SIGKILL this process: no Python cleanup, no ``finally`` blocks, as a power cut would."""
    os.kill(os.getpid(), signal.SIGKILL)


class EpochRecorder(L.Callback):
    """After every validated training epoch, append one JSON line with the epoch's validation
    IoU, the logged ``val/IoU_best`` and the checkpoint callback's best path and score;
    optionally SIGKILL the process right after epoch ``kill_after_epoch`` (its checkpoints are
    already written: Lightning saves them at the end of validation, before this hook).

    Arguments:
      path (str): the JSON-lines file to append to.
      kill_after_epoch (int | None): the epoch after which to kill the run (None = never).
    """

    def __init__(self, path: str, kill_after_epoch: int | None = None) -> None:
        self.path = Path(path)
        self.kill_after_epoch = kill_after_epoch

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Record the epoch; kill the process when asked. A resume replays the end of the
        epoch it was saved in (without validation): that replay is not recorded."""
        metrics = trainer.callback_metrics
        if "val/IoU" not in metrics:
            return
        checkpoint = trainer.checkpoint_callback
        score = checkpoint.best_model_score
        row = {
            "epoch": trainer.current_epoch,
            "iou": float(metrics["val/IoU"]),
            "iou_best": float(metrics["val/IoU_best"]),
            "best_path": checkpoint.best_model_path,
            "best_score": None if score is None else float(score),
        }
        with open(self.path, "a") as handle:
            handle.write(json.dumps(row) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        if self.kill_after_epoch is not None and trainer.current_epoch == self.kill_after_epoch:
            _kill_now()


class KillDuringSave(L.Callback):
    """SIGKILL the process in the middle of writing the first checkpoint of epoch ``epoch``.

    When Lightning assembles that checkpoint, ``torch.save`` is replaced by a version that
    writes the first half of the serialised file to its destination (the hidden temporary file
    of :class:`irsam.resume.AtomicCheckpointIO`), flushes it to disk and kills the process.

    Arguments:
      epoch (int): the epoch whose first checkpoint save is interrupted.
    """

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Arm the interrupted ``torch.save`` for the save that follows this hook."""
        if trainer.current_epoch != self.epoch:
            return
        real_save = torch.save

        def half_save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
            buffer = io.BytesIO()
            real_save(obj, buffer, *args, **kwargs)
            data = buffer.getvalue()
            with open(f, "wb") as handle:
                handle.write(data[: len(data) // 2])
                handle.flush()
                os.fsync(handle.fileno())
            _kill_now()

        torch.save = half_save
