# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Target copy-paste: real targets cut from the training masks, pasted into training images.

The bank (:class:`TargetBank`) holds every 8-connected target of every training mask whose
bounding box fits ``max_side`` and that is brighter than its surroundings: its exact mask and
its signal above the local background (:func:`cut_targets`), with the name of its source image.
:func:`paste_targets` pastes a few of them, jittered in size and contrast, into a decoded image
at positions away from every target, and adds their masks to the item's mask
(``dataset.augmentation.copy_paste``, docs/studies.md "Target copy-paste").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import cv2
import numpy as np
from scipy import ndimage, sparse
from scipy.sparse.linalg import factorized

from irsam.data.errors import DatasetError

KEY = "dataset.augmentation.copy_paste"
"""Config node of the options (error messages name its keys)."""

BLENDS = ("gaussian", "poisson")
"""Ways a crop is merged into the destination image."""

_STRUCTURE_8 = np.ones((3, 3), bool)


@dataclass(frozen=True)
class TargetCrop:
    """A real target cut from an image with its mask.

    Attributes:
      signal (np.ndarray): h×w float32, target intensity above the local background (≥ 0) on
        the target pixels, 0 elsewhere.
      mask (np.ndarray): h×w bool target pixels (one connected component).
    """

    signal: np.ndarray
    mask: np.ndarray


def cut_targets(image: np.ndarray, mask: np.ndarray, max_side: int = 24) -> list[TargetCrop]:
    """Cut every target (8-connected component) of an image with its local contrast.

    Arguments:
      image (np.ndarray): H×W float grey image, 0–255.
      mask (np.ndarray): H×W {0, 1} mask.
      max_side (int): components with a bounding box side above this are skipped.
    Returns:
      list[TargetCrop]: one crop per kept component (bounding box of the component).
    """
    labels, _ = ndimage.label(mask > 0, structure=_STRUCTURE_8)
    crops = []
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        rows, cols = box
        if rows.stop - rows.start > max_side or cols.stop - cols.start > max_side:
            continue
        ring = ndimage.binary_dilation(labels == index, iterations=4) & ~(labels > 0)
        local = float(np.median(image[ring])) if ring.any() else float(np.median(image))
        component = labels[box] == index
        signal = np.where(component, np.clip(image[box] - local, 0.0, None), 0.0)
        if signal.max() < 5.0:  # a target no brighter than its surroundings is not usable
            continue
        crops.append(TargetCrop(signal=signal.astype(np.float32), mask=component))
    return crops


def _pair(config: Mapping[str, Any], key: str, kind: type, low: float) -> tuple[Any, Any]:
    """A ``[lo, hi]`` option with ``low <= lo <= hi``, or a DatasetError naming the key."""
    value = config[key]
    try:
        lo, hi = (kind(v) for v in value)
        if (kind is int and any(float(v) != int(v) for v in value)) or not low <= lo <= hi:
            raise ValueError
    except (TypeError, ValueError):
        raise DatasetError(
            f"{KEY}.{key}={value!r} must be a [lo, hi] pair of {kind.__name__}s with "
            f"{low:g} <= lo <= hi."
        ) from None
    return lo, hi


