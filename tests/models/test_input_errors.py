# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Wrong inputs to the network's modules raise ValueError/TypeError naming the shape or argument
and the fix (exceptions, so that ``python -O`` keeps them)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from irsam.models import build_irsam_tiny
from irsam.models.layers import checked_wpmd
from irsam.models.tiny_vit import TinyViTEncoder
from irsam.models.vit_encoder import ViTEncoder
from irsam.models.wpmd import WPMD


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return build_irsam_tiny(encoder_size=64).eval()


def test_network_inputs(net) -> None:
    with pytest.raises(ValueError, match=r"B×3×H×W.*\(1, 32, 32\).*repeat grey"):
        net(torch.rand(1, 32, 32))
    with pytest.raises(ValueError, match=r"\(1, 1, 32, 32\)"):
        net(torch.rand(1, 1, 32, 32))
    with pytest.raises(TypeError, match=r"torch.uint8.*images.float\(\)"):
        net(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"TinyViT expects B×3×H×W.*\(3, 64, 64\)"):
        net.image_encoder(torch.rand(3, 64, 64))


def test_decoder_inputs(net) -> None:
    decoder = net.mask_decoder
    grid = torch.rand(1, 256, 4, 4)
    common = {
        "image_pe": torch.rand(1, 256, 4, 4),
        "dense_prompt_embeddings": torch.rand(1, 256, 1, 1),
    }
    with pytest.raises(ValueError, match=r"B×256×g×g.*\(1, 128, 4, 4\).*out_chans=256"):
        decoder(image_embeddings=torch.rand(1, 128, 4, 4), **common)
    with pytest.raises(ValueError, match="needs the shallow embedding"):
        decoder(image_embeddings=grid, **common)
    with pytest.raises(
        ValueError, match=r"grid \(2, 2\) differs from the deep embedding's \(4, 4\)"
    ):
        decoder(image_embeddings=grid, shallow_embeddings=torch.rand(1, 160, 2, 2), **common)


def test_wpmd_and_encoder_construction() -> None:
    block = WPMD(channels=8)
    with pytest.raises(ValueError, match=r"B×8×H×W maps.*\(1, 4, 6, 6\)"):
        block(torch.rand(1, 4, 6, 6))
    with pytest.raises(ValueError, match=r"even H and W, got 5×6"):
        block.dwt(torch.rand(1, 8, 5, 6))
    with pytest.raises(ValueError, match=r"4 sub-bands.*\(1, 8, 3, 3, 3\)"):
        block.idwt(torch.rand(1, 8, 3, 3, 3))
    with pytest.raises(ValueError, match=r"has 8 channels, the stage outputs 16: .*channels=16"):
        checked_wpmd(nn.ModuleDict({"0": block}), (16, 32), "stage")
    with pytest.raises(ValueError, match=r"global_attn_indexes \[1, 4\].*\[0, 3\]"):
        ViTEncoder(
            img_size=64,
            pretrain_img_size=64,
            embed_dim=32,
            depth=4,
            num_heads=2,
            global_attn_indexes=(1, 4),
        )
    with pytest.raises(ValueError, match=r"shallow_stage=3 must be in \[0, 2\]"):
        TinyViTEncoder(img_size=64, shallow_stage=3)
