# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Small shared helpers: rank-aware logging, atomic file writes, parameter counts."""

from irsam.utils.atomic import atomic_path, atomic_save_torch, atomic_write_bytes
from irsam.utils.logging import get_logger

__all__ = ["atomic_path", "atomic_save_torch", "atomic_write_bytes", "get_logger"]
