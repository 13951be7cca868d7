# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Repeatable sequence benchmark built from real single-frame IR data (docs/oneshot.md,
"Real-background benchmark").

NUAA-SIRST and NUDT-SIRST hold single frames, not sequences. A benchmark sequence is built from
them: a real image with its targets removed (filled with a median of the surroundings) is the
background, static or drifting slowly; real targets, cut from other images with their masks,
move over it on smooth trajectories; sensor noise is added and a few frames carry no target.
Everything follows from one seed, and the ground truth is exact: a target's mask is its cut
mask pasted at an integer position.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy import ndimage

from irsam.data.copy_paste import TargetCrop, cut_targets
from irsam.data.io import read_image, read_mask
from irsam.data.layouts import pair_files
from irsam.oneshot.synthetic_sequence import (
    SyntheticSequence,
    render_sequence,
    write_synthetic_sequence,
)
from irsam.utils import get_logger

log = get_logger(__name__)

DATASETS = ("NUAA-SIRST", "NUDT-SIRST")
"""Sub-folders of the data root used for backgrounds and targets (``images/`` + ``masks/``)."""


def grey(image: np.ndarray) -> np.ndarray:
    """H×W×3 RGB 0–255 → H×W float32 (channel mean)."""
    return image.mean(axis=-1).astype(np.float32)


def remove_targets(image: np.ndarray, mask: np.ndarray, size: int = 21) -> np.ndarray:
    """Fill the (dilated) target pixels with the median of a ``size``×``size`` neighbourhood.

    Small targets cover well under half of the window, so the median is background.

    Arguments:
      image (np.ndarray): H×W float grey image.
      mask (np.ndarray): H×W {0, 1} target mask.
      size (int): median filter side in pixels.
    Returns:
      np.ndarray: H×W float32 background without the targets.
    """
    hole = ndimage.binary_dilation(mask > 0, iterations=3)
    background = image.astype(np.float32).copy()
    if hole.any():
        background[hole] = ndimage.median_filter(background, size=size, mode="nearest")[hole]
    return background


def fit_background(image: np.ndarray, height: int, width: int, margin: int) -> np.ndarray:
    """Resize (if needed) and centre-crop a background to (height + 2·margin)×(width + 2·margin).

    Arguments:
      image (np.ndarray): h×w float grey background.
      height (int): frame rows.
      width (int): frame columns.
      margin (int): extra border for the drift.
    Returns:
      np.ndarray: the crop, float32.
    """
    need_h, need_w = height + 2 * margin, width + 2 * margin
    scale = max(need_h / image.shape[0], need_w / image.shape[1], 1.0)
    if scale > 1.0:
        image = ndimage.zoom(image, scale, order=1)
    y0 = (image.shape[0] - need_h) // 2
    x0 = (image.shape[1] - need_w) // 2
    return image[y0 : y0 + need_h, x0 : x0 + need_w].astype(np.float32)


def make_real_sequence(
    background: np.ndarray,
    targets: list[TargetCrop],
    *,
    num_frames: int = 30,
    height: int = 256,
    width: int = 256,
    speed: float = 1.5,
    drift: float = 0.2,
    noise: float = 2.0,
    empty_every: int = 10,
    seed: int = 0,
) -> SyntheticSequence:
    """One sequence: real background, real targets on smooth trajectories, noise, empty frames.

    Trajectories are straight lines with a slow sinusoidal sway, reflected at a 4-px margin; the
    target is pasted at the rounded position (additively, so its own contrast is kept).

    Arguments:
      background (np.ndarray): grey background without targets (any size; resized if small).
      targets (list[TargetCrop]): 1–3 targets moving in the sequence.
      num_frames (int): frames.
      height (int): frame rows.
      width (int): frame columns.
      speed (float): target speed, px per frame.
      drift (float): background drift, px per frame (0 = static).
      noise (float): Gaussian sensor noise std, 0–255 scale.
      empty_every (int): every ``empty_every``-th frame (never frame 0) has no target; 0 = none.
      seed (int): random seed; equal inputs and seeds give identical sequences.
    Returns:
      SyntheticSequence: H×W×3 float32 frames (integers 0–255), {0, 1} masks, names.
    """
    if not 1 <= len(targets) <= 3:
        raise ValueError(f"make_real_sequence needs 1 to 3 targets, got {len(targets)}.")
    rng = np.random.default_rng(seed)
    margin = int(np.ceil(abs(drift) * num_frames)) + 2
    base = fit_background(background, height, width, margin)
    angle = rng.uniform(0.0, 2.0 * np.pi)
    drift_yx = drift * np.array([np.sin(angle), np.cos(angle)])
    tracks = []
    for target in targets:
        h, w = target.mask.shape
        low = np.array([4.0, 4.0])
        high = np.array([height - h - 4.0, width - w - 4.0])
        if (high <= low).any():
            raise ValueError(f"a {h}×{w} target does not fit a {height}×{width} frame.")
        start = rng.uniform(low, high)
        heading = rng.uniform(0.0, 2.0 * np.pi)
        velocity = speed * np.array([np.sin(heading), np.cos(heading)])
        sway = rng.uniform(0.5, 2.0), rng.uniform(10.0, 30.0)  # amplitude px, period frames
        tracks.append((target, start, velocity, sway, low, high))

    def draw(t: int, image: np.ndarray, mask: np.ndarray) -> None:
        if empty_every and t > 0 and t % empty_every == 0:
            return
        for target, start, velocity, (amp, period), low, high in tracks:
            normal = np.array([-velocity[1], velocity[0]]) / max(speed, 1e-9)
            pos = start + velocity * t + amp * np.sin(2 * np.pi * t / period) * normal
            span = high - low  # reflect into [low, high]
            pos = low + np.abs((pos - low + span) % (2 * span) - span)
            y, x = (int(np.rint(v)) for v in pos)
            h, w = target.mask.shape
            image[y : y + h, x : x + w] += target.signal
            mask[y : y + h, x : x + w] |= target.mask.astype(np.uint8)

    shifts = [drift_yx * t for t in range(num_frames)]
    return render_sequence(base, shifts, margin, draw, rng, noise)


