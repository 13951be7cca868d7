# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""TinyViT image encoder with MobileSAM's parameter names (docs/model.md §2.1, §7).

Written for this project after the TinyViT paper (Wu et al., ECCV 2022) and MobileSAM's
``vit_t`` layout, so ``mobile_sam.pt`` loads key for key. Differences from MobileSAM: no
ImageNet head is built, the token grid follows the input size instead of a fixed 64×64, optional
WPMD blocks sit on the stage outputs, and the forward returns ``(deep, shallow)``.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from irsam.models.layers import Encoded, LayerNorm2d, checked_wpmd, run_block


def tiny_vit_stage_channels(embed_dims: Sequence[int]) -> tuple[int, ...]:
    """Channel widths of the TinyViT stage outputs, the WPMD slots (after each stage's merging).

    Arguments:
      embed_dims (Sequence[int]): channels of the stages.
    Returns:
      tuple[int, ...]: width of the output of stage i: ``embed_dims[i + 1]``, the last stage's own.
    """
    return (*embed_dims[1:], embed_dims[-1])


class _ConvBN(nn.Sequential):
    """Bias-free conv + BatchNorm (``c``, ``bn``), one folded conv while the BN is in eval mode."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B×C_in×H×W → B×C_out×H'×W'."""
        conv, bn = self.c, self.bn
        if bn.training or bn.running_var is None:
            return bn(conv(x))
        scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
        weight = conv.weight * scale.view(-1, 1, 1, 1).to(conv.weight.dtype)
        bias = bn.bias - bn.running_mean * scale
        return F.conv2d(
            x, weight, bias.to(weight.dtype), conv.stride, conv.padding, conv.dilation, conv.groups
        )


def _conv_bn(
    in_chans: int,
    out_chans: int,
    kernel_size: int = 1,
    stride: int = 1,
    groups: int = 1,
    bn_weight_init: float = 1.0,
) -> _ConvBN:
    """Bias-free conv followed by BatchNorm (:class:`_ConvBN`, keys ``c.*`` and ``bn.*``)."""
    bn = nn.BatchNorm2d(out_chans)
    nn.init.constant_(bn.weight, bn_weight_init)
    nn.init.zeros_(bn.bias)
    conv = nn.Conv2d(
        in_chans, out_chans, kernel_size, stride, kernel_size // 2, groups=groups, bias=False
    )
    return _ConvBN(OrderedDict(c=conv, bn=bn))


def _patch_merging(in_chans: int, out_chans: int, stride: int) -> nn.Sequential:
    """1×1 conv, GELU, depthwise 3×3 (stride ``stride``), GELU, 1×1 conv; on B×C×H×W maps."""
    return nn.Sequential(
        OrderedDict(
            conv1=_conv_bn(in_chans, out_chans),
            act1=nn.GELU(),
            conv2=_conv_bn(out_chans, out_chans, 3, stride, groups=out_chans),
            act2=nn.GELU(),
            conv3=_conv_bn(out_chans, out_chans),
        )
    )


class _MBConv(nn.Module):
    """Inverted residual: 1×1 expand, GELU, dw 3×3, GELU, 1×1 project (BN γ = 0), +x, GELU."""

    def __init__(self, *, chans: int, expand_ratio: float) -> None:
        super().__init__()
        hidden = int(chans * expand_ratio)
        self.conv1 = _conv_bn(chans, hidden)
        self.act1 = nn.GELU()
        self.conv2 = _conv_bn(hidden, hidden, 3, groups=hidden)
        self.act2 = nn.GELU()
        self.conv3 = _conv_bn(hidden, chans, bn_weight_init=0.0)
        self.act3 = nn.GELU()

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        """B×C×H×W → B×C×H×W (``hw`` unused; it keeps the block signature uniform)."""
        y = self.act2(self.conv2(self.act1(self.conv1(x))))
        return self.act3(self.conv3(y) + x)


