# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Tiled prediction for frames much larger than the training images.

A frame resized whole to the loader size loses every target narrower than the shrink factor
(a 6000-px frame at a 512 loader size is shrunk about 12×). Tiled prediction cuts the frame
into overlapping windows, runs the network on each window as it saw the training images
(resized to the loader size), and stitches the window logits back at native resolution,
averaging where windows overlap. Targets are labelled on the stitched logits, so a target on a
window border is one target.

:func:`tiled_logits` is the stitching, for any ``forward``; :class:`TiledNetwork` wraps a network
(``images → {"mask_logits": ...}``) into one with the same interface; :class:`ShrinkWarning`
tells, during an untiled prediction, how small a target can be and still survive the shrink.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch.nn import functional as F

from irsam.utils import get_logger

log = get_logger(__name__)

OUTPUT_KEYS = ("mask_logits", "edge_probs")
"""The network outputs :class:`TiledNetwork` stitches (those the network returns)."""

SHRINK_WARNING = 4.0
"""Shrink factor (native frame side / internal side) above which an untiled prediction warns."""


def window_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of the windows covering ``length`` pixels along one axis.

    Windows advance by ``tile − overlap``; the last one ends at the frame's edge (it overlaps
    its neighbour by at least ``overlap``). A frame no longer than ``tile`` is one window.

    Arguments:
      length (int): the frame side.
      tile (int): the window side.
      overlap (int): pixels shared by neighbouring windows, 0 ≤ overlap < tile.
    Returns:
      list[int]: increasing offsets, the first 0 and the last ``max(0, length − tile)``.
    """
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, tile - overlap))
    return [*starts, length - tile]


def _check_tiling(tile: int, overlap: int) -> None:
    """Refuse a window side or overlap that cannot tile a frame."""
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 16:
        raise ValueError(f"tile={tile!r}: give the window side as an integer of at least 16 px")
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap < tile:
        raise ValueError(
            f"overlap={overlap!r}: give an integer from 0 to tile - 1 = {tile - 1} (the pixels "
            "neighbouring windows share)"
        )


def tiled_logits(
    forward: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    tile: int,
    overlap: int,
    *,
    windows_per_call: int = 8,
) -> torch.Tensor:
    """Run ``forward`` on overlapping windows of ``images`` and stitch its output maps.

    Each position's value is the mean over the windows that cover it. Frames no larger than
    ``tile`` along an axis use their full side along it.

    Arguments:
      forward (Callable): N×3×h×w windows → N×C×h×w maps (any float dtype; C = 1 for mask
        logits).
      images (torch.Tensor): B×3×H×W float images, 0–255 RGB.
      tile (int): window side in frame pixels (≥ 16).
      overlap (int): pixels shared by neighbouring windows (0 ≤ overlap < tile).
      windows_per_call (int): window positions per ``forward`` call (each holds B windows).
    Returns:
      torch.Tensor: B×C×H×W float32 stitched maps (B×1×H×W logits) on ``images``' device.
    Raises:
      ValueError: bad ``tile``/``overlap``, images not B×3×H×W, or ``forward`` returning
        another shape than N×C×h×w (with the same C at every call).
    """
    _check_tiling(tile, overlap)
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(
            f"tiled_logits expects B×3×H×W images, got shape {tuple(images.shape)}: add the "
            "batch axis and repeat grey images to 3 channels"
        )
    batch, _, height, width = images.shape
    win_h, win_w = min(tile, height), min(tile, width)
    boxes = [
        (top, left)
        for top in window_starts(height, tile, overlap)
        for left in window_starts(width, tile, overlap)
    ]
    count = torch.zeros(1, 1, height, width, dtype=torch.float32, device=images.device)
    sums: list[torch.Tensor] = []  # the one accumulator, made at the first call (C known)
    step = max(1, int(windows_per_call))
    for first in range(0, len(boxes), step):
        chunk = boxes[first : first + step]
        windows = torch.cat([images[:, :, t : t + win_h, l : l + win_w] for t, l in chunk])
        maps = forward(windows)
        channels = sums[0].shape[1] if sums else (maps.shape[1] if maps.ndim == 4 else 0)
        if maps.ndim != 4 or tuple(maps.shape) != (windows.shape[0], channels, win_h, win_w):
            raise ValueError(
                f"tiled_logits: forward returned shape {tuple(maps.shape)} for windows of shape "
                f"{tuple(windows.shape)}; it must return N×C×h×w maps (N×1×h×w logits), with the "
                "same C at every call"
            )
        if not sums:
            sums.append(images.new_zeros(batch, channels, height, width, dtype=torch.float32))
        for k, (top, left) in enumerate(chunk):
            region = (slice(None), slice(None), slice(top, top + win_h), slice(left, left + win_w))
            sums[0][region] += maps[k * batch : (k + 1) * batch].float()
            count[region] += 1.0
    return sums[0] / count


class TiledNetwork:
    """A network run window by window: the network's interface, frames of any size.

    Each window is resized (bilinearly) to ``window_size``, as the loader resized training
    images, run through ``network``, and its logits are resized back to the window; the windows
    are stitched by :func:`tiled_logits` (edge probabilities too, when the network has them).

    Arguments:
      network (Callable): images N×3×s×s float 0–255 → ``{"mask_logits": N×1×s×s, ...}`` (an
        ``IRSAM`` or an ``OnnxNetwork``).
      tile (int): window side in frame pixels; the native side of the training images keeps
        the training scale.
      overlap (int): pixels shared by neighbouring windows.
      window_size (int | None): side each window is resized to (the loader size the network
        was trained at); None = windows as cut.
      windows_per_call (int): window positions per network call.
    """

    def __init__(
        self,
        network: Callable[[torch.Tensor], dict[str, torch.Tensor]],
        *,
        tile: int,
        overlap: int,
        window_size: int | None = None,
        windows_per_call: int = 8,
    ) -> None:
        _check_tiling(tile, overlap)
        self.network = network
        self.tile = tile
        self.overlap = overlap
        self.window_size = window_size
        self.windows_per_call = windows_per_call
        self._keys: list[str] = []

    def _window_maps(self, windows: torch.Tensor) -> torch.Tensor:
        """Windows N×3×h×w → the network's output maps N×K×h×w (keys in ``_keys``)."""
        size = tuple(windows.shape[-2:])
        side = self.window_size
        if side is not None and size != (side, side):
            windows = F.interpolate(
                windows, size=(side, side), mode="bilinear", align_corners=False
            )
        outputs = self.network(windows)
        self._keys = [key for key in OUTPUT_KEYS if key in outputs]
        maps = torch.cat([outputs[key].float() for key in self._keys], dim=1)
        if tuple(maps.shape[-2:]) != size:
            maps = F.interpolate(maps, size=size, mode="bilinear", align_corners=False)
        return maps

    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """
        Arguments:
          images (torch.Tensor): B×3×H×W float RGB, 0–255, any H and W.
        Returns:
          dict[str, torch.Tensor]: ``"mask_logits"`` B×1×H×W float32 stitched logits and, when
            the network has an edge branch, ``"edge_probs"`` B×1×H×W stitched probabilities.
        """
        maps = tiled_logits(
            self._window_maps,
            images,
            self.tile,
            self.overlap,
            windows_per_call=self.windows_per_call,
        )
        return {key: maps[:, k : k + 1] for k, key in enumerate(self._keys)}


