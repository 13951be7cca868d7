# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""The CPU speed-ups of irsam/models equal the plain computations they replace (float tolerance):
the fused LayerNorm2d, BatchNorm folded into convolutions in eval mode, and TinyViT attention
projecting only the real tokens (padding filled with qkv of the LayerNorm bias)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from segment_anything.modeling.common import LayerNorm2d as SamLayerNorm2d

from irsam.models.layers import LayerNorm2d
from irsam.models.tiny_vit import _conv_bn, _TinyViTBlock


@pytest.mark.parametrize("channels_last", [False, True])
def test_layernorm2d_matches_segment_anything(channels_last: bool) -> None:
    """Same outputs and gradients as SAM's LayerNorm2d (whose parameters it shares)."""
    torch.manual_seed(0)
    ours, sam = LayerNorm2d(6), SamLayerNorm2d(6)
    with torch.no_grad():
        sam.weight.uniform_(0.5, 1.5)
        sam.bias.uniform_(-0.5, 0.5)
    ours.load_state_dict(sam.state_dict())
    x = torch.randn(2, 6, 5, 7) * 3 + 1
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    grad = torch.randn(2, 6, 5, 7)
    outputs = []
    for module in (ours, sam):
        inp = x.clone().requires_grad_()
        out = module(inp)
        out.backward(grad)
        outputs.append((out.detach(), inp.grad, module.weight.grad, module.bias.grad))
    for a, b in zip(*outputs, strict=True):
        assert torch.allclose(a, b, atol=1e-5), (a - b).abs().max()


@pytest.mark.parametrize(("kernel", "groups", "stride"), [(1, 1, 1), (3, 4, 1), (3, 1, 2)])
def test_conv_bn_folded_in_eval_equals_conv_then_bn(kernel: int, groups: int, stride: int) -> None:
    """Eval mode folds BN into the conv: equal to conv then BN, with gradients to both."""
    torch.manual_seed(0)
    block = _conv_bn(4, 8, kernel, stride, groups=groups)
    with torch.no_grad():
        block.bn.running_mean.normal_()
        block.bn.running_var.uniform_(0.5, 2.0)
        block.bn.weight.uniform_(0.5, 1.5)
        block.bn.bias.normal_()
    block.eval()
    x = torch.randn(2, 4, 9, 9, requires_grad=True)
    folded = block(x)
    reference = block.bn(block.c(x))
    assert torch.allclose(folded, reference, atol=1e-5)
    grads = torch.autograd.grad(folded.sum(), [x, block.c.weight, block.bn.weight])
    ref_grads = torch.autograd.grad(reference.sum(), [x, block.c.weight, block.bn.weight])
    for a, b in zip(grads, ref_grads, strict=True):
        assert torch.allclose(a, b, atol=1e-4), (a - b).abs().max()
    block.train()  # training mode: batch statistics, not the running ones
    assert not torch.allclose(block(x), folded, atol=1e-3)


def _padded_input_reference(block: _TinyViTBlock, x: torch.Tensor, hw: tuple) -> torch.Tensor:
    """TinyViT's window attention as written in the paper: zero-pad the token map, run the whole
    attention module (LayerNorm, qkv, attention, proj) per window, crop; then conv and MLP."""
    h, w = hw
    b, length, c = x.shape
    ws = block.window_size
    pad_b, pad_r = (ws - h % ws) % ws, (ws - w % ws) % ws
    y = F.pad(x.view(b, h, w, c), (0, 0, 0, pad_r, 0, pad_b))
    nh, nw = (h + pad_b) // ws, (w + pad_r) // ws
    y = y.view(b, nh, ws, nw, ws, c).transpose(2, 3).reshape(b * nh * nw, ws * ws, c)
    y = block.attn(y)
    y = y.view(b, nh, nw, ws, ws, c).transpose(2, 3).reshape(b, nh * ws, nw * ws, c)
    x = x + y[:, :h, :w].reshape(b, length, c)
    x = block.local_conv(x.transpose(1, 2).reshape(b, c, h, w)).flatten(2).transpose(1, 2)
    return x + block.mlp(x)


@pytest.mark.parametrize("hw", [(9, 11), (7, 7)])
@pytest.mark.parametrize("grad", [True, False])
def test_tinyvit_block_equals_padded_input_attention(hw: tuple, grad: bool) -> None:
    """Projecting only the real tokens (and filling the padding with qkv(norm.bias)) gives the
    block output of padding the input, in the training (plain) and the inference (fused SDPA)
    attention paths."""
    torch.manual_seed(0)
    block = _TinyViTBlock(dim=16, num_heads=2, window_size=4, mlp_ratio=2.0, local_conv_size=3)
    with torch.no_grad():
        block.attn.attention_biases.normal_()
        block.attn.norm.bias.normal_()
    block.eval()
    x = torch.randn(2, hw[0] * hw[1], 16)
    with torch.set_grad_enabled(grad):
        out, ref = block(x, hw), _padded_input_reference(block, x, hw)
    assert out.shape == x.shape
    assert torch.allclose(out, ref, atol=1e-5), (out - ref).abs().max()
