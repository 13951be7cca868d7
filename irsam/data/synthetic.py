# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""A procedural infrared small-target dataset: the default ``dataset=synthetic`` (no download).

Each image is rendered on the fly, deterministically from ``(seed, split, index)``:

* **clutter**, one of three scene types: ``sky`` (1/f^β cloud fields, vertical gradient),
  ``sea`` (horizon line, sky above, streaky sea below with sun glint specks that look like
  targets) and ``ground`` (rougher 1/f texture with a few sharp region boundaries);
* **sensor noise**: Gaussian read noise, fixed-pattern column offsets and a few hot pixels;
* **targets**: 0 (about 15 % of images) or 1–4 dim, anisotropic Gaussian blobs of 1–80 pixels
  area (log-uniform), with a local signal-to-noise ratio (peak over the local standard
  deviation of the clutter-plus-noise background) drawn from U[2, 8].

The mask is the footprint of each rendered blob above half its peak, so it matches the image
exactly. A constant or untrained predictor scores near zero IoU (targets cover ~0.1 % of the
pixels; glints and hot pixels are distractors), yet the targets are learnable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from irsam.data.dataset import IRSTDDatasetBase
from irsam.data.io import write_png
from irsam.utils import get_logger

log = get_logger(__name__)

SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
"""Stream identifiers: each split draws its images from a separate random stream."""


def _fractal(
    rng: np.random.Generator, height: int, width: int, beta: float, stretch: float = 1.0
) -> np.ndarray:
    """Zero-mean, unit-std 1/f^β noise; ``stretch`` > 1 elongates structures horizontally."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :] * stretch
    radius = np.sqrt(fx**2 + fy**2)
    radius[0, 0] = 1.0
    shape = (height, width // 2 + 1)
    spectrum = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / radius ** (beta / 2)
    spectrum[0, 0] = 0.0
    field = np.fft.irfft2(spectrum, s=(height, width))
    return (field - field.mean()) / (field.std() + 1e-12)


def _clutter(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A sky, sea or ground background, H×W float64 on the 0–255 scale."""
    kind = rng.choice(["sky", "sea", "ground"])
    rows = np.linspace(0.0, 1.0, height)[:, None]
    base = rng.uniform(70, 150) + rng.uniform(-25, 25) * rows
    if kind == "sky":
        clouds = _fractal(rng, height, width, rng.uniform(2.6, 3.4))
        cover = np.maximum(clouds - rng.uniform(-0.5, 1.0), 0.0)
        return (
            base
            + rng.uniform(8, 30) * cover
            + rng.uniform(1, 4) * _fractal(rng, height, width, 2.0)
        )
    if kind == "sea":
        horizon = int(rng.uniform(0.15, 0.55) * height)
        sky = base + rng.uniform(3, 12) * _fractal(rng, height, width, 3.0)
        sea = (
            base
            + rng.uniform(-30, 10)
            + rng.uniform(3, 10) * _fractal(rng, height, width, 2.2, stretch=rng.uniform(3, 6))
        )
        glint = (rng.random((height, width)) < rng.uniform(0.0005, 0.004)) * rng.uniform(
            10, 40, (height, width)
        )
        sea = sea + cv2.GaussianBlur(glint, (0, 0), 0.7) * 3.0
        return np.where(np.arange(height)[:, None] < horizon, sky, sea)
    texture = base + rng.uniform(12, 35) * _fractal(rng, height, width, rng.uniform(1.6, 2.3))
    ys, xs = np.mgrid[0:height, 0:width]
    for _ in range(rng.integers(1, 4)):
        angle = rng.uniform(0, np.pi)
        offset = rng.uniform(0.2, 0.8) * (height * abs(np.sin(angle)) + width * abs(np.cos(angle)))
        side = (xs * np.cos(angle) + ys * np.sin(angle)) > offset
        texture = texture + side * rng.uniform(-25, 25)
    return texture


