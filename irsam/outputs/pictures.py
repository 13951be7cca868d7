# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Overlays and panels for logged samples, evaluation and prediction outputs.

Overlays colour whole *targets*, matched exactly as the Pd / Fa metrics match them
(:func:`irsam.metrics.match_components`: 8-connected components, one-to-one greedy matching of
centroids closer than :data:`irsam.metrics.MATCH_DISTANCE` px, docs/metrics.md), so the picture
agrees with the numbers: a target counted as detected is drawn as a hit, whatever the pixel
overlap. A legend strip with the counts is added below the image.
"""

from __future__ import annotations

import cv2
import numpy as np

from irsam.metrics import label_components, match_components

HIT = (0, 220, 0)
"""RGB colour of a detected target: its ground-truth pixels and the predicted component that
detected it (green)."""
FALSE_ALARM = (255, 40, 40)
"""RGB colour of a predicted component that detected no target (red)."""
MISSED = (255, 220, 0)
"""RGB colour of a ground-truth target that no predicted component detected (yellow)."""
DETECTION = (0, 200, 255)
"""RGB colour of predicted components when there is no ground truth (cyan)."""
LEGEND_LINE = 12
"""Height in pixels of one legend line."""
LEGEND_MIN_WIDTH = 132
"""The legend strip (and so the overlay) is at least this wide; a narrower image is padded on the
right with the strip's background."""


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


def target_regions(pred: np.ndarray, gt: np.ndarray | None) -> list[tuple[np.ndarray, tuple]]:
    """The pixels to colour per class, from the metrics' target matching.

    Arguments:
      pred (np.ndarray): H×W bool prediction.
      gt (np.ndarray | None): H×W bool ground truth, or None.
    Returns:
      list[tuple[np.ndarray, tuple]]: ``(H×W bool region, RGB colour)`` pairs: with ground truth
      hits (:data:`HIT`: detected targets and their detecting components), misses
      (:data:`MISSED`) and false alarms (:data:`FALSE_ALARM`); without, every predicted pixel
      (:data:`DETECTION`).
    """
    pred = np.asarray(pred, dtype=bool)
    if gt is None:
        return [(pred, DETECTION)]
    gt = np.asarray(gt, dtype=bool)
    match = match_components(pred, gt)
    pred_labels, _ = label_components(pred)
    gt_labels, _ = label_components(gt)
    hit_gt = np.array([False] + [j >= 0 for j in match.gt_to_pred], dtype=bool)[gt_labels]
    hit_pred = np.array([False] + list(match.pred_matched), dtype=bool)[pred_labels]
    missed = gt & ~hit_gt
    hit = hit_gt | (hit_pred & ~missed)
    false_alarm = pred & ~hit & ~missed
    return [(hit, HIT), (missed, MISSED), (false_alarm, FALSE_ALARM)]


def legend_entries(pred: np.ndarray, gt: np.ndarray | None) -> list[tuple[str, tuple]]:
    """The legend lines of an overlay: label with counts and colour.

    Arguments:
      pred (np.ndarray): H×W bool prediction.
      gt (np.ndarray | None): H×W bool ground truth, or None.
    Returns:
      list[tuple[str, tuple]]: ``(text, RGB colour)`` per line.
    """
    if gt is None:
        _, count = label_components(np.asarray(pred, dtype=bool))
        return [(f"detected: {count} (no ground truth)", DETECTION)]
    match = match_components(np.asarray(pred, dtype=bool), np.asarray(gt, dtype=bool))
    hits = sum(j >= 0 for j in match.gt_to_pred)
    alarms = sum(not m for m in match.pred_matched)
    return [
        (f"hit: {hits} of {len(match.gt)} targets", HIT),
        (f"missed: {len(match.gt) - hits}", MISSED),
        (f"false alarm: {alarms}", FALSE_ALARM),
    ]


def add_legend(picture: np.ndarray, entries: list[tuple[str, tuple]]) -> np.ndarray:
    """Append a legend strip below a picture (the picture keeps its pixel coordinates).

    Arguments:
      picture (np.ndarray): H×W×3 uint8.
      entries (list[tuple[str, tuple]]): ``(text, RGB colour)`` lines.
    Returns:
      np.ndarray: (H + 12·lines + 4)×max(W, 132)×3 uint8; extra width is dark grey.
    """
    height, width = picture.shape[:2]
    out_width = max(width, LEGEND_MIN_WIDTH)
    strip = np.full((LEGEND_LINE * len(entries) + 4, out_width, 3), 32, np.uint8)
    for k, (text, colour) in enumerate(entries):
        top = 2 + k * LEGEND_LINE
        cv2.rectangle(strip, (3, top + 2), (10, top + 9), colour, thickness=-1)
        cv2.putText(
            strip, text, (14, top + 9), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (235, 235, 235), 1,
            cv2.LINE_AA,
        )  # fmt: skip
    body = np.full((height, out_width, 3), 32, np.uint8)
    body[:, :width] = picture
    return np.concatenate([body, strip], axis=0)


def overlay(
    image: np.ndarray,
    pred: np.ndarray,
    gt: np.ndarray | None = None,
    alpha: float = 0.55,
    legend: bool = True,
) -> np.ndarray:
    """Colour a prediction over its image by matched target (see the module docstring).

    With ground truth: detected targets and the components that detected them green
    (:data:`HIT`), missed targets yellow (:data:`MISSED`), false-alarm components red
    (:data:`FALSE_ALARM`), each target outlined in its colour. Without: predicted components cyan
    (:data:`DETECTION`) with outlines.

    Arguments:
      image (np.ndarray): H×W×3 (or H×W) image, float 0–255 or uint8.
      pred (np.ndarray): H×W bool prediction.
      gt (np.ndarray | None): H×W bool ground truth, or None.
      alpha (float): opacity of the colouring.
      legend (bool): append the legend strip (:func:`add_legend`) below the image.
    Returns:
      np.ndarray: uint8 RGB, H×W×3 without legend; with it, taller (and at least 132 px wide),
      the image keeping its top-left pixel coordinates.
    """
    canvas = to_uint8_rgb(image).astype(np.float32)
    regions = target_regions(pred, gt)
    for region, colour in regions:
        canvas[region] = (1 - alpha) * canvas[region] + alpha * np.asarray(colour, np.float32)
    result = canvas.astype(np.uint8)
    for region, colour in regions:
        contours, _ = cv2.findContours(
            region.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
        )
        cv2.drawContours(result, contours, -1, colour, 1)
    if legend:
        result = add_legend(result, legend_entries(pred, gt))
    return result


def panel(columns: list[np.ndarray], gap: int = 2) -> np.ndarray:
    """Place RGB images side by side with a white gap; shorter ones are padded at the bottom.

    Arguments:
      columns (list[np.ndarray]): H_i×W_i×3 uint8 images.
      gap (int): gap width in pixels.
    Returns:
      np.ndarray: max(H_i)×(ΣW_i + gaps)×3 uint8.
    """
    height = max(column.shape[0] for column in columns)
    spacer = np.full((height, gap, 3), 255, np.uint8)
    parts: list[np.ndarray] = []
    for column in columns:
        pad = height - column.shape[0]
        if pad:
            column = np.concatenate(
                [column, np.full((pad, column.shape[1], 3), 255, np.uint8)], axis=0
            )
        parts.extend([column, spacer])
    return np.concatenate(parts[:-1], axis=1)
