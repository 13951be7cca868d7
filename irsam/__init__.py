# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""irsam: fine-tuning IRSAM for infrared small target detection, and one-shot IR sequence
segmentation.

The public names below are imported on first use (PEP 562), so ``import irsam`` stays light: it
loads neither Lightning, Hydra, OpenCV nor PyTorch until a name is used (docs/python-api.md).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "Predictor": "irsam.predictor",
    "Prediction": "irsam.predictor",
    "IRSAMLitModule": "irsam.lit_module",
    "IRSTDMetrics": "irsam.metrics",
    "model_registry": "irsam.models.build",
}
"""Public name → the module that defines it."""

__all__ = [
    "IRSAMLitModule",
    "IRSTDMetrics",
    "Prediction",
    "Predictor",
    "__version__",
    "model_registry",
]


def __getattr__(name: str) -> Any:
    """Import a public name of :data:`_LAZY` on first access and keep it."""
    if name not in _LAZY:
        raise AttributeError(f"module 'irsam' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's names, the lazily imported ones included."""
    return sorted({*globals(), *_LAZY})
