# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Deterministic synthetic infrared sequences for tests, demos and speed measurements (the
real-background benchmark set is in :mod:`irsam.oneshot.real_sequence`).

Static smooth clutter drifting slowly (sub-pixel per frame), plus 1–3 dim Gaussian targets moving
a few pixels per frame, plus sensor noise. Masks mark the pixels where a target's profile
exceeds half its peak.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from irsam.data.io import write_png


@dataclass
class SyntheticSequence:
    """A generated sequence.

    Attributes:
      frames (list[np.ndarray]): H×W×3 float32 RGB (three equal channels), values in [0, 255].
      masks (list[np.ndarray]): H×W uint8 {0, 1} target masks.
      names (list[str]): file stems, ``frame_0000`` ...
    """

    frames: list[np.ndarray]
    masks: list[np.ndarray]
    names: list[str]


def render_sequence(
    background: np.ndarray,
    shifts: Sequence[tuple[float, float] | np.ndarray],
    margin: int,
    draw: Callable[[int, np.ndarray, np.ndarray], None],
    rng: np.random.Generator,
    noise: float,
) -> SyntheticSequence:
    """Frame t: the background shifted by ``shifts[t]`` (bilinear) less a ``margin`` border,
    targets added by ``draw(t, image, mask)`` in place, Gaussian noise, rounding to 0–255.

    Arguments:
      background (np.ndarray): (H + 2·margin)×(W + 2·margin) float grey background, 0–255.
      shifts (Sequence): one (row, column) shift in px per frame.
      margin (int): border cut off each side of the shifted background.
      draw (Callable): adds frame t's targets to the H×W float image and H×W uint8 mask.
      rng (np.random.Generator): source of the noise.
      noise (float): noise std, 0–255 scale.
    Returns:
      SyntheticSequence: H×W×3 float32 frames (integers 0–255), {0, 1} masks, names.
    """
    height, width = background.shape[0] - 2 * margin, background.shape[1] - 2 * margin
    frames, masks = [], []
    for t, shift in enumerate(shifts):
        shifted = ndimage.shift(background, shift, order=1, mode="nearest")
        image = shifted[margin : margin + height, margin : margin + width].copy()
        mask = np.zeros((height, width), dtype=np.uint8)
        draw(t, image, mask)
        image += rng.normal(scale=noise, size=image.shape)
        grey = np.clip(np.round(image), 0, 255).astype(np.float32)
        frames.append(np.repeat(grey[..., None], 3, axis=-1))
        masks.append(mask)
    return SyntheticSequence(frames, masks, [f"frame_{t:04d}" for t in range(len(frames))])


def make_synthetic_sequence(
    *,
    num_frames: int = 6,
    height: int = 96,
    width: int = 96,
    num_targets: int = 2,
    target_sigma: float = 1.2,
    target_contrast: float = 90.0,
    speed: float = 2.0,
    drift: float = 0.3,
    noise: float = 3.0,
    near_border: bool = False,
    seed: int = 0,
) -> SyntheticSequence:
    """Generate a sequence.

    Arguments:
      num_frames (int): number of frames.
      height (int): rows H.
      width (int): columns W.
      num_targets (int): 1 to 3 targets, present in every frame.
      target_sigma (float): Gaussian target radius (px); masks are ≈ 2.4σ wide.
      target_contrast (float): target peak above the background (0–255 scale).
      speed (float): target speed in px per frame.
      drift (float): clutter drift in px per frame.
      noise (float): sensor noise std (0–255 scale).
      near_border (bool): start the first target 4 px from the left border, moving along it.
      seed (int): random seed; equal seeds give identical sequences.
    Returns:
      SyntheticSequence: frames, masks and names.
    """
    if not 1 <= num_targets <= 3:
        raise ValueError(f"num_targets={num_targets} must be 1, 2 or 3.")
    rng = np.random.default_rng(seed)
    margin = int(np.ceil(drift * num_frames)) + 2
    clutter = ndimage.gaussian_filter(
        rng.normal(size=(height + 2 * margin, width + 2 * margin)), sigma=6.0
    )
    clutter = 70.0 + 25.0 * clutter / (clutter.std() + 1e-12)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    starts = rng.uniform(
        [0.25 * height, 0.25 * width], [0.75 * height, 0.75 * width], size=(num_targets, 2)
    )
    angles = rng.uniform(0.0, 2.0 * np.pi, size=num_targets)
    velocities = speed * np.stack([np.sin(angles), np.cos(angles)], axis=1)
    if near_border:
        starts[0] = (0.3 * height, 4.0)
        velocities[0] = (speed, 0.0)

    def draw(t: int, image: np.ndarray, mask: np.ndarray) -> None:
        for (y, x), (vy, vx) in zip(starts, velocities):
            cy = float(np.clip(y + vy * t, 1.0, height - 2.0))
            cx = float(np.clip(x + vx * t, 1.0, width - 2.0))
            profile = np.exp(-((rows - cy) ** 2 + (cols - cx) ** 2) / (2 * target_sigma**2))
            image += target_contrast * profile
            mask |= (profile >= 0.5).astype(np.uint8)

    shifts = [(drift * t, drift * t) for t in range(num_frames)]
    return render_sequence(clutter, shifts, margin, draw, rng, noise)


def write_synthetic_sequence(
    sequence: SyntheticSequence,
    root: str | os.PathLike,
    frames_dir: str | os.PathLike = "frames",
    masks_dir: str | os.PathLike = "masks",
) -> Path:
    """Write ``root/<frames_dir>/<name>.png`` (8-bit grey) and ``root/<masks_dir>/<name>.png``
    (0/255).

    Arguments:
      sequence (SyntheticSequence): the sequence.
      root (str | PathLike): output folder (created; files written atomically).
      frames_dir (str | PathLike): sub-folder of ``root`` for the frames.
      masks_dir (str | PathLike): sub-folder of ``root`` for the masks.
    Returns:
      Path: ``root``.
    """
    root = Path(root)
    for frame, mask, name in zip(sequence.frames, sequence.masks, sequence.names):
        write_png(root / frames_dir / f"{name}.png", frame[..., 0].astype(np.uint8))
        write_png(root / masks_dir / f"{name}.png", (mask * 255).astype(np.uint8))
    return root
