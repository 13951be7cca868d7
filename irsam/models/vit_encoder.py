# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""SAM ViT-B/L/H image encoder (segment-anything's ``ImageEncoderViT``) with a shallow tap.

The module subclasses segment-anything's encoder, so parameter names equal those of
``sam_vit_*.pth`` under ``image_encoder.``. Parameters keep the pretraining layout (absolute
position embedding for ``pretrain_img_size``); another internal resolution resizes the position
embedding bicubically at forward time, and SAM's attention interpolates its relative-position
tables itself (docs/model.md §2.2).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
from segment_anything.modeling import ImageEncoderViT
from torch import nn
from torch.nn import functional as F

from irsam.models.layers import Encoded, checked_wpmd, run_block


class ViTEncoder(ImageEncoderViT):
    """SAM's windowed ViT returning the deep embedding and, HQ-SAM style, the output of the first
    global-attention block as the shallow embedding."""

    def __init__(
        self,
        *,
        img_size: int = 1024,
        pretrain_img_size: int = 1024,
        patch_size: int = 16,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        global_attn_indexes: Sequence[int] = (2, 5, 8, 11),
        window_size: int = 14,
        out_chans: int = 256,
        wpmd: nn.ModuleDict | None = None,
        grad_checkpointing: bool = False,
        deep_only: bool = False,
    ) -> None:
        """
        Arguments:
          img_size (int): internal input resolution S (square); the embedding grid is S/16.
          pretrain_img_size (int): resolution the parameters are laid out for (1024 for SAM's
            checkpoints): sets the shapes of ``pos_embed`` and the global ``rel_pos_*`` tables.
          patch_size (int): patch size (16).
          embed_dim (int): token width C (768 / 1024 / 1280 for B / L / H).
          depth (int): number of transformer blocks.
          num_heads (int): attention heads per block.
          global_attn_indexes (Sequence[int]): blocks with global attention; the others use
            ``window_size`` windows. The first one is the shallow tap.
          window_size (int): attention window of the windowed blocks.
          wpmd (nn.ModuleDict | None): WPMD blocks keyed by block index, applied to that block's
            output (before the shallow tap).
          out_chans, grad_checkpointing, deep_only: as
            :class:`~irsam.models.tiny_vit.TinyViTEncoder`.
        """
        if not global_attn_indexes:
            raise ValueError("a ViT encoder needs at least one global-attention block")
        if not all(0 <= i < depth for i in global_attn_indexes):
            raise ValueError(
                f"global_attn_indexes {list(global_attn_indexes)} must be block indices in "
                f"[0, {depth - 1}] (depth {depth})"
            )
        if img_size % patch_size:
            raise ValueError(
                f"model.net.encoder_size={img_size} must be a multiple of the patch size "
                f"{patch_size}"
            )
        super().__init__(
            img_size=pretrain_img_size,
            patch_size=patch_size,
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=4.0,
            out_chans=out_chans,
            qkv_bias=True,
            norm_layer=partial(nn.LayerNorm, eps=1e-6),
            use_rel_pos=True,
            global_attn_indexes=tuple(global_attn_indexes),
            window_size=window_size,
        )
        self.img_size = img_size
        self.pretrain_img_size = pretrain_img_size
        self.depth = depth
        self.global_attn_indexes = tuple(global_attn_indexes)
        self.shallow_index = self.global_attn_indexes[0]
        self.shallow_channels = embed_dim
        self.out_chans = out_chans
        self.grad_checkpointing = grad_checkpointing
        self.deep_only = deep_only
        self.wpmd = checked_wpmd(wpmd, (embed_dim,) * depth, "block")

    @property
    def num_lr_layers(self) -> int:
        """Number of layer-decay levels: patch embedding (0), one per block, then the neck (top)."""
        return self.depth + 1

    def lr_layer_id(self, name: str) -> int:
        """Layer-decay level of a parameter.

        Arguments:
          name (str): parameter name relative to this encoder, e.g. ``"blocks.3.attn.qkv.weight"``.
        Returns:
          int: 0 for ``patch_embed``/``pos_embed``, i + 1 for block i, ``num_lr_layers`` for the
            neck and WPMD (full learning rate).
        """
        parts = name.split(".")
        if parts[0] in ("patch_embed", "pos_embed"):
            return 0
        if parts[0] == "blocks":
            return int(parts[1]) + 1
        return self.num_lr_layers

    def resized_pos_embed(self, grid: tuple[int, int]) -> torch.Tensor:
        """The absolute position embedding on a ``grid`` = (h, w) token grid.

        Arguments:
          grid (tuple[int, int]): token grid (h, w).
        Returns:
          torch.Tensor: 1×h×w×C; bicubic resize of the stored embedding when sizes differ.
        """
        if tuple(self.pos_embed.shape[1:3]) == tuple(grid):
            return self.pos_embed
        pos = F.interpolate(
            self.pos_embed.permute(0, 3, 1, 2), size=grid, mode="bicubic", align_corners=False
        )
        return pos.permute(0, 2, 3, 1)

    def forward(self, x: torch.Tensor) -> Encoded:
        """
        Arguments:
          x (torch.Tensor): B×3×S×S normalised RGB images (S a multiple of 16).
        Returns:
          (torch.Tensor, torch.Tensor): deep embedding B×256×S/16×S/16 and shallow embedding
            B×C×S/16×S/16 (output of the first global-attention block, after its WPMD); only
            the deep embedding when ``deep_only``.
        """
        if x.ndim != 4:
            raise ValueError(
                f"the ViT encoder expects B×3×H×W images, got shape {tuple(x.shape)}: add the "
                "batch axis (images[None])"
            )
        x = self.patch_embed(x)
        x = x + self.resized_pos_embed((x.shape[1], x.shape[2]))
        shallow: torch.Tensor | None = None
        for i, block in enumerate(self.blocks):
            x = run_block(self, block, x)
            if str(i) in self.wpmd:
                x = self.wpmd[str(i)](x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
            if i == self.shallow_index:
                shallow = x.permute(0, 3, 1, 2)
        deep = self.neck(x.permute(0, 3, 1, 2))
        if self.deep_only:
            return deep
        return deep, shallow  # set: the first global-attention block is a block index
