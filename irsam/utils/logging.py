# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Rank-aware logger: under DDP only global rank 0 emits INFO/DEBUG, every rank emits warnings."""

from __future__ import annotations

import logging
import os


def _global_rank() -> int:
    """Global rank from the environment variables of torchrun, SLURM or Lightning (0 if none)."""
    for key in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        value = os.environ.get(key)
        if value is not None and value.isdigit():
            return int(value)
    return 0


class _RankZeroFilter(logging.Filter):
    """Drops records below WARNING on ranks other than 0."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or _global_rank() == 0


def get_logger(name: str) -> logging.Logger:
    """Return the named logger with the rank-zero filter attached once.

    Arguments:
      name (str): logger name, usually ``__name__``.
    Returns:
      logging.Logger: a standard logger; INFO and DEBUG records are emitted on rank 0 only.
    """
    logger = logging.getLogger(name)
    if not any(isinstance(f, _RankZeroFilter) for f in logger.filters):
        logger.addFilter(_RankZeroFilter())
    return logger
