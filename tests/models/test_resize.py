# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""The network's resize to its internal size: growth unchanged (nearest ×2 of the paper),
antialiased shrinking that keeps small targets, and the traceable version used for export."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from segment_anything.modeling.prompt_encoder import PositionEmbeddingRandom
from torch import nn

from irsam.models import IRSAM
from irsam.models.resize import resize_to_square, traceable_resize_to_square

SIZE = 64
BACKGROUND, TARGET = 40.0, 255.0


def _frame(side: int, top: int, left: int, extent: int = 2) -> torch.Tensor:
    """A 1×3×side×side grey frame with one bright extent×extent target at (top, left)."""
    frame = torch.full((1, 3, side, side), BACKGROUND)
    frame[..., top : top + extent, left : left + extent] = TARGET
    return frame


class _BrightnessEncoder(nn.Module):
    """Stub encoder: the 16×16-pooled brightness of the normalised image as the deep embedding."""

    img_size = SIZE
    shallow_channels = 1

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """B×3×S×S → (B×256×g×g, B×1×g×g) with g = S/16."""
        pooled = F.max_pool2d(x.mean(1, keepdim=True), 16)
        return pooled.expand(-1, 256, -1, -1), pooled


class _ThresholdDecoder(nn.Module):
    """Stub decoder: logits = deep embedding − a threshold above the background, on the 4g grid."""

    edge_branch = False

    def forward(self, *, image_embeddings: torch.Tensor, **_: torch.Tensor) -> dict:
        """B×256×g×g → {"mask_logits": B×1×4g×4g}."""
        level = (BACKGROUND - 117.0) / 57.0 + 0.3  # normalised background grey + a margin
        return {"mask_logits": F.interpolate(image_embeddings[:, :1] - level, scale_factor=4)}


def _brightness_network(resize_mode: str = "nearest") -> IRSAM:
    """An IRSAM composite whose mask logits are positive where the resized image is bright."""
    return IRSAM(
        image_encoder=_BrightnessEncoder(),
        pe_layer=PositionEmbeddingRandom(128),
        no_mask_embed=nn.Embedding(1, 256),
        mask_decoder=_ThresholdDecoder(),
        resize_mode=resize_mode,
    ).eval()


def test_a_small_target_of_a_frame_larger_than_the_internal_size_is_found() -> None:
    """A 2-px target in a 256² frame (4× the internal size) between the rows and columns a
    nearest shrink keeps: the network called directly on the native frame finds it (positive
    logits over it); the same frame shrunk by nearest holds no trace of it."""
    frame = _frame(256, top=1, left=5)
    nearest = F.interpolate(frame, size=(SIZE, SIZE), mode="nearest")
    assert float(nearest.max()) == BACKGROUND, "the target must fall between nearest samples"
    with torch.no_grad():
        logits = _brightness_network()(frame)["mask_logits"]
    assert logits.shape == (1, 1, 256, 256)
    assert float(logits[0, 0, 1, 5]) > 0 and float(logits[0, 0, 200, 200]) < 0
    resized = resize_to_square(frame, SIZE, "nearest")
    assert float(resized.max()) > BACKGROUND + 0.15 * (TARGET - BACKGROUND)


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_growing_is_the_configured_interpolation(mode: str) -> None:
    """Sides up to the internal size grow exactly as F.interpolate with resize_mode does (the
    paper's ×2 nearest upsampling of 32² loader images to 64² included)."""
    align = None if mode == "nearest" else False
    for height, width in ((32, 32), (50, 30), (64, 48)):
        images = torch.rand(2, 3, height, width) * 255
        expected = F.interpolate(images, size=(SIZE, SIZE), mode=mode, align_corners=align)
        assert torch.equal(resize_to_square(images, SIZE, mode), expected)
    square = torch.rand(1, 3, SIZE, SIZE)
    assert resize_to_square(square, SIZE, mode) is square


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_traceable_resize_matches_the_network_resize(mode: str) -> None:
    """The branch-free resize of the export equals the eager one for growing, shrinking and mixed
    sides (exactly for nearest growth, to float rounding otherwise)."""
    for height, width in ((32, 48), (64, 64), (100, 90), (200, 30), (30, 200), (64, 150)):
        images = torch.rand(2, 3, height, width) * 255
        eager = resize_to_square(images, SIZE, mode)
        traced = traceable_resize_to_square(images, SIZE, mode)
        assert eager.shape == traced.shape == (2, 3, SIZE, SIZE)
        torch.testing.assert_close(traced, eager, atol=1e-4, rtol=1e-6)
        if mode == "nearest" and max(height, width) <= SIZE:
            assert torch.equal(traced, eager)


def test_mixed_sides_grow_and_shrink_per_axis() -> None:
    """A 200×32 frame: rows shrink antialiased (a 1-row line keeps some contrast), columns grow
    by nearest (each column doubled)."""
    frame = torch.full((1, 1, 200, 32), BACKGROUND)
    frame[..., 101, :] = TARGET
    resized = resize_to_square(frame, SIZE, "nearest")
    assert resized.shape == (1, 1, SIZE, SIZE)
    assert torch.equal(resized[..., 0::2], resized[..., 1::2])
    assert float(resized.max()) > BACKGROUND + 0.1 * (TARGET - BACKGROUND)
