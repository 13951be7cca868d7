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


def test_a_file_where_the_output_folder_goes(tmp_path: Path) -> None:
    """A file at the output folder, or at one of its parents: one message naming that file (not
    a raw FileExistsError / NotADirectoryError), from the up-front check and from a write."""
    blocker = tmp_path / "out"
    blocker.write_text("not a folder")
    for folder in (blocker, blocker / "predictions"):
        with pytest.raises(OutputWriteError) as info:
            ensure_writable_dir(folder, "prediction output folder (output=)")
        message = str(info.value)
        assert f"prediction output folder (output=) {folder}" in message
        assert f"{blocker} is a file, not a folder" in message and "output=<folder>" in message
    with pytest.raises(OutputWriteError, match=f"{blocker} is a file, not a folder"):
        atomic_write_bytes(blocker / "results.json", b"{}")
    assert blocker.read_text() == "not a folder"


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_written_files_follow_the_umask(tmp_path: Path, umask: int) -> None:
    """Results and checkpoints get 0o666 less the umask (0o644 by default), as ``open`` gives,
    so colleagues on a shared server can read them (the temporary file alone is 0o600)."""
    old = os.umask(umask)
    try:
        atomic_write_bytes(tmp_path / "results.json", b"{}")
        atomic.atomic_save_torch({"w": torch.zeros(2)}, tmp_path / "last.ckpt")
    finally:
        os.umask(old)
    for name in ("results.json", "last.ckpt"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


@pytest.mark.skipif(os.name != "posix", reason="folder fsync is POSIX")
def test_the_folder_is_fsynced_after_the_rename(tmp_path: Path, monkeypatch) -> None:
    """The rename reaches the disk: after the file, its folder is fsynced."""
    import stat

    synced: list[str] = []
    real_fsync = os.fsync

    def recording(fd: int) -> None:
        synced.append("folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", recording)
    atomic_write_bytes(tmp_path / "a.json", b"{}")
    assert synced == ["file", "folder"]


def test_training_warns_when_the_disk_cannot_hold_its_checkpoints(
    tmp_path: Path, monkeypatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Before training: top-3 + last.ckpt + one being saved, each weights + AdamW moments, on a
    disk with less room: a warning with the numbers and the fixes; enough room: no warning."""
    import logging
    from types import SimpleNamespace

    from lightning.pytorch.callbacks import ModelCheckpoint

    from irsam.tasks.train import check_checkpoint_space

    model = torch.nn.Linear(100, 10)  # 1010 float32 parameters: 4040 bytes of weights
    model.bias.requires_grad_(False)  # moments for the 1000 trainable weights only: 8000 bytes
    callback = ModelCheckpoint(
        dirpath=tmp_path / "checkpoints", monitor="val/IoU", save_top_k=3, save_last=True
    )
    trainer = SimpleNamespace(
        checkpoint_callbacks=[callback], max_epochs=10, default_root_dir=str(tmp_path)
    )
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda _: Usage(10**9, 10**9, 50_000))
    with caplog.at_level(logging.WARNING):
        message = check_checkpoint_space(model, trainer)
    assert message is not None and message in caplog.text
    assert f"checkpoint folder {tmp_path / 'checkpoints'}" in message
    assert "50000 bytes) free" in message and "up to 4 checkpoints" in message
    assert "about 11.8 kB (12040 bytes) each" in message and "60200 bytes" in message
    assert "callbacks.model_checkpoint.save_top_k" in message and "paths.log_dir=" in message
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda _: Usage(10**9, 10**9, 60_200))
    assert check_checkpoint_space(model, trainer) is None
