# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Triple-level ensemble (TLE): fuse the candidate masks of all window sizes by voting.

As coded by the authors: every peak at every scale contributes one candidate mask; candidates
with area ≥ ``max_area_ratio · H · W`` are dropped as over-segmentation; pixels with at least
``min_votes`` votes are target. With one candidate per scale and ``min_votes=2`` this is the
paper's per-pixel mode of three masks.
"""

from __future__ import annotations

import torch


def area_threshold(hw: tuple[int, int], max_area_ratio: float | None) -> float | None:
    """The area filter's threshold in pixels.

    Arguments:
      hw (tuple[int, int]): frame size (H, W).
      max_area_ratio (float | None): fraction of the frame; None disables the filter.
    Returns:
      float | None: ``max_area_ratio · H · W`` (e.g. 51.84 px at 480×720 for 1.5e-4).
    """
    return None if max_area_ratio is None else max_area_ratio * hw[0] * hw[1]


def tle_vote(
    masks: list[torch.Tensor],
    hw: tuple[int, int],
    *,
    min_votes: int = 2,
    max_area_ratio: float | None = 1.5e-4,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Area-filter the candidate masks, then keep pixels with at least ``min_votes`` votes.

    Arguments:
      masks (list[torch.Tensor]): M candidate H×W bool masks (any number, possibly none).
      hw (tuple[int, int]): frame size (H, W).
      min_votes (int): votes needed per pixel.
      max_area_ratio (float | None): candidates with area ≥ ratio · H · W are dropped.
    Returns:
      tuple[torch.Tensor, torch.Tensor]: the H×W bool fused mask, and an M bool tensor telling
      which candidates passed the area filter.
    """
    if not masks:
        return torch.zeros(hw, dtype=torch.bool), torch.zeros(0, dtype=torch.bool)
    stack = torch.stack([m.bool() for m in masks])
    threshold = area_threshold(hw, max_area_ratio)
    areas = stack.flatten(1).sum(1)
    keep = torch.ones_like(areas, dtype=torch.bool) if threshold is None else areas < threshold
    votes = stack[keep].sum(0, dtype=torch.int32)
    return votes >= min_votes, keep
