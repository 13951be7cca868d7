# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Datasets, layouts, transforms, the synthetic generator and the LightningDataModule.

Names are imported lazily, so ``import irsam.data.io`` stays light (no Lightning, no
albumentations).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DatasetError": "irsam.data.errors",
    "IRSTDDataModule": "irsam.data.datamodule",
    "IRSTDDataset": "irsam.data.dataset",
    "IRSTDDatasetBase": "irsam.data.dataset",
    "LAYOUTS": "irsam.data.layouts",
    "Sample": "irsam.data.layouts",
    "SyntheticIRSTDDataset": "irsam.data.synthetic",
    "build_train_transform": "irsam.data.transforms",
    "collate_irstd": "irsam.data.collate",
    "detect_layout": "irsam.data.layouts",
    "edge_target": "irsam.data.edges",
    "render_synthetic_sample": "irsam.data.synthetic",
    "resolve_splits": "irsam.data.layouts",
    "write_synthetic_dataset": "irsam.data.synthetic",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import an exported name on first use.

    Arguments:
      name (str): one of ``__all__``.
    Returns:
      Any: the object.
    """
    if name not in _EXPORTS:
        raise AttributeError(f"module 'irsam.data' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
