# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Point-prompt-centric focusing (PPCF): prompt SAM on an L×L crop around each peak and paste
the local mask back into the frame.

Crops are clipped at the frame borders (no padding), exactly like the authors' code; the prompt
is the peak's offset inside the clipped crop. SAM reads points as (x, y) = (column, row). The
authors pass (row, column) instead; ``faithful_point_order=True`` reproduces that (harmless in
the interior where both offsets are L/2, wrong in crops clipped at a border).
"""

from __future__ import annotations

import torch

from irsam.oneshot.backbone import Prompt, SamBackbone
from irsam.oneshot.lfm import window_box


def local_point(
    peak_yx: tuple[int, int], box: tuple[int, int, int, int], faithful_point_order: bool = False
) -> tuple[float, float]:
    """The prompt passed to SAM for a peak inside a clipped crop.

    Arguments:
      peak_yx (tuple[int, int]): (row, column) of the peak in the frame.
      box (tuple[int, int, int, int]): crop (y0, y1, x0, x1), half-open.
      faithful_point_order (bool): return (row, column) as the authors do, instead of (x, y).
    Returns:
      tuple[float, float]: the pair SAM interprets as (x, y) in crop pixels; offsets are clamped
      into the crop.
    """
    y0, y1, x0, x1 = box
    row = min(max(peak_yx[0] - y0, 0), y1 - y0 - 1)
    col = min(max(peak_yx[1] - x0, 0), x1 - x0 - 1)
    return (float(row), float(col)) if faithful_point_order else (float(col), float(row))


def segment_windows(
    backbone: SamBackbone,
    frame: torch.Tensor,
    boxes: list[tuple[int, int, int, int]],
    prompts: list[Prompt],
    chunk_size: int = 32,
    resize_backend: str = "torch",
    size: int | None = None,
) -> list[torch.Tensor]:
    """Segment one crop of a frame per prompt and paste each crop mask back into the frame.

    Arguments:
      backbone (SamBackbone): the SAM backbone.
      frame (torch.Tensor): 3×H×W float RGB 0–255.
      boxes (list[tuple[int, int, int, int]]): (y0, y1, x0, x1) crop per prompt, half-open.
      prompts (list[Prompt]): per crop, an (x, y) point or (x1, y1, x2, y2) box in crop pixels.
      chunk_size (int): crops per encoder call.
      resize_backend (str): ``torch`` or ``pil`` resize of the crops to the encoder input.
      size (int | None): encoder input side of the crops (None: the backbone's; fast mode).
    Returns:
      list[torch.Tensor]: one H×W bool mask per crop, False outside the crop.
    """
    hw = (int(frame.shape[1]), int(frame.shape[2]))
    crops = [frame[:, y0:y1, x0:x1] for y0, y1, x0, x1 in boxes]
    local_masks = backbone.segment_crops(
        crops, [[prompt] for prompt in prompts], chunk_size, resize_backend, size
    )
    masks = []
    for (local,), box in zip(local_masks, boxes):
        y0, y1, x0, x1 = box
        if tuple(local.shape) != (y1 - y0, x1 - x0):
            raise ValueError(
                f"crop mask {tuple(local.shape)} does not match the crop box {box}: the "
                "backbone's segment_crops must return one mask of each crop's size"
            )
        masks.append(torch.zeros(hw, dtype=torch.bool, device=local.device))
        masks[-1][y0:y1, x0:x1] = local.bool()
    return masks


def ppcf_masks(
    backbone: SamBackbone,
    frame: torch.Tensor,
    peaks: list[tuple[int, int, int]],
    *,
    faithful_point_order: bool = False,
    chunk_size: int = 32,
    resize_backend: str = "torch",
    size: int | None = None,
) -> list[torch.Tensor]:
    """PPCF for a list of peaks of one frame: one crop each, segmented around its peak.

    Arguments:
      backbone (SamBackbone): the SAM backbone.
      frame (torch.Tensor): 3×H×W float RGB 0–255.
      peaks (list[tuple[int, int, int]]): (row, column, window side L) per peak.
      faithful_point_order (bool): pass the prompt as (row, column) like the authors' code.
      chunk_size, resize_backend, size: as :func:`segment_windows`.
    Returns:
      list[torch.Tensor]: one H×W bool mask per peak (the crop's mask, pasted back).
    """
    hw = (int(frame.shape[1]), int(frame.shape[2]))
    boxes = [window_box((y, x), window, hw) for y, x, window in peaks]
    points: list[Prompt] = [
        local_point((y, x), box, faithful_point_order) for (y, x, _), box in zip(peaks, boxes)
    ]
    return segment_windows(backbone, frame, boxes, points, chunk_size, resize_backend, size)


def full_frame_masks(
    backbone: SamBackbone,
    frame: torch.Tensor,
    peaks: list[tuple[int, int, int]],
    resize_backend: str = "torch",
) -> list[torch.Tensor]:
    """The ``ppcf=false`` ablation: prompt SAM on the whole frame at each peak (one encoder pass).

    Arguments:
      backbone (SamBackbone): the SAM backbone.
      frame (torch.Tensor): 3×H×W float RGB 0–255.
      peaks (list[tuple[int, int, int]]): (row, column, L) per peak (L is unused).
      resize_backend (str): ``torch`` or ``pil`` resize of the frame to the encoder input.
    Returns:
      list[torch.Tensor]: one H×W bool mask per peak.
    """
    if not peaks:
        return []
    points: list[Prompt] = [(float(x), float(y)) for y, x, _ in peaks]
    return backbone.segment_crops([frame], [points], 1, resize_backend)[0]
