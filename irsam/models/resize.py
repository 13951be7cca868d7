# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""The network's resize of its input to the internal S×S resolution, one rule per axis.

An axis shorter than S (or equal) grows with the configured ``resize_mode``: ``nearest`` (the
paper's ×2 nearest upsampling of 512² loader images) or ``bilinear``. An axis longer than S
shrinks with antialiased bilinear filtering (each output pixel averages the input pixels under
it, as PIL's bilinear resize does), so a target a few pixels wide keeps part of its contrast
instead of vanishing between the pixels a nearest resize picks. :func:`resize_to_square` is the
network's eager version; :func:`traceable_resize_to_square` computes the same values without
branching on the input size, for graphs exported with dynamic height and width.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

RESIZE_MODES = ("nearest", "bilinear")


def _grow(images: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """Resize with ``mode`` (the rule of axes that do not shrink)."""
    align = None if mode == "nearest" else False
    return F.interpolate(images, size=size, mode=mode, align_corners=align)


def _shrink(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased bilinear resize (the rule of axes that shrink)."""
    return F.interpolate(images, size=size, mode="bilinear", antialias=True, align_corners=False)


def resize_to_square(images: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    """Resize images to size×size: growing axes with ``mode``, shrinking axes antialiased.

    Arguments:
      images (torch.Tensor): B×C×H×W float images (any value scale).
      size (int): the internal side S.
      mode (str): ``"nearest"`` or ``"bilinear"``, the rule of axes with H (or W) ≤ S.
    Returns:
      torch.Tensor: B×C×S×S; ``images`` itself when already S×S. With H, W ≤ S this is
      ``F.interpolate(images, (S, S), mode)``.
    """
    height, width = images.shape[-2:]
    if height <= size and width <= size:
        return images if (height, width) == (size, size) else _grow(images, (size, size), mode)
    shrunk = _shrink(images, (min(height, size), min(width, size)))
    if shrunk.shape[-2:] == (size, size):
        return shrunk
    return _grow(shrunk, (size, size), mode)


def nearest_indices(length: int | torch.SymInt, size: int) -> torch.Tensor:
    """Source rows (or columns) of PyTorch's nearest resize from ``length`` to ``size``.

    Same float32 rule as ``F.interpolate(mode="nearest")``: ``floor(i · (length / size))``,
    clamped to ``length − 1``. Written as plain tensor ops, an exported graph gathers exactly the
    pixels torch picks (the exporter's ONNX ``Resize`` rounds some ratios, e.g. 50 → 64, to the
    neighbouring pixel).

    Arguments:
      length (int | SymInt): input length (may be symbolic while exporting).
      size (int): output length.
    Returns:
      torch.Tensor: ``size`` int64 indices into the input.
    """
    scale = torch.scalar_tensor(length, dtype=torch.float32) / size
    index = (torch.arange(size, dtype=torch.float32) * scale).floor().long()
    return index.clamp(max=length - 1)


def _resize_axis(images: torch.Tensor, dim: int, size: int, mode: str) -> torch.Tensor:
    """Resize one axis (2 = H, 3 = W) to ``size``; both rules computed, one selected."""
    length = images.shape[dim]
    target = [images.shape[2], images.shape[3]]
    target[dim - 2] = size
    shrunk = _shrink(images, (target[0], target[1]))
    if mode == "nearest":
        grown = images.index_select(dim, nearest_indices(length, size).to(images.device))
    else:
        grown = _grow(images, (target[0], target[1]), mode)
    longer = torch.scalar_tensor(length, dtype=torch.float32, device=images.device) > size
    return torch.where(longer, shrunk, grown)


def traceable_resize_to_square(images: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    """:func:`resize_to_square` without Python branches on H and W, for exported graphs.

    Each axis is resized by both rules and the one its length calls for is selected in the
    graph, so an export with dynamic height and width serves every frame size. The values equal
    :func:`resize_to_square`'s (exactly for nearest growth; up to float rounding otherwise).

    Arguments:
      images (torch.Tensor): B×C×H×W float images.
      size (int): the internal side S.
      mode (str): ``"nearest"`` or ``"bilinear"``.
    Returns:
      torch.Tensor: B×C×S×S.
    """
    return _resize_axis(_resize_axis(images, 2, size, mode), 3, size, mode)
