# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Atomic file writes: write to a temporary file in the same folder, fsync, rename, then fsync
the folder (POSIX), so the rename itself survives a power cut.

A run killed at any moment leaves either the old file or the complete new one, never a
half-written file. Files get the permissions of an ordinary ``open``: ``0o666`` less the umask
(``-rw-r--r--`` with the usual umask 022), so colleagues on a shared server can read checkpoints
and results. File-system failures (disk full, a read-only or permission-denied folder, a file
standing where a folder should be) are raised as one :class:`OutputWriteError` that names the
folder, gives the space needed and free for a full disk, and says what to do; the temporary file
is removed first.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from irsam.utils.errors import UserError

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
"""``errno`` values that mean the file system has no room (full disk, quota, file too big)."""
UNWRITABLE_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
"""``errno`` values that mean the folder cannot be written (permissions, read-only mount)."""
LOW_SPACE_BYTES = 16 * 2**20
"""Free space under which a write failure without an ``errno`` (``torch.save`` raises a bare
``RuntimeError`` on a full disk) is reported as a full disk."""


class OutputWriteError(UserError, OSError):
    """An output file or folder cannot be written: disk full, read-only or no permission.

    ``errno`` is the one of the underlying error; the message names the folder and the fix.
    """

    def __str__(self) -> str:
        """The message alone (without OSError's ``[Errno N]`` prefix)."""
        return str(self.strerror)


def free_bytes(folder: str | os.PathLike) -> int | None:
    """Free bytes on the file system of ``folder`` (or of its nearest existing parent).

    Arguments:
      folder (str | PathLike): a folder, existing or not.
    Returns:
      int | None: the bytes available; None when the file system cannot be queried.
    """
    probe = Path(folder)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return int(shutil.disk_usage(probe).free)
    except OSError:
        return None


def format_size(value: int | None) -> str:
    """Bytes in a readable unit with the exact count, e.g. ``"1.5 MB (1572864 bytes)"``.

    Arguments:
      value (int | None): a byte count; None gives ``"unknown"``.
    Returns:
      str: the text.
    """
    if value is None:
        return "unknown"
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if value >= scale:
            return f"{value / scale:.1f} {unit} ({value} bytes)"
    return f"{value} bytes"


def translate_os_error(
    err: BaseException,
    folder: str | os.PathLike,
    what: str = "output",
    needed: int | None = None,
    name: str | None = None,
) -> OutputWriteError | None:
    """The clear error for a failed write into ``folder``, or None when ``err`` is another kind.

    Arguments:
      err (BaseException): the error raised by the write (an ``OSError``, or the bare
        ``RuntimeError`` of ``torch.save``, read as a full disk when little space is left).
      folder (str | PathLike): the folder being written.
      what (str): what the folder is for, e.g. ``"checkpoint folder"``, named in the message.
      needed (int | None): bytes being written, when known.
      name (str | None): the file being written, when there is one.
    Returns:
      OutputWriteError | None: the error to raise (``from err``), or None to re-raise ``err``.
    """
    folder = Path(folder)
    target = f"{name} into the {what} {folder}" if name else f"the {what} {folder}"
    code = getattr(err, "errno", None)
    free = free_bytes(folder)
    if code is None and isinstance(err, RuntimeError) and free is not None:
        code = errno.ENOSPC if free < LOW_SPACE_BYTES else None
    if code in DISK_FULL_ERRNOS:
        return OutputWriteError(
            code,
            f"cannot write {target}: the disk is full (needed {format_size(needed)}, free "
            f"{format_size(free)}). Free space on that disk or write elsewhere (e.g. "
            "output=<folder> or paths.log_dir=<folder> on a disk with room); nothing partial was "
            "left behind.",
        )
    blocker = blocking_file(folder) if code in (errno.EEXIST, errno.ENOTDIR) else None
    if blocker is not None:
        return OutputWriteError(
            code,
            f"cannot write {target}: {blocker} is a file, not a folder. Move or delete that "
            "file, or choose another folder (e.g. output=<folder> or paths.log_dir=<folder>).",
        )
    if code in UNWRITABLE_ERRNOS:
        if code == errno.EROFS:
            reason, fix = "it is on a read-only file system", "remount that disk read-write"
        else:
            reason, fix = "permission denied", f"fix its permissions (chmod u+w {folder})"
        return OutputWriteError(
            code,
            f"cannot write {target}: {reason}. Choose a folder you can write (e.g. "
            f"output=<folder> or paths.log_dir=<folder>) or {fix}.",
        )
    return None


