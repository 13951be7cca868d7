# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Datasets of IR small-target images: one item builder, several sources (files, synthetic).

Every item is a dict (see :mod:`irsam.data.collate` for the batched form):

* ``image``: 3×h×w float32, RGB, 0–255 (not normalised), at loader size;
* ``mask``: 1×h×w float32 in [0, 1] (soft when ``soft_masks``), at loader size;
* ``edge``: 1×h×w float32 in [0, 1], Canny edge of the native mask, transformed like the mask;
* ``mask_native`` (evaluation items with a mask): 1×H×W float32 {0, 1} at native size;
* ``orig_size``: int64 (H, W) native size; ``valid_size``: int64 (h, w) of the picture region
  (top-left) of the loader-size image; ``name``: image name without extension.

Items without ground truth (prediction) have no ``mask``, ``edge`` or ``mask_native``.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from irsam.data.copy_paste import CopyPasteOptions, TargetBank, paste_targets
from irsam.data.edges import edge_target
from irsam.data.errors import DatasetError
from irsam.data.io import HighBitNorm, read_image, read_mask
from irsam.data.layouts import Sample, pair_files
from irsam.data.transforms import (
    EvalResize,
    build_train_transform,
    pad_for_eval,
    resize_for_eval,
    seed_transform,
)
from irsam.utils import get_logger

log = get_logger(__name__)

Stage = Literal["train", "eval"]

COPY_PASTE_STREAM = 1
"""Third seed word of the copy-paste stream of an item, ``(epoch seed, index, 1)``, so it is
independent of the transform's ``(epoch seed, index)`` stream."""


def _compact(image: np.ndarray) -> np.ndarray:
    """Store a decoded 0–255 float image in the smallest lossless form (grey and/or uint8)."""
    if (
        image.shape[-1] == 3
        and np.array_equal(image[..., 0], image[..., 1])
        and np.array_equal(image[..., 0], image[..., 2])
    ):
        image = image[..., 0]
    if np.array_equal(image, np.round(image)):
        return image.astype(np.uint8)
    return image


def _expand(image: np.ndarray) -> np.ndarray:
    """Undo :func:`_compact`: H×W×3 float32."""
    image = image.astype(np.float32)
    return np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image


