# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Small ground-floor helpers (no other irsam module imported): rank-aware logging, atomic file
writes, the errors a user can fix."""

from irsam.utils.atomic import (
    OutputWriteError,
    atomic_path,
    atomic_save_torch,
    atomic_write_bytes,
    ensure_writable_dir,
)
from irsam.utils.errors import ConfigError, MissingFileError, OutputExistsError, UserError
from irsam.utils.logging import get_logger

__all__ = [
    "ConfigError",
    "MissingFileError",
    "OutputExistsError",
    "OutputWriteError",
    "UserError",
    "atomic_path",
    "atomic_save_torch",
    "atomic_write_bytes",
    "ensure_writable_dir",
    "get_logger",
]