def shrink_factor(native: tuple[int, int], loader: tuple[int, int], encoder_size: int) -> float:
    """How many times a frame is shrunk on its way to the network's internal grid.

    Arguments:
      native (tuple[int, int]): the frame's (H, W).
      loader (tuple[int, int]): the (h, w) its picture has at the loader size.
      encoder_size (int): the network's internal side S (a loader side above S shrinks again).
    Returns:
      float: the largest per-axis factor, 1.0 or more when the frame is not shrunk.
    """
    to_loader = max(native[0] / loader[0], native[1] / loader[1])
    return max(1.0, to_loader * max(1.0, max(loader) / encoder_size))


def shrink_warning(native: tuple[int, int], factor: float) -> str | None:
    """The warning for a frame shrunk by more than :data:`SHRINK_WARNING` times, else None.

    Arguments:
      native (tuple[int, int]): the frame's (H, W) in pixels.
      factor (float): its :func:`shrink_factor`.
    Returns:
      str | None: the message, naming the factor and the smallest target side that survives.
    """
    if factor <= SHRINK_WARNING:
        return None
    return (
        f"{native[0]}×{native[1]} frames are shrunk {factor:.1f}× before the network: targets "
        f"narrower than about {math.ceil(factor)} px may vanish. Predict with tile=<native side "
        "of the training images> overlap=<px> (tiled prediction) to keep them"
    )


class ShrinkWarning(L.Callback):
    """Logs :func:`shrink_warning` once per frame size during an untiled prediction or test.

    Arguments:
      encoder_size (int): the network's internal side S.
    """

    def __init__(self, encoder_size: int) -> None:
        self.encoder_size = int(encoder_size)
        self._seen: set[tuple[int, ...]] = set()

    def _check(self, batch: dict[str, Any]) -> None:
        """Warn once for each new (frame size, loader size) of ``batch``."""
        for native, loader in zip(batch["orig_size"].tolist(), batch["valid_size"].tolist()):
            key = (*native, *loader)
            if key in self._seen:
                continue
            self._seen.add(key)
            factor = shrink_factor(
                (native[0], native[1]), (loader[0], loader[1]), self.encoder_size
            )
            message = shrink_warning((native[0], native[1]), factor)
            if message:
                log.warning("%s", message)

    def on_predict_batch_start(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Check the frame sizes of a prediction batch."""
        self._check(batch)

    def on_test_batch_start(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Check the frame sizes of a scored prediction batch."""
        self._check(batch)