def _sensor_noise(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Add Gaussian read noise and fixed-pattern column offsets."""
    height, width = image.shape
    noisy = image + rng.normal(0.0, rng.uniform(1.5, 4.0), (height, width))
    return noisy + rng.normal(0.0, rng.uniform(0.5, 2.0), (1, width))


def _blob(rng: np.random.Generator, max_area: int) -> tuple[np.ndarray, np.ndarray]:
    """One anisotropic Gaussian target: (profile patch with peak 1, footprint mask patch)."""
    area = float(np.exp(rng.uniform(0.0, np.log(max_area))))
    aspect = rng.uniform(0.6, 1.7)
    angle = rng.uniform(0.0, np.pi)
    offset = rng.uniform(-0.5, 0.5, 2)
    product = area / (2.0 * np.pi * np.log(2.0))  # ellipse above half-maximum has this σx·σy
    while True:
        sigma_x, sigma_y = np.sqrt(product * aspect), np.sqrt(product / aspect)
        radius = int(np.ceil(3.5 * max(sigma_x, sigma_y))) + 1
        coords = np.arange(-radius, radius + 1, dtype=np.float64)
        dy, dx = np.meshgrid(coords - offset[0], coords - offset[1], indexing="ij")
        u = dx * np.cos(angle) + dy * np.sin(angle)
        v = -dx * np.sin(angle) + dy * np.cos(angle)
        profile = np.exp(-0.5 * ((u / sigma_x) ** 2 + (v / sigma_y) ** 2))
        profile /= profile.max()
        footprint = profile >= 0.5
        if footprint.sum() <= max_area:
            return profile, footprint
        product *= 0.85


def render_synthetic_sample(
    seed: int,
    split: str,
    index: int,
    height: int = 128,
    width: int = 128,
    *,
    empty_fraction: float = 0.15,
    max_targets: int = 4,
    max_area: int = 80,
    snr_range: tuple[float, float] = (2.0, 8.0),
) -> tuple[np.ndarray, np.ndarray]:
    """Render one synthetic IR image and its mask, deterministically.

    Arguments:
      seed (int): dataset seed.
      split (str): ``train``, ``val`` or ``test`` (separate random streams).
      index (int): image index within the split.
      height (int): image height in pixels.
      width (int): image width in pixels.
      empty_fraction (float): probability that an image has no target.
      max_targets (int): at most this many targets (at least 1 when not empty).
      max_area (int): largest target footprint in pixels (smallest is 1).
      snr_range (tuple[float, float]): range of the local peak SNR.
    Returns:
      tuple[np.ndarray, np.ndarray]: image H×W uint8 (grey IR), mask H×W uint8 {0, 1}.
    """
    if split not in SPLIT_CODES:
        raise ValueError(f"split={split!r} must be one of {sorted(SPLIT_CODES)}")
    rng = np.random.default_rng([int(seed), SPLIT_CODES[split], int(index)])
    background = _sensor_noise(rng, _clutter(rng, height, width))
    image = background.copy()
    mask = np.zeros((height, width), np.uint8)
    count = 0 if rng.random() < empty_fraction else int(rng.integers(1, max_targets + 1))
    for _ in range(count):
        profile, footprint = _blob(rng, max_area)
        radius = profile.shape[0] // 2
        margin = radius + 2
        if 2 * margin >= min(height, width):
            continue
        for _attempt in range(20):
            cy, cx = (
                int(rng.integers(margin, height - margin)),
                int(rng.integers(margin, width - margin)),
            )
            window = (slice(cy - radius, cy + radius + 1), slice(cx - radius, cx + radius + 1))
            if not mask[cy - margin : cy + margin + 1, cx - margin : cx + margin + 1].any():
                break
        else:
            continue
        local = background[max(cy - 10, 0) : cy + 11, max(cx - 10, 0) : cx + 11]
        amplitude = rng.uniform(*snr_range) * max(float(local.std()), 1.5)
        image[window] += amplitude * profile
        mask[window] |= footprint.astype(np.uint8)
    hot = rng.integers(0, height * width, int(rng.integers(0, 5)))
    image.flat[hot] += rng.uniform(60, 120, hot.size)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), mask


class SyntheticIRSTDDataset(IRSTDDatasetBase):
    """Synthetic IR small-target images rendered on the fly (see the module docstring).

    Arguments:
      split (str): ``train``, ``val`` or ``test``.
      length (int): number of images.
      seed (int): dataset seed; item ``i`` is the same image for every run and worker.
      native_size (int): side of the rendered (native) images.
      render (dict | None): extra options of :func:`render_synthetic_sample`
        (``empty_fraction``, ``max_targets``, ``max_area``, ``snr_range``).
      **kwargs: the item-building options of :class:`IRSTDDatasetBase`.
    """

    def __init__(
        self,
        *,
        split: str,
        length: int,
        seed: int = 0,
        native_size: int = 128,
        render: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if split not in SPLIT_CODES:
            raise ValueError(f"split={split!r} must be one of {sorted(SPLIT_CODES)}")
        self.split = split
        self.length = int(length)
        self.seed = int(seed)
        self.native_size = int(native_size)
        self.render = dict(render or {})
        if "snr_range" in self.render:
            self.render["snr_range"] = tuple(self.render["snr_range"])

    def __len__(self) -> int:
        """Number of items."""
        return self.length

    def name(self, index: int) -> str:
        """Name of item ``index``, e.g. ``train_000007``.

        Arguments:
          index (int): item index.
        Returns:
          str: the name.
        """
        return f"{self.split}_{index:06d}"

    def decode(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Render item ``index``.

        Arguments:
          index (int): item index.
        Returns:
          tuple: image H×W×3 float32 RGB 0–255 (grey repeated); mask H×W uint8 {0, 1}.
        """
        grey, mask = render_synthetic_sample(
            self.seed, self.split, index, self.native_size, self.native_size, **self.render
        )
        return np.repeat(grey[..., None].astype(np.float32), 3, axis=-1), mask


def write_synthetic_dataset(
    root: str | os.PathLike,
    *,
    num_trainval: int = 80,
    num_test: int = 20,
    native_size: int = 128,
    seed: int = 0,
    split_dir: str = "IRSAM_split",
    with_extension: bool = True,
    render: dict[str, Any] | None = None,
) -> Path:
    """Write a synthetic dataset to disk in the NUDT-SIRST layout.

    Layout: ``root/images/000001.png`` …, ``root/masks/<same name>.png`` (0/255), and
    ``root/<split_dir>/trainval.txt`` + ``test.txt``. With the defaults it loads with
    ``dataset=nudt_sirst dataset.root=<root>``.

    Arguments:
      root (str | PathLike): output folder (created).
      num_trainval (int): images in ``trainval.txt`` (rendered from the ``train`` stream).
      num_test (int): images in ``test.txt`` (rendered from the ``test`` stream).
      native_size (int): side of the square images.
      seed (int): dataset seed.
      split_dir (str): folder of the split files, relative to ``root``.
      with_extension (bool): list names as ``000001.png`` (true) or ``000001`` (false).
      render (dict | None): extra options of :func:`render_synthetic_sample`.
    Returns:
      Path: ``root``.
    """
    root = Path(root)
    options = dict(render or {})
    lists: dict[str, list[str]] = {"trainval": [], "test": []}
    number = 0
    for split_file, stream, count in (
        ("trainval", "train", num_trainval),
        ("test", "test", num_test),
    ):
        for index in range(count):
            number += 1
            stem = f"{number:06d}"
            image, mask = render_synthetic_sample(
                seed, stream, index, native_size, native_size, **options
            )
            write_png(root / "images" / f"{stem}.png", image)
            write_png(root / "masks" / f"{stem}.png", mask * 255)
            lists[split_file].append(f"{stem}.png" if with_extension else stem)
    for split_file, names in lists.items():
        path = root / split_dir / f"{split_file}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(names) + "\n", encoding="utf-8")
    log.info("wrote a synthetic dataset of %d images to %s", number, root)
    return root
