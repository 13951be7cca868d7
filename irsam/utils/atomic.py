# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Atomic file writes: write to a temporary file in the same folder, fsync, then rename.

A run killed at any moment leaves either the old file or the complete new one, never a
half-written file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    Arguments:
      path (str | PathLike): the final destination. Its parent folder is created if missing.
    Returns:
      Iterator[Path]: the temporary path to write to. On an exception it is deleted and the
      destination is left untouched.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically.

    Arguments:
      path (str | PathLike): destination file.
      data (bytes): the complete file content.
    """
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_save_torch(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to ``path`` atomically (temporary file, fsync, rename).

    Arguments:
      obj (Any): plain Python containers and tensors (must load with ``weights_only=True``).
      path (str | PathLike): destination file.
    """
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