@dataclass(frozen=True)
class CopyPasteOptions:
    """Options of :func:`paste_targets` (``dataset.augmentation.copy_paste``).

    Attributes:
      p (float): probability that a training item gets pasted targets, in [0, 1]; 0 = off.
      targets (tuple[int, int]): [min, max] targets pasted into an image (uniform).
      scale (tuple[float, float]): [lo, hi] size factor of a crop (uniform).
      intensity (tuple[float, float]): [lo, hi] gain of a crop's signal (uniform).
      blend (str): ``gaussian`` or ``poisson`` (see :func:`paste_targets`).
      feather_sigma (float): ``gaussian``: std in pixels of the alpha blur; 0 = hard edge.
      margin (int): pixels between a pasted target's box and any other target.
      attempts (int): position draws per target before it is skipped.
      max_side (int): crops with a larger bounding-box side (native pixels) are not used.
    """

    p: float = 0.0
    targets: tuple[int, int] = (1, 3)
    scale: tuple[float, float] = (0.8, 1.25)
    intensity: tuple[float, float] = (0.7, 1.3)
    blend: str = "gaussian"
    feather_sigma: float = 1.0
    margin: int = 4
    attempts: int = 20
    max_side: int = 32

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> CopyPasteOptions:
        """Check and convert the config node (missing keys take the defaults above).

        Arguments:
          config (Mapping | None): ``dataset.augmentation.copy_paste``; None = off.
        Returns:
          CopyPasteOptions: the options.
        Raises:
          DatasetError: an unknown key or a value out of range (the message names the key).
        """
        config = dict(config or {})
        names = [field.name for field in fields(cls)]
        unknown = sorted(set(config) - set(names))
        if unknown:
            raise DatasetError(
                f"{KEY}.{unknown[0]} is not an option; the options are {', '.join(names)}."
            )
        merged = {name: getattr(cls, name) for name in names} | config
        scalars = {
            "p": (float, 0.0, 1.0),
            "feather_sigma": (float, 0.0, None),
            "margin": (int, 0, None),
            "attempts": (int, 1, None),
            "max_side": (int, 1, None),
        }
        values: dict[str, Any] = {}
        for name, (kind, low, high) in scalars.items():
            value = merged[name]
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            ok = ok and (kind is float or float(value) == int(value))
            ok = ok and low <= value and (high is None or value <= high)
            if not ok:
                bound = f"in [{low:g}, {high:g}]" if high is not None else f">= {low:g}"
                raise DatasetError(f"{KEY}.{name}={value!r} must be a {kind.__name__} {bound}.")
            values[name] = kind(value)
        values["targets"] = _pair(merged, "targets", int, 1)
        values["scale"] = _pair(merged, "scale", float, 1e-3)
        values["intensity"] = _pair(merged, "intensity", float, 0.0)
        if merged["blend"] not in BLENDS:
            raise DatasetError(
                f"{KEY}.blend={merged['blend']!r} must be one of {', '.join(BLENDS)}."
            )
        values["blend"] = merged["blend"]
        return cls(**values)


@dataclass
class TargetBank:
    """Target crops and the name of the image each was cut from.

    Attributes:
      crops (list[TargetCrop]): the crops, signals on the 0–255 scale of the decoded images.
      sources (list[str]): ``sources[k]`` is the image name of ``crops[k]``.
      images (int): number of images the bank was built from.
    """

    crops: list[TargetCrop]
    sources: list[str]
    images: int

    @classmethod
    def from_items(
        cls, items: Iterable[tuple[str, np.ndarray, np.ndarray | None]], max_side: int
    ) -> TargetBank:
        """Cut the targets of decoded items (items without a mask are skipped).

        Arguments:
          items (Iterable): ``(name, image H×W×3 float32 0–255, mask H×W uint8 {0, 1} | None)``.
          max_side (int): see :func:`cut_targets`.
        Returns:
          TargetBank: every usable target of the items, in item order.
        """
        crops: list[TargetCrop] = []
        sources: list[str] = []
        images = 0
        for name, image, mask in items:
            if mask is None:
                continue
            images += 1
            cut = cut_targets(image.mean(axis=-1), mask, max_side)
            crops.extend(cut)
            sources.extend([name] * len(cut))
        return cls(crops=crops, sources=sources, images=images)

    def __len__(self) -> int:
        """Number of crops."""
        return len(self.crops)


@dataclass(frozen=True)
class Placement:
    """One pasted target.

    Attributes:
      source (str): name of the image the crop was cut from.
      top (int): row of the crop box's top-left corner in the destination.
      left (int): column of that corner.
      mask (np.ndarray): h×w bool target pixels of the (scaled) crop.
    """

    source: str
    top: int
    left: int
    mask: np.ndarray


def _feather(support: np.ndarray, sigma: float) -> np.ndarray:
    """Alpha of the gaussian blend: the blurred support scaled to peak 1, zero off the support."""
    if sigma <= 0:
        return support.astype(np.float32)
    blurred = cv2.GaussianBlur(
        support.astype(np.float32), (0, 0), sigma, borderType=cv2.BORDER_CONSTANT
    )
    return blurred / blurred.max() * support