def blocking_file(folder: str | os.PathLike) -> Path | None:
    """The file (anything but a folder) standing at ``folder`` or at one of its parents, which
    keeps ``folder`` from being created.

    Arguments:
      folder (str | PathLike): a folder to create or write.
    Returns:
      Path | None: the blocking path; None when ``folder`` and its existing parents are folders.
    """
    for path in (Path(folder), *Path(folder).parents):
        if path.exists() or path.is_symlink():
            return None if path.is_dir() else path
    return None


@contextlib.contextmanager
def translated_errors(
    folder: str | os.PathLike,
    what: str = "output",
    needed: int | None = None,
    name: str | None = None,
) -> Iterator[None]:
    """Re-raise disk-full and unwritable-folder errors of the block as :class:`OutputWriteError`.

    Arguments:
      folder (str | PathLike): the folder being written.
      what (str): what the folder is for (named in the message).
      needed (int | None): bytes being written, when known.
      name (str | None): the file being written, when there is one.
    """
    try:
        yield
    except OutputWriteError:
        raise
    except (OSError, RuntimeError) as err:
        clear = translate_os_error(err, folder, what, needed, name)
        if clear is None:
            raise
        raise clear from err


def ensure_writable_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Create ``path`` if needed and check, by creating and removing a file, that it is writable.

    Call it where a task starts writing, so an unwritable output fails in seconds with one
    message rather than after the work is done.

    Arguments:
      path (str | PathLike): the folder.
      what (str): what the folder is for (e.g. ``"prediction output folder (output=)"``).
    Returns:
      Path: the folder.
    Raises:
      OutputWriteError: it cannot be created or written (read-only, permissions, disk full, a
        file standing at its place).
    """
    folder = Path(path)
    with translated_errors(folder, what):
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".irsam-write-check.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    return folder


def _umask() -> int:
    """The process umask (Linux: read from /proc; elsewhere set and restored at once)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename into it) to disk, where the OS and file system allow."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as err:
        if err.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike, what: str = "output", needed: int | None = None
) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success fsync it, give it the umask's
    permissions, rename it onto ``path`` and fsync the folder.

    Arguments:
      path (str | PathLike): the final destination. Its parent folder is created if missing.
      what (str): what the file is (named in disk-full / unwritable messages).
      needed (int | None): bytes to be written, when known (for the disk-full message).
    Returns:
      Iterator[Path]: the temporary path to write to. On an exception it is deleted and the
      destination is left untouched; disk-full and unwritable-folder errors are raised as
      :class:`OutputWriteError`.
    """
    final = Path(path)
    tmp: Path | None = None
    with translated_errors(final.parent, f"{what} folder", needed, final.name):
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(
                prefix=f".{final.name}.", suffix=".tmp", dir=final.parent
            )
            os.close(fd)
            tmp = Path(tmp_name)
            yield tmp
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, final)
            _fsync_folder(final.parent)
        finally:
            if tmp is not None and tmp.exists():
                tmp.unlink()


def atomic_write_bytes(path: str | os.PathLike, data: bytes, what: str = "output") -> None:
    """Write ``data`` to ``path`` atomically.

    Arguments:
      path (str | PathLike): destination file.
      data (bytes): the complete file content.
      what (str): what the file is (named in disk-full / unwritable messages).
    Raises:
      OutputWriteError: the disk is full or the folder cannot be written.
    """
    with atomic_path(path, what, needed=len(data)) as tmp, open(tmp, "wb") as handle:
        handle.write(data)


def _tensor_bytes(obj: Any) -> int:
    """Bytes of tensor data in a nested container (the bulk of a checkpoint's size)."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(v) for v in obj)
    return 0


def atomic_save_torch(obj: Any, path: str | os.PathLike, what: str = "checkpoint") -> None:
    """``torch.save`` to ``path`` atomically (temporary file, fsync, rename).

    Arguments:
      obj (Any): plain Python containers and tensors (must load with ``weights_only=True``).
      path (str | PathLike): destination file.
      what (str): what the file is (named in disk-full / unwritable messages).
    Raises:
      OutputWriteError: the disk is full (needed: the tensor bytes) or the folder cannot be
        written.
    """
    with atomic_path(path, what, needed=_tensor_bytes(obj)) as tmp:
        torch.save(obj, tmp)
