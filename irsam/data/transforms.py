# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Geometric transforms: the training augmentation (albumentations) and the evaluation sizing.

Training modes (``dataset.augmentation.mode``):

* ``irsam`` (default, IRSAM recipe): resize to ``loader_size``² (bilinear), horizontal flip,
  large-scale jitter (scale ~ U[0.8, 1.5], aspect kept), random crop to ≤ ``loader_size``, pad
  bottom/right to ``loader_size`` (image ``pad_value``, mask/edge 0);
* ``target_crop`` (BasicIRSTD style): no resize; pad bottom/right to ``loader_size`` if smaller,
  then crop a ``loader_size``² patch that, with probability ``target_crop_p``, contains a random
  target pixel (``A.CropNonEmptyMaskIfExists``), otherwise a uniform random crop; flips;
* ``resize``: resize to ``loader_size``² then the flips only (set the flip probabilities to 0
  for no augmentation at all).

The mask, the edge map and a validity map (1 on picture, 0 on padding) are extra mask targets,
so they follow the image exactly. ``soft_masks`` picks bilinear (soft targets, like the paper)
or nearest interpolation for them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal

import albumentations as A
import cv2
import numpy as np

EvalResize = Literal["resize", "pad"]
AugmentationMode = Literal["irsam", "target_crop", "resize"]


def mask_interpolation(soft_masks: bool) -> int:
    """OpenCV interpolation flag for masks and edge maps.

    Arguments:
      soft_masks (bool): bilinear (soft targets) when true, nearest when false.
    Returns:
      int: ``cv2.INTER_LINEAR`` or ``cv2.INTER_NEAREST``.
    """
    return cv2.INTER_LINEAR if soft_masks else cv2.INTER_NEAREST


def build_train_transform(
    loader_size: int,
    *,
    mode: AugmentationMode = "irsam",
    soft_masks: bool = True,
    pad_value: float = 128.0,
    hflip_p: float = 0.5,
    vflip_p: float = 0.0,
    transpose_p: float = 0.0,
    scale_range: Sequence[float] = (0.8, 1.5),
    target_crop_p: float = 0.5,
) -> A.Compose:
    """Build the training augmentation pipeline.

    Call it as ``t(image=image, mask=mask, edge=edge, valid=valid)``: image H×W×3 float32
    (0–255), mask and edge H×W float32 in [0, 1], valid H×W uint8 ones. Every output is
    ``loader_size``².

    Arguments:
      loader_size (int): output side in pixels (the loader resolution).
      mode (str): ``irsam``, ``target_crop`` or ``resize`` (see the module docstring).
      soft_masks (bool): bilinear (true) or nearest (false) interpolation for mask and edge.
      pad_value (float): image value of padded pixels (0–255 scale); masks pad with 0.
      hflip_p (float): probability of a horizontal flip.
      vflip_p (float): probability of a vertical flip.
      transpose_p (float): probability of swapping the H and W axes.
      scale_range (Sequence[float]): (min, max) scale factor of the ``irsam`` jitter.
      target_crop_p (float): ``target_crop`` mode: probability that the patch holds a target.
    Returns:
      A.Compose: the pipeline; seed it with :func:`seed_transform`.
    """
    pad = A.PadIfNeeded(
        min_height=loader_size,
        min_width=loader_size,
        position="top_left",
        border_mode=cv2.BORDER_CONSTANT,
        fill=pad_value,
        fill_mask=0,
    )
    flips = [
        A.HorizontalFlip(p=hflip_p),
        A.VerticalFlip(p=vflip_p),
        A.Transpose(p=transpose_p),
    ]
    if mode == "irsam":
        low, high = float(scale_range[0]), float(scale_range[1])
        if not 0.0 < low <= high:
            raise ValueError(f"augmentation.scale_range={scale_range} must satisfy 0 < min <= max.")
        steps: list[A.BasicTransform | A.BaseCompose] = [
            A.Resize(loader_size, loader_size, interpolation=cv2.INTER_LINEAR),
            *flips,
            A.RandomScale(scale_limit=(low - 1.0, high - 1.0), interpolation=cv2.INTER_LINEAR, p=1),
            pad,
            A.RandomCrop(loader_size, loader_size),
        ]
    elif mode == "target_crop":
        steps = [
            pad,
            A.OneOf(
                [
                    A.CropNonEmptyMaskIfExists(loader_size, loader_size, p=target_crop_p),
                    A.RandomCrop(loader_size, loader_size, p=1.0 - target_crop_p),
                ],
                p=1.0,
            ),
            *flips,
        ]
    elif mode == "resize":
        steps = [A.Resize(loader_size, loader_size, interpolation=cv2.INTER_LINEAR), *flips]
    else:
        raise ValueError(
            f"augmentation.mode={mode!r} is not one of 'irsam', 'target_crop', 'resize'."
        )
    return A.Compose(
        steps,
        additional_targets={"edge": "mask", "valid": "mask"},
        mask_interpolation=mask_interpolation(soft_masks),
        seed=0,
    )


def seed_transform(transform: A.Compose, seed: int | Sequence[int]) -> None:
    """Give a pipeline one shared random stream (reproducible, no correlation between steps).

    ``A.Compose.set_random_seed`` gives every step its own generator with the same seed, so the
    flip and the scale would draw the same numbers; this shares a single generator instead.

    Arguments:
      transform (A.Compose): a pipeline from :func:`build_train_transform`.
      seed (int | Sequence[int]): the seed, or several integers (e.g. epoch seed and item index)
        mixed by NumPy's ``SeedSequence``.
    """
    generator = np.random.default_rng(seed)
    transform.set_random_state(generator, random.Random(int(generator.integers(2**63))))


def resize_for_eval(
    image: np.ndarray, targets: list[np.ndarray], loader_size: int, soft_masks: bool
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Resize an image (bilinear) and its targets to ``loader_size``² (the IRSAM evaluation).

    Arguments:
      image (np.ndarray): H×W×3 float32.
      targets (list[np.ndarray]): H×W float32 maps (mask, edge).
      loader_size (int): output side.
      soft_masks (bool): bilinear (true) or nearest (false) for the targets.
    Returns:
      tuple[np.ndarray, list[np.ndarray]]: the resized image and targets.
    """
    size = (loader_size, loader_size)
    out = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    flag = mask_interpolation(soft_masks)
    return out, [cv2.resize(t, size, interpolation=flag) for t in targets]


def pad_for_eval(
    image: np.ndarray, targets: list[np.ndarray], divisor: int, pad_value: float
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Pad bottom/right to a multiple of ``divisor`` at native size (BasicIRSTD evaluation).

    Arguments:
      image (np.ndarray): H×W×3 float32.
      targets (list[np.ndarray]): H×W float32 maps, padded with 0.
      divisor (int): the padded sides are multiples of it.
      pad_value (float): image value of padded pixels.
    Returns:
      tuple[np.ndarray, list[np.ndarray]]: the padded image and targets.
    """
    height, width = image.shape[:2]
    bottom, right = (-height) % divisor, (-width) % divisor
    if bottom == 0 and right == 0:
        return image, targets
    out = np.pad(image, ((0, bottom), (0, right), (0, 0)), constant_values=pad_value)
    return out, [np.pad(t, ((0, bottom), (0, right))) for t in targets]
