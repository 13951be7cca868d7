# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""SAM 2 Hiera image encoders for IRSAM (docs/sam2.md), built from the optional ``sam2`` package.

The trunk (``sam2.modeling.backbones.hieradet.Hiera``) and the FPN neck
(``sam2.modeling.backbones.image_encoder.FpnNeck``) are SAM 2's own modules, with the settings of
SAM 2's packaged configs, so the keys ``image_encoder.trunk.*`` / ``image_encoder.neck.*`` of the
official checkpoints load as they are. This module adds WPMD blocks on the Hiera stage outputs and
hands SAM 2's two high-resolution FPN levels to :class:`Sam2GranularityAwareDecoder`, which uses
them the way SAM 2's mask decoder does (``conv_s0`` / ``conv_s1`` skips in the upscaling) and, for
the GAD edge branch, as the shallow features.

``sam2`` is imported only when a SAM 2 model is built (``pip install -e ".[sam2]"``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import torch
from segment_anything.modeling.common import LayerNorm2d
from torch import nn
from torch.nn import functional as F

from irsam.models.gad import GranularityAwareDecoder
from irsam.models.layers import checked_wpmd, run_block

SAM2_EXTRA_HINT = (
    'install the optional extra: pip install -e ".[sam2]" (PyPI sam2 1.1.0 is an sdist; '
    "SAM2_BUILD_CUDA=0 pip install --no-build-isolation 'sam2==1.1.0' builds it without "
    "downloading a second torch)"
)

# Trunk settings of SAM 2's packaged configs (configs/sam2.1/sam2.1_hiera_*.yaml; the SAM 2.0
# configs use the same trunk and neck); keyword arguments of sam2's Hiera.
HIERA_SPECS: dict[str, dict[str, Any]] = {
    "t": {
        "embed_dim": 96,
        "num_heads": 1,
        "stages": (1, 2, 7, 2),
        "global_att_blocks": (5, 7, 9),
        "window_pos_embed_bkg_spatial_size": (7, 7),
        "window_spec": (8, 4, 14, 7),
    },
    "s": {
        "embed_dim": 96,
        "num_heads": 1,
        "stages": (1, 2, 11, 2),
        "global_att_blocks": (7, 10, 13),
        "window_pos_embed_bkg_spatial_size": (7, 7),
        "window_spec": (8, 4, 14, 7),
    },
    "b+": {
        "embed_dim": 112,
        "num_heads": 2,
        "stages": (2, 3, 16, 3),
        "global_att_blocks": (12, 16, 20),
        "window_pos_embed_bkg_spatial_size": (14, 14),
        "window_spec": (8, 4, 14, 7),
    },
    "l": {
        "embed_dim": 144,
        "num_heads": 2,
        "stages": (2, 6, 36, 4),
        "global_att_blocks": (23, 33, 43),
        "window_pos_embed_bkg_spatial_size": (7, 7),
        "window_spec": (8, 4, 16, 8),
    },
}
HIERA_SIZES = tuple(HIERA_SPECS)
FPN_DIM = 256  # SAM 2 neck width (d_model)
INPUT_MULTIPLE = 32  # Hiera needs the stride-4 grid to be a multiple of 8: inputs padded to 32


def import_sam2() -> SimpleNamespace:
    """Import the SAM 2 modules used here, without leaving Hydra state behind.

    ``import sam2`` initialises Hydra's global instance with SAM 2's config module when none is
    active; that would make a later ``hydra.initialize*`` of this project fail. The instance is
    therefore cleared again when it was not initialised before the import (inside a running Hydra
    app nothing changes). ``sam2.build_sam.build_sam2`` needs SAM 2's config module initialised
    again by the caller.

    Returns:
      SimpleNamespace: ``Hiera``, ``FpnNeck``, ``PositionEmbeddingSine`` classes.
    Raises:
      ImportError: ``sam2`` is not installed; the message names the extra to install.
    """
    from hydra.core.global_hydra import GlobalHydra

    was_initialized = GlobalHydra.instance().is_initialized()
    try:
        from sam2.modeling.backbones.hieradet import Hiera
        from sam2.modeling.backbones.image_encoder import FpnNeck
        from sam2.modeling.position_encoding import PositionEmbeddingSine
    except ImportError as exc:
        raise ImportError(
            f"SAM 2 models (irsam_sam2_hiera_*, sam2_hiera_*) need the `sam2` package: "
            f"{SAM2_EXTRA_HINT}"
        ) from exc
    finally:
        if not was_initialized and GlobalHydra.instance().is_initialized():
            GlobalHydra.instance().clear()
    return SimpleNamespace(
        Hiera=Hiera, FpnNeck=FpnNeck, PositionEmbeddingSine=PositionEmbeddingSine
    )


def _check_size(size: str) -> None:
    """Raise a ValueError unless ``size`` is a SAM 2 Hiera size."""
    if size not in HIERA_SPECS:
        raise ValueError(f"SAM 2 Hiera size must be one of {HIERA_SIZES}, got {size!r}")


def hiera_stage_channels(size: str) -> tuple[int, ...]:
    """Channel widths of the four Hiera stage outputs (C, 2C, 4C, 8C).

    Arguments:
      size (str): ``"t"``, ``"s"``, ``"b+"`` or ``"l"``.
    Returns:
      tuple[int, ...]: widths of stages 0-3 (strides 4, 8, 16, 32).
    """
    _check_size(size)
    dim = int(HIERA_SPECS[size]["embed_dim"])
    return tuple(dim * 2**i for i in range(4))


class Sam2HieraEncoder(nn.Module):
    """SAM 2 image encoder (Hiera trunk + FPN neck) with WPMD on the stage outputs.

    Parameter names are SAM 2's: ``trunk.*``, ``neck.*`` and ``no_mem_embed`` (SAM 2 adds it to
    the stride-16 features of single images); WPMD blocks add ``wpmd.<stage>.*``.
    """

    def __init__(
        self,
        *,
        size: str = "t",
        img_size: int = 1024,
        wpmd: nn.ModuleDict | None = None,
        grad_checkpointing: bool = False,
    ) -> None:
        """
        Arguments:
          size (str): Hiera size ``"t"``, ``"s"``, ``"b+"`` or ``"l"`` (SAM 2's tiny, small,
            base-plus, large).
          img_size (int): internal input resolution S (1024 for SAM 2). Any S works: inputs are
            zero-padded (bottom/right) to a multiple of 32 and the outputs cropped back.
          wpmd (nn.ModuleDict | None): WPMD blocks keyed by stage (``"0"``..``"3"``); block i
            acts on the output of stage i (C·2^i channels) before the next stage and the neck.
          grad_checkpointing (bool): recompute each Hiera block in the backward (training only).
        Raises:
          ImportError: ``sam2`` is missing (the message names the extra).
        """
        super().__init__()
        _check_size(size)
        if img_size <= 0:
            raise ValueError(f"model.net.encoder_size must be positive, got {img_size}")
        sam2 = import_sam2()
        spec = HIERA_SPECS[size]
        self.size = size
        self.img_size = img_size
        self.grad_checkpointing = grad_checkpointing
        self.trunk = sam2.Hiera(**spec)  # keyword names are Hiera's
        self.neck = sam2.FpnNeck(
            position_encoding=sam2.PositionEmbeddingSine(
                num_pos_feats=FPN_DIM, normalize=True, scale=None, temperature=10000
            ),
            d_model=FPN_DIM,
            backbone_channel_list=list(self.trunk.channel_list),
            fpn_top_down_levels=[2, 3],
            fpn_interp_model="nearest",
        )
        self.no_mem_embed = nn.Parameter(torch.zeros(1, 1, FPN_DIM))
        nn.init.trunc_normal_(self.no_mem_embed, std=0.02)
        self.shallow_channels = FPN_DIM
        self.stage_channels = hiera_stage_channels(size)
        self.wpmd = checked_wpmd(wpmd, self.stage_channels, "stage")

    @property
    def num_lr_layers(self) -> int:
        """Layer-decay levels: patch/position embedding (0), one per Hiera block, neck on top."""
        return len(self.trunk.blocks) + 1

    def lr_layer_id(self, name: str) -> int:
        """Layer-decay level of a parameter.

        Arguments:
          name (str): parameter name relative to this encoder, e.g. ``"trunk.blocks.3.mlp..."``.
        Returns:
          int: 0 for the patch and position embeddings, i + 1 for block i, ``num_lr_layers`` for
            the neck, ``no_mem_embed`` and WPMD (full learning rate).
        """
        parts = name.split(".")
        if parts[0] == "trunk" and parts[1] in ("patch_embed", "pos_embed", "pos_embed_window"):
            return 0
        if parts[0] == "trunk" and parts[1] == "blocks":
            return int(parts[2]) + 1
        return self.num_lr_layers

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """
        Arguments:
          x (torch.Tensor): B×3×H×W normalised RGB images, any H, W (padded to multiples of 32
            inside, outputs cropped to the grid g = (⌈H/16⌉, ⌈W/16⌉)).
        Returns:
          (torch.Tensor, (torch.Tensor, torch.Tensor)): deep embedding B×256×g (SAM 2's
            ``vision_features`` + ``no_mem_embed``) and the shallow pair (stride-4 FPN level
            B×256×4g, stride-8 FPN level B×256×2g), i.e. ``backbone_fpn[0]``, ``backbone_fpn[1]``.
        """
        if x.ndim != 4:
            raise ValueError(
                f"the SAM 2 encoder expects B×3×H×W images, got shape {tuple(x.shape)}: add the "
                "batch axis (images[None])"
            )
        height, width = x.shape[-2:]
        pad_h, pad_w = (-height) % INPUT_MULTIPLE, (-width) % INPUT_MULTIPLE
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        trunk = self.trunk
        tokens = trunk.patch_embed(x)  # B×H/4×W/4×C
        tokens = tokens + trunk._get_pos_embed(tokens.shape[1:3])
        stage_outputs = []
        for i, block in enumerate(trunk.blocks):
            tokens = run_block(self, block, tokens)
            if i in trunk.stage_ends:
                stage = str(trunk.stage_ends.index(i))
                if stage in self.wpmd:
                    tokens = self.wpmd[stage](tokens.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
                stage_outputs.append(tokens.permute(0, 3, 1, 2))
        levels, _ = self.neck(stage_outputs)  # strides 4, 8, 16, 32; the last is dropped (scalp)
        grid_h, grid_w = math.ceil(height / 16), math.ceil(width / 16)
        deep = levels[2][..., :grid_h, :grid_w] + self.no_mem_embed.view(1, -1, 1, 1)
        stride8 = levels[1][..., : 2 * grid_h, : 2 * grid_w]
        stride4 = levels[0][..., : 4 * grid_h, : 4 * grid_w]
        return deep, (stride4, stride8)


class Sam2GranularityAwareDecoder(GranularityAwareDecoder):
    """The GAD fed by a SAM 2 encoder: SAM 2's high-resolution skips plus the GAD edge branch.

    The mask path is SAM 2's: ``conv_s1`` (256→64) of the stride-8 level is added after the
    first transposed conv of ``output_upscaling`` and ``conv_s0`` (256→32) of the stride-4 level
    after the second. With the edge branch, the edge features are
    ``embedding_maskfeature(upscaled)`` plus ``embedding_encoder(deep)`` ("deep") and/or
    ``compress_vit_feat(stride-4 level)`` ("shallow"; 1×1 conv 256→64, LayerNorm, GELU, 3×3 conv
    64→32, at the stride-4 resolution itself instead of the ×4 transposed convs of the GAD).
    The forward is the GAD's, with the (stride-4, stride-8) FPN levels of
    :class:`Sam2HieraEncoder` as its (required) ``shallow_embeddings``.
    """

    def __init__(self, **kwargs) -> None:
        """
        Arguments:
          **kwargs: as :class:`GranularityAwareDecoder` (``shallow_channels`` is the FPN width,
            256).
        """
        super().__init__(**kwargs)
        dim = self.transformer_dim
        self.conv_s0 = nn.Conv2d(FPN_DIM, dim // 8, kernel_size=1)
        self.conv_s1 = nn.Conv2d(FPN_DIM, dim // 4, kernel_size=1)
        if "shallow" in self.gad_fusion:
            # Same role and name as in the GAD (so the GAD allow-lists apply), high-res input.
            self.compress_vit_feat = nn.Sequential(
                nn.Conv2d(FPN_DIM, dim // 4, kernel_size=1),
                LayerNorm2d(dim // 4),
                nn.GELU(),
                nn.Conv2d(dim // 4, dim // 8, kernel_size=3, padding=1),
            )

    def _upscale(
        self, src: torch.Tensor, shallow_embeddings: torch.Tensor | Sequence[torch.Tensor] | None
    ) -> torch.Tensor:
        """SAM 2's upscaling of tokens B×256×h×w to B×32×4h×4w with the stride-4/8 FPN skips."""
        h, w = src.shape[-2:]
        if shallow_embeddings is None or len(shallow_embeddings) != 2:
            raise ValueError(
                "the SAM 2 decoder needs the (stride-4, stride-8) FPN levels as "
                "shallow_embeddings: pass the second output of Sam2HieraEncoder"
            )
        stride4, stride8 = shallow_embeddings
        if tuple(stride4.shape[-2:]) != (4 * h, 4 * w) or tuple(stride8.shape[-2:]) != (
            2 * h,
            2 * w,
        ):
            raise ValueError(
                f"FPN levels {tuple(stride4.shape[-2:])}, {tuple(stride8.shape[-2:])} do not "
                f"match the deep grid {(h, w)} (expected 4× and 2× it): pass both outputs of "
                "the same encoder call"
            )
        up1, norm1, act1, up2, act2 = self.output_upscaling
        upscaled = act1(norm1(up1(src) + self.conv_s1(stride8)))
        return act2(up2(upscaled) + self.conv_s0(stride4))

    def _edge_shallow(
        self, shallow: torch.Tensor | Sequence[torch.Tensor] | None, grid: tuple[int, int]
    ) -> torch.Tensor:
        """The stride-4 FPN level (checked by :meth:`_upscale`) for ``compress_vit_feat``."""
        return shallow[0]