class _WindowAttention(nn.Module):
    """Multi-head attention inside one window, with one learned bias per head and (|dy|, |dx|)."""

    def __init__(self, *, dim: int, num_heads: int, window_size: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(
                f"TinyViT stage width {dim} is not divisible by its num_heads {num_heads}: "
                "choose a head count that divides the width"
            )
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        points = list(itertools.product(range(window_size), range(window_size)))
        offsets: dict[tuple[int, int], int] = {}
        idxs = []
        for p1 in points:
            for p2 in points:
                offset = (abs(p1[0] - p2[0]), abs(p1[1] - p2[1]))
                idxs.append(offsets.setdefault(offset, len(offsets)))
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, len(offsets)))
        n = len(points)
        self.register_buffer(
            "attention_bias_idxs", torch.tensor(idxs, dtype=torch.long).view(n, n), persistent=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B'×N×C window tokens (N = window²) → B'×N×C."""
        return self.proj(self.attend(self.qkv(self.norm(x))))

    def attend(self, qkv: torch.Tensor) -> torch.Tensor:
        """The attention core, between ``qkv`` and ``proj``.

        Arguments:
          qkv (torch.Tensor): B'×N×3C projected window tokens (N = window²).
        Returns:
          torch.Tensor: B'×N×C, the heads' outputs concatenated (before ``proj``).
        """
        b, n, _ = qkv.shape
        qkv = qkv.view(b, n, self.num_heads, 3 * self.head_dim)
        q, k, v = qkv.permute(0, 2, 1, 3).split(self.head_dim, dim=-1)
        bias = self.attention_biases[:, self.attention_bias_idxs].to(q.dtype)
        if torch.is_grad_enabled() and (q.requires_grad or bias.requires_grad):
            # The fused CPU/GPU kernels give no gradient for a float mask: plain attention.
            attn = (q * self.head_dim**-0.5) @ k.transpose(-2, -1)
            attn += bias  # in place: the product is not needed for its backward
            out = attn.softmax(dim=-1) @ v
        else:
            # A 4-D mask lets scaled_dot_product_attention pick its fused (flash) kernel.
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.unsqueeze(0))
        return out.transpose(1, 2).reshape(b, n, -1)


class _TinyViTBlock(nn.Module):
    """x + WindowAttention(LN x); depthwise 3×3 conv + BN (no residual); x + MLP(LN x)."""

    def __init__(
        self, *, dim: int, num_heads: int, window_size: int, mlp_ratio: float, local_conv_size: int
    ) -> None:
        super().__init__()
        self.window_size = window_size
        self.attn = _WindowAttention(dim=dim, num_heads=num_heads, window_size=window_size)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(
            OrderedDict(
                norm=nn.LayerNorm(dim),
                fc1=nn.Linear(dim, hidden),
                act=nn.GELU(),
                fc2=nn.Linear(hidden, dim),
            )
        )
        self.local_conv = _conv_bn(dim, dim, local_conv_size, groups=dim)

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        """B×L×C tokens on an H×W grid (``hw``) → B×L×C."""
        h, w = hw
        b, length, c = x.shape
        if length != h * w:
            raise ValueError(
                f"a TinyViT block on a {h}×{w} grid expects {h * w} tokens, got {length}: pass "
                "the grid (hw) the tokens were flattened from"
            )
        ws = self.window_size
        pad_b, pad_r = (ws - h % ws) % ws, (ws - w % ws) % ws
        nh, nw = (h + pad_b) // ws, (w + pad_r) // ws
        attn = self.attn
        # LayerNorm and qkv run on the real tokens only. A zero padding token would leave the
        # LayerNorm as its bias, so the padding is filled with qkv(norm.bias): the same windows
        # as padding the input, without projecting the padding (up to 20 % of the tokens).
        qkv = attn.qkv(attn.norm(x)).view(b, h, w, -1)
        if pad_b or pad_r:
            canvas = attn.qkv(attn.norm.bias).expand(b, h + pad_b, w + pad_r, -1).clone()
            canvas[:, :h, :w] = qkv
            qkv = canvas
        qkv = qkv.view(b, nh, ws, nw, ws, 3 * c).transpose(2, 3).reshape(b * nh * nw, ws * ws, -1)
        y = attn.attend(qkv)
        y = y.view(b, nh, nw, ws, ws, c).transpose(2, 3).reshape(b, nh * ws, nw * ws, c)
        x = x + attn.proj(y[:, :h, :w].reshape(b, length, c))
        x = self.local_conv(x.transpose(1, 2).reshape(b, c, h, w))
        x = x.flatten(2).transpose(1, 2)
        return x + self.mlp(x)


class TinyViTEncoder(nn.Module):
    """TinyViT (MobileSAM ``vit_t``) image encoder returning the deep and the shallow embedding.

    Parameter names equal those of ``mobile_sam.pt`` under ``image_encoder.`` (without the
    ImageNet head); WPMD blocks, when given, add ``wpmd.<stage>.*``.
    """

    def __init__(
        self,
        *,
        img_size: int = 1024,
        in_chans: int = 3,
        embed_dims: Sequence[int] = (64, 128, 160, 320),
        depths: Sequence[int] = (2, 2, 6, 2),
        num_heads: Sequence[int] = (2, 4, 5, 10),
        window_sizes: Sequence[int] = (7, 7, 14, 7),
        mlp_ratio: float = 4.0,
        mbconv_expand_ratio: float = 4.0,
        local_conv_size: int = 3,
        out_chans: int = 256,
        shallow_stage: int = 1,
        wpmd: nn.ModuleDict | None = None,
        grad_checkpointing: bool = False,
        deep_only: bool = False,
    ) -> None:
        """
        Arguments:
          img_size (int): internal input resolution S (square); the embedding grid is S/16.
          in_chans (int): input channels (3, RGB).
          embed_dims (Sequence[int]): channels of the four stages.
          depths (Sequence[int]): blocks per stage (stage 0 = MBConv, others = TinyViT blocks).
          num_heads (Sequence[int]): attention heads per stage (stage 0's value is unused).
          window_sizes (Sequence[int]): attention window per stage (stage 0's value is unused).
          mlp_ratio (float): MLP hidden width / dim in the TinyViT blocks.
          mbconv_expand_ratio (float): MBConv expansion ratio.
          local_conv_size (int): kernel of the depthwise conv between attention and MLP.
          out_chans (int): neck output channels (256 for SAM's decoder).
          shallow_stage (int): stage whose output (after its patch merging and WPMD) is the
            shallow tap; stage 1 gives 160 channels at S/16.
          wpmd (nn.ModuleDict | None): WPMD blocks keyed by stage index (``"0"``..``"3"``),
            applied to that stage's output map.
          grad_checkpointing (bool): recompute each block in the backward pass (training only).
          deep_only (bool): return only the deep embedding (for segment-anything's ``Sam``).
        """
        super().__init__()
        n = len(embed_dims)
        if not len(depths) == len(num_heads) == len(window_sizes) == n:
            raise ValueError(
                f"TinyViT per-stage lists differ in length: embed_dims {n}, depths "
                f"{len(depths)}, num_heads {len(num_heads)}, window_sizes {len(window_sizes)}: "
                "give one value per stage in each"
            )
        if not 0 <= shallow_stage < n - 1:
            raise ValueError(
                f"shallow_stage={shallow_stage} must be in [0, {n - 2}] (a stage before the last)"
            )
        self.img_size = img_size
        self.embed_dims = tuple(embed_dims)
        self.depths = tuple(depths)
        self.shallow_stage = shallow_stage
        self.shallow_channels = embed_dims[shallow_stage + 1]
        self.out_chans = out_chans
        self.grad_checkpointing = grad_checkpointing
        self.deep_only = deep_only

        stem = embed_dims[0]
        self.patch_embed = nn.Sequential(
            OrderedDict(
                seq=nn.Sequential(
                    _conv_bn(in_chans, stem // 2, 3, 2), nn.GELU(), _conv_bn(stem // 2, stem, 3, 2)
                )
            )
        )
        self.layers = nn.ModuleList()
        for i in range(n):
            if i == 0:
                blocks = [
                    _MBConv(chans=embed_dims[0], expand_ratio=mbconv_expand_ratio)
                    for _ in range(depths[0])
                ]
            else:
                blocks = [
                    _TinyViTBlock(
                        dim=embed_dims[i],
                        num_heads=num_heads[i],
                        window_size=window_sizes[i],
                        mlp_ratio=mlp_ratio,
                        local_conv_size=local_conv_size,
                    )
                    for _ in range(depths[i])
                ]
            stage = nn.ModuleDict({"blocks": nn.ModuleList(blocks)})
            if i < n - 1:
                # The last merging only widens the channels, so the total stride stays 16.
                stride = 1 if i == n - 2 else 2
                stage["downsample"] = _patch_merging(embed_dims[i], embed_dims[i + 1], stride)
            self.layers.append(stage)
        self.neck = nn.Sequential(
            nn.Conv2d(embed_dims[-1], out_chans, 1, bias=False),
            LayerNorm2d(out_chans),
            nn.Conv2d(out_chans, out_chans, 3, padding=1, bias=False),
            LayerNorm2d(out_chans),
        )
        self.wpmd = checked_wpmd(wpmd, tiny_vit_stage_channels(embed_dims), "stage")
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        """TinyViT init: trunc-normal (std 0.02) Linear weights, zero biases, unit LayerNorms."""
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    @property
    def num_lr_layers(self) -> int:
        """Number of layer-decay levels: the stem (0), one per block, then the neck (top)."""
        return sum(self.depths) + 1

    def lr_layer_id(self, name: str) -> int:
        """Layer-decay level of a parameter.

        Arguments:
          name (str): parameter name relative to this encoder, e.g.
            ``"layers.2.blocks.3.attn.qkv.weight"``.
        Returns:
          int: 0 for the stem, 1..sum(depths) for blocks (a stage's patch merging shares the level
            of its last block), ``num_lr_layers`` for the neck and WPMD (full learning rate).
        """
        parts = name.split(".")
        if parts[0] == "patch_embed":
            return 0
        if parts[0] == "layers":
            stage = int(parts[1])
            offset = sum(self.depths[:stage])
            if parts[2] == "blocks":
                return offset + int(parts[3]) + 1
            return offset + self.depths[stage]
        return self.num_lr_layers

    def forward(self, x: torch.Tensor) -> Encoded:
        """
        Arguments:
          x (torch.Tensor): B×3×S×S normalised RGB images (S = ``img_size`` in the normal case;
            any size works, the grid follows it).
        Returns:
          (torch.Tensor, torch.Tensor): deep embedding B×256×S/16×S/16 and shallow embedding
            B×``shallow_channels``×S/16×S/16; only the deep embedding when ``deep_only``.
        """
        if x.ndim != 4:
            raise ValueError(
                f"TinyViT expects B×3×H×W images, got shape {tuple(x.shape)}: add the batch "
                "axis (images[None])"
            )
        x = self.patch_embed(x)
        b, _, h, w = x.shape
        shallow: torch.Tensor | None = None
        for i, stage in enumerate(self.layers):
            if i > 0:
                x = x.flatten(2).transpose(1, 2)
            for block in stage["blocks"]:
                x = run_block(self, block, x, (h, w))
            if i > 0:
                x = x.transpose(1, 2).reshape(b, -1, h, w)
            if "downsample" in stage:
                x = stage["downsample"](x)
                h, w = x.shape[-2:]
            if str(i) in self.wpmd:
                x = self.wpmd[str(i)](x)
            if i == self.shallow_stage:
                shallow = x
        deep = self.neck(x)
        if self.deep_only:
            return deep
        return deep, shallow  # set: shallow_stage is a stage before the last