class IRSTDDatasetBase(Dataset, abc.ABC):
    """Shared item builder: augmentation or evaluation sizing, edge target, tensor conversion.

    Subclasses provide :meth:`__len__`, :meth:`name` and :meth:`decode`.

    Arguments:
      stage (str): ``train`` (augmentation, no native mask) or ``eval`` (deterministic sizing,
        native mask included).
      loader_size (int): loader resolution (side of the square training/resized images).
      eval_resize (str): evaluation sizing: ``resize`` to ``loader_size``² or ``pad`` to a
        multiple of ``pad_divisor`` at native size.
      pad_divisor (int): ``pad`` policy multiple.
      soft_masks (bool): bilinear (true) or nearest (false) resampling of mask and edge.
      pad_value (float): image value of padded pixels (0–255 scale).
      augmentation (Mapping | None): keyword arguments of
        :func:`irsam.data.transforms.build_train_transform` (``mode``, ``hflip_p``, ...).
      cache_images (bool): keep decoded images and masks in RAM after first use (per process:
        each DataLoader worker fills its own copy).
    """

    def __init__(
        self,
        *,
        stage: Stage,
        loader_size: int,
        eval_resize: EvalResize = "resize",
        pad_divisor: int = 32,
        soft_masks: bool = True,
        pad_value: float = 128.0,
        augmentation: Mapping[str, Any] | None = None,
        cache_images: bool = True,
    ) -> None:
        if stage not in ("train", "eval"):
            raise ValueError(f"stage={stage!r} must be 'train' or 'eval'.")
        if eval_resize not in ("resize", "pad"):
            raise ValueError(f"dataset.eval_resize={eval_resize!r} must be 'resize' or 'pad'.")
        self.stage = stage
        self.loader_size = int(loader_size)
        self.eval_resize = eval_resize
        self.pad_divisor = int(pad_divisor)
        self.soft_masks = soft_masks
        self.pad_value = float(pad_value)
        self.cache_images = cache_images
        self._cache: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
        self.transform = (
            build_train_transform(
                self.loader_size,
                soft_masks=soft_masks,
                pad_value=self.pad_value,
                **dict(augmentation or {}),
            )
            if stage == "train"
            else None
        )
        self._epoch_seed = torch.full((1,), -1, dtype=torch.int64).share_memory_()
        """The epoch's augmentation seed (-1: none yet), in shared memory so that DataLoader
        workers, persistent ones included, see what :meth:`reseed` sets in the main process."""
        self.copy_paste: tuple[TargetBank, CopyPasteOptions] | None = None
        """Target copy-paste of training items (:meth:`use_copy_paste`); None = off."""

    @abc.abstractmethod
    def __len__(self) -> int:
        """Number of items."""

    @abc.abstractmethod
    def name(self, index: int) -> str:
        """Name of item ``index`` (no extension).

        Arguments:
          index (int): item index.
        Returns:
          str: the name.
        """

    @abc.abstractmethod
    def decode(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Decode item ``index`` at native resolution.

        Arguments:
          index (int): item index.
        Returns:
          tuple: image H×W×3 float32 RGB 0–255; mask H×W uint8 {0, 1} or None.
        """

    def reseed(self, seed: int) -> None:
        """Set the augmentation seed of an epoch (``IRSTDDataModule.reseed_augmentation`` calls
        it at every epoch start, from the torch RNG that checkpoints store).

        From then on item ``i`` is augmented from the pair (seed, i) alone: the result does not
        depend on the number of workers, on which worker builds the item, or on whether workers
        persist across epochs, so a resumed run augments as an uninterrupted one. Before any
        call the augmentation draws from one stream (per worker: :func:`seed_worker`).

        Arguments:
          seed (int): a seed >= 0.
        """
        if seed < 0:
            raise ValueError(f"augmentation seed {seed} must be >= 0")
        self._epoch_seed[0] = int(seed)

    def use_copy_paste(self, bank: TargetBank, options: CopyPasteOptions) -> None:
        """Paste targets of ``bank`` into training items (before the transform), with
        probability ``options.p`` per item (:func:`irsam.data.copy_paste.paste_targets`).

        Once :meth:`reseed` has set an epoch seed, item ``i`` draws from (seed, i) alone, like
        the transform; before, from numpy's global stream (per worker: :func:`seed_worker`).

        Arguments:
          bank (TargetBank): the crops (from the training items).
          options (CopyPasteOptions): the options.
        """
        self.copy_paste = (bank, options)

    def _paste(self, index: int, image: np.ndarray, mask: np.ndarray) -> tuple[Any, Any]:
        """Item ``index`` with pasted targets (or unchanged), drawn from its own stream."""
        bank, options = self.copy_paste  # type: ignore[misc]
        epoch_seed = int(self._epoch_seed[0])
        seed = (
            [epoch_seed, index, COPY_PASTE_STREAM]
            if epoch_seed >= 0
            else np.random.randint(2**31, size=4)
        )
        rng = np.random.default_rng(seed)
        if rng.random() >= options.p:
            return image, mask
        image, mask, _ = paste_targets(image, mask, bank, rng, options)
        return image, mask

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Decode item ``index`` through the in-RAM cache.

        Arguments:
          index (int): item index.
        Returns:
          tuple: image H×W×3 float32 RGB 0–255; mask H×W uint8 {0, 1} or None.
        """
        if index in self._cache:
            image, mask = self._cache[index]
            return _expand(image), mask
        image, mask = self.decode(index)
        if self.cache_images:
            self._cache[index] = (_compact(image), mask)
        return image, mask

    def __getitem__(self, index: int) -> dict[str, Any]:
        """Build item ``index`` (see the module docstring for the keys and shapes).

        Arguments:
          index (int): item index.
        Returns:
          dict[str, Any]: the item.
        """
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} items")
        image, mask = self.load(index)
        height, width = image.shape[:2]
        item: dict[str, Any] = {
            "name": self.name(index),
            "orig_size": torch.tensor([height, width], dtype=torch.int64),
        }
        if self.stage == "train":
            if mask is None:
                raise DatasetError(f"{self.name(index)}: training needs a mask for every image.")
            if self.copy_paste is not None:
                image, mask = self._paste(index, image, mask)
            epoch_seed = int(self._epoch_seed[0])
            if epoch_seed >= 0:
                seed_transform(self.transform, (epoch_seed, index))  # type: ignore[arg-type]
            out = self.transform(  # type: ignore[misc]
                image=image,
                mask=mask.astype(np.float32),
                edge=edge_target(mask),
                valid=np.ones((height, width), np.uint8),
            )
            valid = out["valid"] > 0
            item["valid_size"] = torch.tensor(
                [int(valid.any(axis=1).sum()), int(valid.any(axis=0).sum())], dtype=torch.int64
            )
            image, targets = out["image"], [out["mask"], out["edge"]]
        else:
            targets = [] if mask is None else [mask.astype(np.float32), edge_target(mask)]
            if self.eval_resize == "resize":
                image, targets = resize_for_eval(image, targets, self.loader_size, self.soft_masks)
                item["valid_size"] = torch.tensor([self.loader_size] * 2, dtype=torch.int64)
            else:
                image, targets = pad_for_eval(image, targets, self.pad_divisor, self.pad_value)
                item["valid_size"] = torch.tensor([height, width], dtype=torch.int64)
            if mask is not None:
                item["mask_native"] = torch.from_numpy(mask.astype(np.float32))[None]
        item["image"] = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        if targets:
            item["mask"] = torch.from_numpy(np.clip(targets[0], 0.0, 1.0))[None].float()
            item["edge"] = torch.from_numpy(np.clip(targets[1], 0.0, 1.0))[None].float()
        return item


