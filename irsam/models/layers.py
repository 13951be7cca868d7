# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Small layers shared by the encoders and the decoder."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


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
