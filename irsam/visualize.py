# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Overlays and panels for logged samples, evaluation and prediction outputs."""

from __future__ import annotations

import cv2
import numpy as np

TRUE_POSITIVE = (0, 220, 0)
"""RGB colour of predicted pixels that are target (green)."""
FALSE_ALARM = (255, 40, 40)
"""RGB colour of predicted pixels that are background (red)."""
MISSED = (255, 220, 0)
"""RGB colour of target pixels that were not predicted (yellow)."""


def to_uint8_rgb(image: np.ndarray) -> np.ndarray:
    """Convert an image to displayable uint8 RGB.

    Arguments:
      image (np.ndarray): H×W or H×W×3, float in [0, 255] or uint8.
    Returns:
      np.ndarray: H×W×3 uint8.
    """
    array = np.clip(np.asarray(image, dtype=np.float32), 0, 255).astype(np.uint8)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    return np.ascontiguousarray(array)


def overlay(
    image: np.ndarray, pred: np.ndarray, gt: np.ndarray | None = None, alpha: float = 0.55
) -> np.ndarray:
    """Colour a prediction over its image.

    Without ground truth, predicted pixels are red with a contour. With ground truth, predicted
    target pixels are green, false alarms red and missed target pixels yellow, and the
    ground-truth contour is drawn in yellow.

    Arguments:
      image (np.ndarray): H×W×3 (or H×W) image, float 0–255 or uint8.
      pred (np.ndarray): H×W bool prediction.
      gt (np.ndarray | None): H×W bool ground truth, or None.
      alpha (float): opacity of the colouring.
    Returns:
      np.ndarray: H×W×3 uint8 RGB.
    """
    canvas = to_uint8_rgb(image).astype(np.float32)
    pred = np.asarray(pred, dtype=bool)
    layers = (
        [(pred, FALSE_ALARM)]
        if gt is None
        else [(pred & gt, TRUE_POSITIVE), (pred & ~gt, FALSE_ALARM), (~pred & gt, MISSED)]
    )
    for region, colour in layers:
        canvas[region] = (1 - alpha) * canvas[region] + alpha * np.asarray(colour, np.float32)
    result = canvas.astype(np.uint8)
    outline, colour = (pred, FALSE_ALARM) if gt is None else (np.asarray(gt, dtype=bool), MISSED)
    contours, _ = cv2.findContours(
        outline.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
    )
    cv2.drawContours(result, contours, -1, colour, 1)
    return result


def panel(columns: list[np.ndarray], gap: int = 2) -> np.ndarray:
    """Place equally tall RGB images side by side with a white gap.

    Arguments:
      columns (list[np.ndarray]): H×W_i×3 uint8 images.
      gap (int): gap width in pixels.
    Returns:
      np.ndarray: H×(ΣW_i + gaps)×3 uint8.
    """
    height = columns[0].shape[0]
    spacer = np.full((height, gap, 3), 255, np.uint8)
    parts: list[np.ndarray] = []
    for column in columns:
        parts.extend([column, spacer])
    return np.concatenate(parts[:-1], axis=1)
