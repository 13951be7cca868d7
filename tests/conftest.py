# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Shared pytest fixtures: the project root and the real datasets in ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("IRSAM_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))


def shared_dataset(name: str) -> Path:
    """Path of a real dataset under ``../shared/data``; skips the calling test when it is absent.

    Arguments:
      name (str): folder name, e.g. ``"NUAA-SIRST"`` or ``"NUDT-SIRST"``.
    Returns:
      Path: the dataset root.
    """
    root = SHARED_DATA / name
    if not root.is_dir():
        pytest.skip(f"real dataset {root} is absent (set IRSAM_SHARED_DATA to its parent folder)")
    return root


@pytest.fixture(scope="session")
def project_root() -> Path:
    """The repository root (the folder holding ``.project-root``)."""
    return PROJECT_ROOT
