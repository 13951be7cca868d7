# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Batch collation: the batch contract the LightningModule relies on.

A batch is a dict:

* ``image``: FloatTensor B×3×h×w, RGB 0–255 (not normalised), loader size;
* ``mask``: FloatTensor B×1×h×w in [0, 1], loader size (absent without ground truth);
* ``edge``: FloatTensor B×1×h×w in [0, 1], loader size (absent without ground truth);
* ``mask_native``: FloatTensor B×1×Hmax×Wmax, {0, 1} at native size, zero-padded bottom/right
  to the batch maximum (evaluation items with ground truth only);
* ``orig_size``: LongTensor B×2, native (H, W) of each image;
* ``valid_size``: LongTensor B×2, (h, w) of the top-left region of the loader-size image that
  holds picture (crop the logits to it, resize bilinearly to ``orig_size``, threshold);
* ``name``: list[str], image names without extension;
* ``frame_index``: LongTensor B, the frame number of items from a frame stream
  (:mod:`irsam.data.streams`; absent otherwise).

Items of different loader sizes (the ``pad`` evaluation policy on datasets of mixed sizes) are
padded bottom/right to the batch maximum: the image with ``pad_value``, masks with 0;
``valid_size`` still marks the picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

OPTIONAL_KEYS = ("mask", "edge", "mask_native")
"""Keys present only for items with ground truth (and ``mask_native`` only for evaluation)."""


def _pad_stack(tensors: Sequence[torch.Tensor], value: float) -> torch.Tensor:
    """Stack C×h×w tensors, padding each bottom/right to the largest h and w with ``value``."""
    height = max(t.shape[-2] for t in tensors)
    width = max(t.shape[-1] for t in tensors)
    return torch.stack(
        [
            F.pad(t, (0, width - t.shape[-1], 0, height - t.shape[-2]), value=value)
            if t.shape[-2:] != (height, width)
            else t
            for t in tensors
        ]
    )


def collate_irstd(batch: Sequence[dict[str, Any]], pad_value: float = 128.0) -> dict[str, Any]:
    """Collate dataset items into the batch contract (see the module docstring).

    Arguments:
      batch (Sequence[dict]): items from :class:`irsam.data.dataset.IRSTDDatasetBase`.
      pad_value (float): image value for padding items of different sizes (0–255 scale).
    Returns:
      dict[str, Any]: the batch.
    Raises:
      ValueError: the batch is empty, or some items have ground truth and others do not.
    """
    if not batch:
        raise ValueError("cannot collate an empty batch")
    out: dict[str, Any] = {
        "image": _pad_stack([item["image"] for item in batch], pad_value),
        "orig_size": torch.stack([item["orig_size"] for item in batch]).long(),
        "valid_size": torch.stack([item["valid_size"] for item in batch]).long(),
        "name": [item["name"] for item in batch],
    }
    if all("frame_index" in item for item in batch):
        out["frame_index"] = torch.tensor([int(item["frame_index"]) for item in batch])
    for key in OPTIONAL_KEYS:
        present = [key in item for item in batch]
        if all(present):
            out[key] = _pad_stack([item[key] for item in batch], 0.0)
        elif any(present):
            missing = [item["name"] for item in batch if key not in item]
            raise ValueError(
                f"batch mixes items with and without {key!r} (missing for {missing}); give every "
                "image a mask, or none."
            )
    return out
