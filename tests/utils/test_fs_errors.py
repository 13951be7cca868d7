# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""File-system errors (irsam.utils.atomic): disk full and unwritable folders give one message
naming the folder (and, for a full disk, the bytes needed and free), and leave nothing partial."""

from __future__ import annotations

import errno
import os
import tempfile
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
import torch
from typing_extensions import Self

from irsam.metrics.report import write_curves
from irsam.outputs import write_prediction, write_targets_csv
from irsam.resume import AtomicCheckpointIO
from irsam.utils import OutputWriteError, atomic, atomic_write_bytes, ensure_writable_dir

Usage = namedtuple("Usage", "total used free")


class _FullDiskFile:
    """A file object whose writes store the first half of the data, then fail with ENOSPC."""

    def __init__(self, path: Path, mode: str) -> None:
        self.handle = open(path, mode)  # noqa: SIM115 (closed in __exit__)

    def write(self, data: bytes) -> int:
        self.handle.write(data[: len(data) // 2])
        self.handle.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.handle.close()


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every atomic write runs out of space half-way; the disk reports 1234 bytes free."""
    monkeypatch.setattr(atomic, "open", _FullDiskFile, raising=False)
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda _: Usage(10**9, 10**9, 1234))


def _only_file_names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def test_disk_full_message_and_nothing_partial(tmp_path: Path, full_disk: None) -> None:
    """atomic_write_bytes: the folder, bytes needed and free, the fix; no temporary file left."""
    with pytest.raises(OutputWriteError) as info:
        atomic_write_bytes(tmp_path / "out" / "results.json", b"x" * 5000)
    message = str(info.value)
    assert info.value.errno == errno.ENOSPC
    assert str(tmp_path / "out") in message and "results.json" in message
    assert "disk is full" in message and "5000 bytes" in message and "1234 bytes" in message
    assert "write elsewhere" in message
    assert _only_file_names(tmp_path) == []


def test_disk_full_for_masks_overlays_csv_and_curves(tmp_path: Path, full_disk: None) -> None:
    """Masks/overlays (irsam.outputs), targets.csv and the report curves go through the same
    atomic writer, so each gives the disk-full message and leaves no partial file."""
    pred = np.zeros((16, 16), bool)
    pred[4:7, 4:7] = True
    with pytest.raises(OutputWriteError, match=r"masks: the disk is full"):
        write_prediction(tmp_path / "pred", "a", np.zeros((16, 16)), pred)
    with pytest.raises(OutputWriteError, match="targets.csv into the output folder"):
        write_targets_csv(tmp_path / "pred" / "targets.csv", [("a", 1)])
    curves = {key: [0.5, 0.4] for key in ("recall", "precision", "f1", "fpr", "tpr")}
    curves.update({f"mean_{k}": [0.5, 0.4] for k in ("recall", "precision", "fpr", "tpr")})
    curves["threshold"] = [0.0, 0.5]
    with pytest.raises(OutputWriteError, match="pr_curve.csv into the report folder"):
        write_curves(curves, tmp_path / "report")
    assert _only_file_names(tmp_path) == []


def test_disk_full_while_saving_a_checkpoint(tmp_path: Path, monkeypatch) -> None:
    """torch.save's bare RuntimeError on a full disk becomes the disk-full message, with the
    checkpoint's tensor bytes as the space needed; the temporary file is removed."""

    def failing_save(obj: object, path: Path) -> None:
        Path(path).write_bytes(b"PK partial")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 12")

    monkeypatch.setattr(torch, "save", failing_save)
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda _: Usage(10**9, 10**9, 4096))
    folder = tmp_path / "checkpoints"
    checkpoint = {"state_dict": {"w": torch.zeros(1000)}, "epoch": 0}
    with pytest.raises(OutputWriteError) as info:
        AtomicCheckpointIO().save_checkpoint(checkpoint, folder / "last.ckpt")
    message = str(info.value)
    assert "last.ckpt into the checkpoint folder" in message and str(folder) in message
    assert "4000 bytes" in message and "4096 bytes" in message
    assert _only_file_names(tmp_path) == []


def test_other_runtime_errors_are_not_called_disk_full(tmp_path: Path, monkeypatch) -> None:
    """With plenty of free space a RuntimeError of torch.save is re-raised unchanged."""

    def failing_save(obj: object, path: Path) -> None:
        raise RuntimeError("cannot pickle this")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(RuntimeError, match="cannot pickle this"):
        atomic.atomic_save_torch({"w": torch.zeros(2)}, tmp_path / "x.ckpt")
    assert _only_file_names(tmp_path) == []


@pytest.mark.parametrize("code", [errno.EACCES, errno.EROFS])
def test_unwritable_folder_simulated(tmp_path: Path, monkeypatch, code: int) -> None:
    """Permission denied / read-only file system (simulated, so it also runs as root): one
    message naming the folder and the fix, from the up-front check and from a write."""
    folder = tmp_path / "outputs"
    real_mkstemp = tempfile.mkstemp

    def refusing(*args: object, dir: str | None = None, **kwargs: object) -> tuple[int, str]:
        if dir is not None and Path(dir).is_relative_to(folder):
            raise OSError(code, os.strerror(code), str(dir))
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(atomic.tempfile, "mkstemp", refusing)
    words = "it is on a read-only file system" if code == errno.EROFS else "permission denied"
    with pytest.raises(OutputWriteError, match=f"prediction output folder {folder}: {words}"):
        ensure_writable_dir(folder, "prediction output folder")
    with pytest.raises(OutputWriteError, match=f"a.png into the output folder {folder}: {words}"):
        atomic_write_bytes(folder / "a.png", b"123")
    assert _only_file_names(tmp_path) == []


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_unwritable_folder_chmod(tmp_path: Path) -> None:
    """A real chmod 0o500 folder: the up-front check and a mask write both say what to do."""
    folder = tmp_path / "readonly"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(OutputWriteError, match="permission denied") as info:
            ensure_writable_dir(folder / "predictions", "prediction output folder")
        assert str(folder / "predictions") in str(info.value) and "chmod u+w" in str(info.value)
        with pytest.raises(OutputWriteError, match="permission denied"):
            write_prediction(folder, "a", np.zeros((8, 8)), np.zeros((8, 8), bool))
    finally:
        folder.chmod(0o700)
    assert _only_file_names(tmp_path) == []