class IRSTDDataset(IRSTDDatasetBase):
    """Image/mask files on disk (any layout of :mod:`irsam.data.layouts`).

    File existence and pairing are checked by the caller that builds ``samples``
    (:func:`irsam.data.layouts.resolve_splits`); image/mask sizes are checked at load.

    Arguments:
      samples (list[Sample]): the files, in item order.
      high_bit_norm (str): how 16-bit/float images map to 0–255 (see
        :func:`irsam.data.io.read_image`).
      mask_size_mismatch (str): a mask whose size differs from its image's: ``error``, or
        ``resize`` it to the image (area interpolation, then ≥ 0.5) when the aspect ratios agree
        within 2 %, with a warning naming the files.
      **kwargs: the item-building options of :class:`IRSTDDatasetBase`.
    """

    def __init__(
        self,
        samples: list[Sample],
        *,
        high_bit_norm: HighBitNorm = "percentile",
        mask_size_mismatch: Literal["error", "resize"] = "error",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if mask_size_mismatch not in ("error", "resize"):
            raise ValueError(
                f"dataset.mask_size_mismatch={mask_size_mismatch!r} must be 'error' or 'resize'."
            )
        self.samples = list(samples)
        self.high_bit_norm = high_bit_norm
        self.mask_size_mismatch = mask_size_mismatch

    @classmethod
    def from_folder(
        cls, image_dir: str | os.PathLike, mask_dir: str | os.PathLike | None = None, **kwargs: Any
    ) -> IRSTDDataset:
        """Every image of a folder, with masks from ``mask_dir`` when given (prediction, folders).

        Arguments:
          image_dir (str | PathLike): folder of images.
          mask_dir (str | PathLike | None): folder of masks (``<stem>`` or ``<stem>_pixels0``).
          **kwargs: options of :class:`IRSTDDataset` (``stage``, ``loader_size``, ...).
        Returns:
          IRSTDDataset: one item per image, sorted by name.
        """
        pairs = pair_files(Path(image_dir), None if mask_dir is None else Path(mask_dir))
        samples = [Sample(name, image, mask) for name, (image, mask) in pairs.items()]
        return cls(samples, **kwargs)

    def __len__(self) -> int:
        """Number of items."""
        return len(self.samples)

    def name(self, index: int) -> str:
        """Name of item ``index`` (no extension).

        Arguments:
          index (int): item index.
        Returns:
          str: the name.
        """
        return self.samples[index].name

    def decode(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Read item ``index`` from disk and check that image and mask sizes agree.

        Arguments:
          index (int): item index.
        Returns:
          tuple: image H×W×3 float32 RGB 0–255; mask H×W uint8 {0, 1} or None.
        Raises:
          ImageReadError: a file is missing, corrupt or truncated (the message names it).
          DatasetError: image and mask sizes differ.
        """
        sample = self.samples[index]
        image = read_image(sample.image_path, self.high_bit_norm)
        if sample.mask_path is None:
            return image, None
        mask = read_mask(sample.mask_path)
        if mask.shape == image.shape[:2]:
            return image, mask
        (height, width), (mask_height, mask_width) = image.shape[:2], mask.shape
        same_aspect = abs(height * mask_width - width * mask_height) <= 0.02 * height * mask_width
        if self.mask_size_mismatch != "resize" or not same_aspect:
            raise DatasetError(
                f"image and mask sizes differ: {sample.image_path} is {image.shape[:2]} (H, W) "
                f"but {sample.mask_path} is {mask.shape}. Re-export the mask at the image's size"
                + (
                    ", or set dataset.mask_size_mismatch=resize (same aspect ratio only)."
                    if same_aspect
                    else " (the aspect ratios differ, so it cannot be resized safely)."
                )
            )
        log.warning(
            "%s is %dx%d but its image %s is %dx%d: resizing the mask (mask_size_mismatch=resize)",
            sample.mask_path,
            mask_height,
            mask_width,
            sample.image_path,
            height,
            width,
        )
        resized = cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)
        return image, (resized >= 0.5).astype(np.uint8)
