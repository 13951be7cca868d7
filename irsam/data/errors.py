# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""The one exception raised for bad dataset input (missing root, unpaired files, bad splits)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from irsam.utils.errors import UserError


class DatasetError(UserError, ValueError):
    """A dataset folder, split file or image/mask pair is unusable.

    The message always names the offending file(s) and says how to fix the problem.
    """


def format_paths(paths: Sequence[Path | str], limit: int = 10) -> str:
    """Format a list of paths for an error message, one per line, at most ``limit`` shown.

    Arguments:
      paths (Sequence[Path | str]): the offending files.
      limit (int): how many to list before summarising the rest as a count.
    Returns:
      str: an indented multi-line listing.
    """
    shown = [f"    {p}" for p in list(paths)[:limit]]
    if len(paths) > limit:
        shown.append(f"    ... and {len(paths) - limit} more")
    return "\n".join(shown)