def _load_pairs(data_root: Path) -> list[tuple[Path, Path]]:
    """(image, mask) files of every dataset of :data:`DATASETS` under the data root."""
    pairs = []
    for name in DATASETS:
        folder = data_root / name
        if (folder / "images").is_dir() and (folder / "masks").is_dir():
            paired = pair_files(folder / "images", folder / "masks")
            pairs.extend((img, msk) for img, msk in paired.values() if msk is not None)
    if not pairs:
        raise ValueError(
            f"{data_root}: no NUAA-SIRST/ or NUDT-SIRST/ folder with images/ and masks/. Set "
            "--data-root (or IRSAM_SHARED_DATA) to the folder holding them."
        )
    return pairs


def write_real_benchmark(
    data_root: str | os.PathLike,
    out: str | os.PathLike,
    *,
    num_sequences: int = 10,
    num_frames: int = 30,
    size: int = 256,
    max_targets: int = 2,
    seed: int = 0,
) -> Path:
    """Write a named real-background benchmark: ``out/images/<seq>/`` and ``out/masks/<seq>/``.

    ``python oneshot.py sequences=<out>/images gt=<out>/masks`` scores it (macro average).
    Sequence ``k`` draws its background image, 1–``max_targets`` target crops (from other
    images), trajectories and noise from ``seed`` and ``k``; even sequences have a static
    background, odd ones drift at 0.2 px per frame.

    Arguments:
      data_root (str | PathLike): folder with ``NUAA-SIRST/`` and/or ``NUDT-SIRST/``.
      out (str | PathLike): output folder.
      num_sequences (int): sequences (``seq_00`` ...).
      num_frames (int): frames per sequence.
      size (int): frame height and width.
      max_targets (int): 1 to 3 targets per sequence at most.
      seed (int): seed of the whole set.
    Returns:
      Path: ``out``.
    """
    data_root, out = Path(data_root), Path(out)
    pairs = _load_pairs(data_root)
    rng = np.random.default_rng(seed)
    for k in range(num_sequences):
        order = rng.permutation(len(pairs))
        bg_img, bg_mask = pairs[order[0]]
        background = remove_targets(grey(read_image(bg_img)), read_mask(bg_mask))
        wanted = int(rng.integers(1, max_targets + 1))
        targets: list[TargetCrop] = []
        for index in order[1:]:
            img, msk = pairs[index]
            targets.extend(cut_targets(grey(read_image(img)), read_mask(msk), size // 8)[:1])
            if len(targets) == wanted:
                break
        sequence = make_real_sequence(
            background,
            targets,
            num_frames=num_frames,
            height=size,
            width=size,
            drift=0.0 if k % 2 == 0 else 0.2,
            seed=int(rng.integers(2**31)),
        )
        name = f"seq_{k:02d}"
        write_synthetic_sequence(sequence, out, Path("images", name), Path("masks", name))
        log.info("%s: background %s, %d target(s)", name, bg_img.name, len(targets))
    return out
