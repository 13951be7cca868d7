# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Small layers and helpers shared by the encoders and the decoder."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

Encoded = torch.Tensor | tuple[torch.Tensor, torch.Tensor]  # (deep, shallow) or deep alone


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of a B×C×H×W map (SAM's ``LayerNorm2d``, same parameters).

    Runs ``F.layer_norm`` on the channels-last view instead of SAM's chain of mean / variance
    ops: one fused pass (several times faster on CPU, forward and backward) with the same result
    up to float rounding. The output is channels-last in memory (shape B×C×H×W as before).
    """

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        """
        Arguments:
          num_channels (int): C.
          eps (float): added to the variance (SAM: 1e-6).
        """
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        Arguments:
          x (torch.Tensor): B×C×H×W, any memory layout.
        Returns:
          torch.Tensor: B×C×H×W, normalised over C per pixel, then ``weight·x + bias``.
        """
        y = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)


def wpmd_width(index: int | str, widths: Sequence[int], unit: str) -> int:
    """Channel width of an encoder's WPMD slot (stage or block output), checking that it exists.

    Arguments:
      index (int | str): the slot (a key of the encoder's ``wpmd`` dict).
      widths (Sequence[int]): the width of every slot of the encoder.
      unit (str): ``"stage"`` or ``"block"``, named in the error.
    Returns:
      int: ``widths[index]``.
    """
    if not 0 <= int(index) < len(widths):
        raise ValueError(
            f"WPMD {unit} index {index} is out of range [0, {len(widths)}) (model.net.wpmd_{unit}s)"
        )
    return widths[int(index)]


def checked_wpmd(wpmd: nn.ModuleDict | None, widths: Sequence[int], unit: str) -> nn.ModuleDict:
    """An encoder's WPMD blocks, each checked against the width of its slot.

    Arguments:
      wpmd (nn.ModuleDict | None): blocks keyed by slot index; None = no WPMD.
      widths, unit: as :func:`wpmd_width`.
    Returns:
      nn.ModuleDict: ``wpmd``, or an empty one for None.
    """
    blocks = wpmd if wpmd is not None else nn.ModuleDict()
    for key, block in blocks.items():
        width = wpmd_width(key, widths, unit)
        if block.channels != width:
            raise ValueError(
                f"the WPMD block at {unit} {key} has {block.channels} channels, the {unit} "
                f"outputs {width}: build it with channels={width}"
            )
    return blocks


def run_block(encoder: nn.Module, block: nn.Module, *inputs: object) -> torch.Tensor:
    """Run an encoder block, recomputing it in the backward when the encoder's
    ``grad_checkpointing`` is on and it trains with gradients enabled.

    Arguments:
      encoder (nn.Module): the encoder (``grad_checkpointing``, ``training``).
      block (nn.Module): the block.
      *inputs (object): the block's inputs (e.g. B×H×W×C tokens).
    Returns:
      torch.Tensor: ``block(*inputs)``.
    """
    if encoder.grad_checkpointing and encoder.training and torch.is_grad_enabled():
        return checkpoint(block, *inputs, use_reentrant=False)
    return block(*inputs)
