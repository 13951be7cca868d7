# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""The edge target of IRSAM's granularity-aware decoder: Canny on the binarised mask."""

from __future__ import annotations

import cv2
import numpy as np

CANNY_LOW = 100
"""Lower hysteresis threshold of ``cv2.Canny`` (IRSAM's value)."""
CANNY_HIGH = 200
"""Upper hysteresis threshold of ``cv2.Canny`` (IRSAM's value)."""


def edge_target(mask: np.ndarray) -> np.ndarray:
    """Canny edge map of a binary mask, computed as IRSAM does on a 0/255 uint8 image.

    The mask is binarised to 0/255 first whatever its storage (a 0/1 mask fed to Canny
    directly gives no edges).

    Arguments:
      mask (np.ndarray): H×W, values {0, 1} (any dtype; > 0 is target).
    Returns:
      np.ndarray: H×W float32 edge map with values {0, 1}.
    """
    binary = np.where(mask > 0, 255, 0).astype(np.uint8)
    return (cv2.Canny(binary, CANNY_LOW, CANNY_HIGH) > 0).astype(np.float32)