def _poisson(region: np.ndarray, support: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Solve Δf = Δsource on the support pixels with f = region around them (h×w×C float)."""
    height, width = support.shape
    index = np.full((height, width), -1, np.int64)
    ys, xs = np.nonzero(support)
    count = len(ys)
    index[ys, xs] = np.arange(count)
    diagonal = np.zeros(count)
    rhs = np.zeros((count, region.shape[-1]))
    rows, cols = [], []
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        ny, nx = ys + dy, xs + dx
        inside = np.flatnonzero((ny >= 0) & (ny < height) & (nx >= 0) & (nx < width))
        qy, qx = ny[inside], nx[inside]
        diagonal[inside] += 1.0
        rhs[inside] += (source[ys[inside], xs[inside]] - source[qy, qx])[:, None]
        neighbour = index[qy, qx]
        unknown = neighbour >= 0
        rows.append(inside[unknown])
        cols.append(neighbour[unknown])
        rhs[inside[~unknown]] += region[qy[~unknown], qx[~unknown]]
    rows_all = np.concatenate([np.arange(count), *rows])
    cols_all = np.concatenate([np.arange(count), *cols])
    values = np.concatenate([diagonal, -np.ones(len(rows_all) - count)])
    solve = factorized(sparse.csc_matrix((values, (rows_all, cols_all)), shape=(count, count)))
    out = region.copy()
    for channel in range(region.shape[-1]):
        out[ys, xs, channel] = solve(rhs[:, channel])
    return out


def paste_targets(
    image: np.ndarray,
    mask: np.ndarray,
    bank: TargetBank,
    rng: np.random.Generator,
    options: CopyPasteOptions,
) -> tuple[np.ndarray, np.ndarray, list[Placement]]:
    """Paste ``targets`` random crops of the bank into an image, away from every target.

    Each crop is drawn uniformly from the bank, resized by a factor from ``scale`` (mask:
    nearest, signal: bilinear) and its signal multiplied by a gain from ``intensity``. Its
    position is uniform over the image; a position whose crop box, dilated by ``margin``,
    holds a target pixel (of the item or pasted before) is redrawn, up to ``attempts`` times,
    then the crop is skipped. Crops not strictly smaller than the image are skipped.

    Blends (only pixels of the placed crop masks change, in both):

    * ``gaussian``: the signal is added to the destination with alpha = the crop mask blurred
      by ``feather_sigma`` (scaled to peak 1) × the crop mask, so the destination's texture
      under the target is kept and its rim is feathered;
    * ``poisson``: the target pixels are solved from the Poisson equation (gradient-domain
      blending, float): their Laplacian is the crop signal's, and the destination pixels
      around them (the crop box plus a 1-pixel border) are the boundary. The destination's
      texture under the target is replaced by the smooth fill of its surroundings plus the
      target's shape, so the target sits at the destination's local level.

    The result is clipped to [0, 255].

    Arguments:
      image (np.ndarray): H×W×3 float32 RGB, 0–255 (decoded, 8- or 16-bit source).
      mask (np.ndarray): H×W uint8 {0, 1}.
      bank (TargetBank): the crops.
      rng (np.random.Generator): the random stream (all draws come from it).
      options (CopyPasteOptions): the options.
    Returns:
      tuple: the new image (H×W×3 float32), the new mask (H×W uint8, the old mask OR the
      placed crop masks) and the placements, in paste order. The inputs are not modified.
    """
    image = image.astype(np.float32, copy=True)
    occupied = mask > 0
    height, width = occupied.shape
    placements: list[Placement] = []
    if not len(bank):
        return image, occupied.astype(np.uint8), placements
    margin = options.margin
    for _ in range(int(rng.integers(options.targets[0], options.targets[1] + 1))):
        pick = int(rng.integers(len(bank)))
        crop = bank.crops[pick]
        factor = rng.uniform(*options.scale)
        gain = rng.uniform(*options.intensity)
        rows = max(1, round(crop.mask.shape[0] * factor))
        cols = max(1, round(crop.mask.shape[1] * factor))
        if rows >= height or cols >= width:
            continue
        support = (
            cv2.resize(crop.mask.astype(np.uint8), (cols, rows), interpolation=cv2.INTER_NEAREST)
            > 0
        )
        signal = cv2.resize(crop.signal, (cols, rows), interpolation=cv2.INTER_LINEAR)
        signal = signal * support * gain
        for _ in range(options.attempts):
            top = int(rng.integers(height - rows + 1))
            left = int(rng.integers(width - cols + 1))
            window = occupied[
                max(0, top - margin) : top + rows + margin,
                max(0, left - margin) : left + cols + margin,
            ]
            if not window.any():
                break
        else:
            continue
        box = (slice(top, top + rows), slice(left, left + cols))
        if options.blend == "gaussian":
            image[box] += (_feather(support, options.feather_sigma) * signal)[..., None]
        else:
            y0, x0 = max(0, top - 1), max(0, left - 1)
            y1, x1 = min(height, top + rows + 1), min(width, left + cols + 1)
            inner = np.zeros((y1 - y0, x1 - x0), bool)
            source = np.zeros((y1 - y0, x1 - x0), np.float32)
            inner[top - y0 : top - y0 + rows, left - x0 : left - x0 + cols] = support
            source[top - y0 : top - y0 + rows, left - x0 : left - x0 + cols] = signal
            image[y0:y1, x0:x1] = _poisson(image[y0:y1, x0:x1], inner, source)
        occupied[box] |= support
        placements.append(Placement(bank.sources[pick], top, left, support))
    np.clip(image, 0.0, 255.0, out=image)
    return image, occupied.astype(np.uint8), placements
