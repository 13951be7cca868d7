# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Model builders (segment-anything style): all sizes live here.

``model_registry`` maps names to builders: the IRSAM variants ``irsam_tiny`` (the paper's
model), ``irsam_vit_b/l/h``, and the fine-tuning baselines ``mobile_sam`` and ``sam_vit_b`` (same
decoder path without WPMD and without the GAD edge branch); with the optional ``sam2`` extra,
``irsam_sam2_hiera_{t,s,b+,l}`` and the baselines ``sam2_hiera_{t,s,b+,l}`` (docs/sam2.md).
``build_prompt_sam`` builds a plain promptable segment-anything ``Sam`` for ``SamPredictor``
(the one-shot mode).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any

import torch
from segment_anything.modeling import MaskDecoder, PromptEncoder, Sam, TwoWayTransformer
from segment_anything.modeling.prompt_encoder import PositionEmbeddingRandom
from torch import nn

from irsam.models.checkpoints import load_checkpoint, load_sam2_checkpoint
from irsam.models.gad import GranularityAwareDecoder
from irsam.models.irsam import IRSAM, PIXEL_MEAN, PIXEL_STD
from irsam.models.layers import wpmd_width
from irsam.models.sam2_encoder import (
    Sam2GranularityAwareDecoder,
    Sam2HieraEncoder,
    hiera_stage_channels,
)
from irsam.models.tiny_vit import TinyViTEncoder, tiny_vit_stage_channels
from irsam.models.vit_encoder import ViTEncoder
from irsam.models.wpmd import WPMD

PROMPT_EMBED_DIM = 256

# MobileSAM vit_t (TinyViT-5M) settings.
TINY_VIT_5M = {
    "embed_dims": (64, 128, 160, 320),
    "depths": (2, 2, 6, 2),
    "num_heads": (2, 4, 5, 10),
    "window_sizes": (7, 7, 14, 7),
    "mlp_ratio": 4.0,
    "mbconv_expand_ratio": 4.0,
    "local_conv_size": 3,
}
# segment-anything build_sam.py settings.
SAM_VIT = {
    "vit_b": {"embed_dim": 768, "depth": 12, "num_heads": 12, "global_attn_indexes": (2, 5, 8, 11)},
    "vit_l": {
        "embed_dim": 1024,
        "depth": 24,
        "num_heads": 16,
        "global_attn_indexes": (5, 11, 17, 23),
    },
    "vit_h": {
        "embed_dim": 1280,
        "depth": 32,
        "num_heads": 16,
        "global_attn_indexes": (7, 15, 23, 31),
    },
}


def _sam_decoder(decoder_type: Callable[..., nn.Module], **options: Any) -> nn.Module:
    """SAM's mask-decoder settings (two-way transformer depth 2, 8 heads, MLP 2048; 3 extra mask
    tokens; IoU head 3×256) for segment-anything's ``MaskDecoder`` or a GAD (``options``)."""
    return decoder_type(
        transformer_dim=PROMPT_EMBED_DIM,
        transformer=TwoWayTransformer(
            depth=2, embedding_dim=PROMPT_EMBED_DIM, mlp_dim=2048, num_heads=8
        ),
        num_multimask_outputs=3,
        iou_head_depth=3,
        iou_head_hidden_dim=256,
        **options,
    )


def _build_irsam(
    make_encoder: Callable[..., nn.Module],
    *,
    image_size: int,
    grad_checkpointing: bool,
    checkpoint: str | None,
    resize_mode: str,
    edge_branch: bool,
    gad_fusion: str,
    edge_upsample: str,
    channels_last: bool,
    wpmd_at: Iterable[int] | None = None,
    wpmd_slots: Sequence[int] = (),
    wpmd_unit: str = "stage",
    decoder_type: type[GranularityAwareDecoder] = GranularityAwareDecoder,
    loader: Callable[[IRSAM, str], object] = load_checkpoint,
    **wpmd_options: Any,
) -> IRSAM:
    """Assemble an :class:`IRSAM`: WPMD blocks, the encoder around them, the GAD; load weights.

    One WPMD block (keyword arguments ``wpmd_options``) is built first for each index of
    ``wpmd_at`` (None = no WPMD), at the width of that encoder slot (``wpmd_slots``, see
    :func:`~irsam.models.layers.wpmd_width`); then the encoder, ``make_encoder(img_size=image_size,
    grad_checkpointing=grad_checkpointing, wpmd=blocks)``, and the decoder.
    Everything trains except the decoder heads the prompt-free forward never uses; the freeze
    presets are applied by the LightningModule (``model.freeze``), the one place that knob lives.
    ``decoder_type`` and ``loader`` default to the GAD and :func:`load_checkpoint`; the SAM 2
    models pass their decoder subclass and :func:`load_sam2_checkpoint`.
    """
    blocks = None
    if wpmd_at is not None:
        blocks = nn.ModuleDict(
            {
                str(i): WPMD(channels=wpmd_width(i, wpmd_slots, wpmd_unit), **wpmd_options)
                for i in sorted({int(i) for i in wpmd_at})
            }
        )
    encoder = make_encoder(img_size=image_size, grad_checkpointing=grad_checkpointing, wpmd=blocks)
    model = IRSAM(
        image_encoder=encoder,
        pe_layer=PositionEmbeddingRandom(PROMPT_EMBED_DIM // 2),
        no_mask_embed=nn.Embedding(1, PROMPT_EMBED_DIM),
        mask_decoder=_sam_decoder(
            decoder_type,
            edge_branch=edge_branch,
            gad_fusion=gad_fusion,
            shallow_channels=encoder.shallow_channels,
        ),
        resize_mode=resize_mode,
        channels_last=channels_last,
        edge_upsample=edge_upsample,
    )
    if checkpoint is not None:
        loader(model, checkpoint)
    model.mask_decoder.freeze_unused_()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def _sized(
    name: str, builder: Callable[..., IRSAM], weights: str, **fixed: Any
) -> Callable[..., IRSAM]:
    """The builder ``name``: ``builder(**fixed, **kwargs)`` (repeating a fixed argument is a
    TypeError), documented with its settings and pretrained ``weights`` file."""

    def build(**kwargs: Any) -> IRSAM:
        return builder(**fixed, **kwargs)

    build.__name__ = build.__qualname__ = name
    settings = ", ".join(f"{key}={value!r}" for key, value in fixed.items())
    build.__doc__ = (
        f":func:`{builder.__name__}` with {settings} (weights ``{weights}``); the other keyword "
        "arguments as there."
    )
    return build


def build_irsam_tiny(
    *,
    checkpoint: str | None = None,
    image_size: int = 1024,
    resize_mode: str = "nearest",
    wpmd: bool = True,
    wpmd_stages: Sequence[int] = (1, 2, 3),
    wpmd_wavelet: str = "haar",
    wpmd_iterations: int = 1,
    wpmd_refine: str = "conv3x3",
    wpmd_diffusion: bool = True,
    wpmd_pad_mode: str = "replicate",
    gad_fusion: str = "deep+shallow",
    edge_upsample: str = "logits",
    grad_checkpointing: bool = False,
    channels_last: bool = False,
) -> IRSAM:
    """IRSAM with MobileSAM's TinyViT-5M encoder (the paper's model, ≈ 12.33 M parameters).

    Arguments:
      checkpoint (str | None): ``mobile_sam.pt``, an irsam weights file or a Lightning ``.ckpt``.
      image_size (int): internal encoder resolution S (1024 in the paper; the grid is S/16).
      resize_mode (str): ``"nearest"`` (paper, ×2 from 512²) or ``"bilinear"``.
      wpmd (bool): build WPMD blocks.
      wpmd_stages (Sequence[int]): TinyViT stages (0-3) whose outputs get a WPMD block.
      wpmd_wavelet (str): orthogonal PyWavelets wavelet name.
      wpmd_iterations (int): diffusion steps T.
      wpmd_refine (str): ``"conv3x3"`` or ``"dwconv"``.
      wpmd_diffusion (bool): False = DWT→IDWT only (ablation).
      wpmd_pad_mode (str): padding of odd maps, ``"replicate"`` or ``"reflect"``.
      gad_fusion (str): ``"deep"``, ``"shallow"`` or ``"deep+shallow"``.
      edge_upsample (str): ``"probabilities"`` (authors' order) or ``"logits"`` (see
        :class:`IRSAM`).
      grad_checkpointing (bool): activation checkpointing per encoder block (training only).
      channels_last (bool): channels-last memory format for weights and encoder inputs.
    Returns:
      IRSAM: the model (training mode, CPU, float32).
    """
    return _build_irsam(
        partial(TinyViTEncoder, **TINY_VIT_5M),
        image_size=image_size,
        grad_checkpointing=grad_checkpointing,
        wpmd_at=wpmd_stages if wpmd else None,
        wpmd_slots=tiny_vit_stage_channels(TINY_VIT_5M["embed_dims"]),
        wavelet=wpmd_wavelet,
        iterations=wpmd_iterations,
        refine=wpmd_refine,
        diffusion=wpmd_diffusion,
        pad_mode=wpmd_pad_mode,
        checkpoint=checkpoint,
        resize_mode=resize_mode,
        edge_branch=True,
        gad_fusion=gad_fusion,
        edge_upsample=edge_upsample,
        channels_last=channels_last,
    )


def build_irsam_vit(
    *,
    embed_dim: int,
    depth: int,
    num_heads: int,
    global_attn_indexes: Sequence[int],
    checkpoint: str | None = None,
    image_size: int = 1024,
    pretrain_image_size: int = 1024,
    resize_mode: str = "nearest",
    wpmd: bool = True,
    wpmd_blocks: Sequence[int] | None = None,
    wpmd_wavelet: str = "haar",
    wpmd_iterations: int = 1,
    wpmd_refine: str = "dwconv",
    wpmd_diffusion: bool = True,
    wpmd_pad_mode: str = "replicate",
    edge_branch: bool = True,
    gad_fusion: str = "deep+shallow",
    edge_upsample: str = "logits",
    grad_checkpointing: bool = False,
    channels_last: bool = False,
) -> IRSAM:
    """IRSAM with a SAM-style ViT encoder of any size (ViT-B/L/H or small test configurations).

    Arguments:
      embed_dim (int): token width.
      depth (int): number of blocks.
      num_heads (int): attention heads.
      global_attn_indexes (Sequence[int]): global-attention blocks (the first is the shallow tap).
      checkpoint (str | None): ``sam_vit_*.pth``, an irsam weights file or a Lightning ``.ckpt``.
      image_size (int): internal encoder resolution S (multiple of 16).
      pretrain_image_size (int): resolution the weights are laid out for (1024 for SAM files).
      wpmd_blocks (Sequence[int] | None): blocks followed by WPMD; None = the global blocks.
      wpmd_refine (str): ``"dwconv"`` (default for wide ViT maps) or ``"conv3x3"``.
      edge_branch (bool): GAD edge branch (False for the plain SAM baseline decoder).
      resize_mode, wpmd, wpmd_wavelet, wpmd_iterations, wpmd_diffusion, wpmd_pad_mode,
        gad_fusion, edge_upsample, grad_checkpointing, channels_last: as
        :func:`build_irsam_tiny`.
    Returns:
      IRSAM: the model.
    """
    return _build_irsam(
        partial(
            ViTEncoder,
            pretrain_img_size=pretrain_image_size,
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            global_attn_indexes=tuple(int(i) for i in global_attn_indexes),
        ),
        image_size=image_size,
        grad_checkpointing=grad_checkpointing,
        wpmd_at=(global_attn_indexes if wpmd_blocks is None else wpmd_blocks) if wpmd else None,
        wpmd_slots=(embed_dim,) * depth,
        wpmd_unit="block",
        wavelet=wpmd_wavelet,
        iterations=wpmd_iterations,
        refine=wpmd_refine,
        diffusion=wpmd_diffusion,
        pad_mode=wpmd_pad_mode,
        checkpoint=checkpoint,
        resize_mode=resize_mode,
        edge_branch=edge_branch,
        gad_fusion=gad_fusion,
        edge_upsample=edge_upsample,
        channels_last=channels_last,
    )


build_irsam_vit_b = _sized(
    "build_irsam_vit_b", build_irsam_vit, "sam_vit_b_01ec64.pth", **SAM_VIT["vit_b"]
)
build_irsam_vit_l = _sized(
    "build_irsam_vit_l", build_irsam_vit, "sam_vit_l_0b3195.pth", **SAM_VIT["vit_l"]
)
build_irsam_vit_h = _sized(
    "build_irsam_vit_h", build_irsam_vit, "sam_vit_h_4b8939.pth", **SAM_VIT["vit_h"]
)


def build_mobile_sam(
    *,
    checkpoint: str | None = None,
    image_size: int = 1024,
    resize_mode: str = "nearest",
    grad_checkpointing: bool = False,
    channels_last: bool = False,
) -> IRSAM:
    """Baseline: MobileSAM fine-tuned prompt-free (TinyViT-5M, SAM decoder, no WPMD/edge branch).

    Arguments:
      checkpoint, image_size, resize_mode, grad_checkpointing, channels_last: as
        :func:`build_irsam_tiny`.
    Returns:
      IRSAM: the model; its forward returns only ``"mask_logits"``.
    """
    return _build_irsam(
        partial(TinyViTEncoder, **TINY_VIT_5M),
        image_size=image_size,
        grad_checkpointing=grad_checkpointing,
        checkpoint=checkpoint,
        resize_mode=resize_mode,
        edge_branch=False,
        gad_fusion="deep+shallow",
        edge_upsample="logits",
        channels_last=channels_last,
    )


def build_sam_vit_b(
    *,
    checkpoint: str | None = None,
    image_size: int = 1024,
    pretrain_image_size: int = 1024,
    resize_mode: str = "nearest",
    grad_checkpointing: bool = False,
    channels_last: bool = False,
) -> IRSAM:
    """Baseline: SAM ViT-B fine-tuned prompt-free (SAM decoder, no WPMD, no edge branch).

    Arguments:
      checkpoint (str | None): ``sam_vit_b_01ec64.pth``, an irsam weights file or a ``.ckpt``.
      image_size, pretrain_image_size, resize_mode, grad_checkpointing, channels_last: as
        :func:`build_irsam_vit`.
    Returns:
      IRSAM: the model; its forward returns only ``"mask_logits"``.
    """
    return build_irsam_vit(
        **SAM_VIT["vit_b"],
        checkpoint=checkpoint,
        image_size=image_size,
        pretrain_image_size=pretrain_image_size,
        resize_mode=resize_mode,
        wpmd=False,
        edge_branch=False,
        grad_checkpointing=grad_checkpointing,
        channels_last=channels_last,
    )


def build_prompt_sam(
    *, encoder: str = "tiny", checkpoint: str | None = None, image_size: int = 1024
) -> Sam:
    """A plain promptable segment-anything ``Sam`` (for ``SamPredictor`` and the one-shot mode).

    The image encoder is our TinyViT or SAM's ViT with ``deep_only=True`` (it returns only the
    deep embedding, as ``Sam`` expects); prompt encoder and mask decoder are segment-anything's.
    ``mobile_sam.pt`` / ``sam_vit_*.pth`` load strictly (only the ImageNet head is dropped).

    Arguments:
      encoder (str): ``"tiny"`` (MobileSAM), ``"vit_b"``, ``"vit_l"`` or ``"vit_h"``.
      checkpoint (str | None): matching MobileSAM/SAM file; None = random weights.
      image_size (int): encoder input size. 1024 for real use; any multiple of 16 works with
        ``SamPredictor`` (it resizes the long side to ``image_encoder.img_size``), e.g. 256.
    Returns:
      Sam: in eval mode.
    """
    if encoder == "tiny":
        image_encoder: nn.Module = TinyViTEncoder(
            img_size=image_size, deep_only=True, **TINY_VIT_5M
        )
    else:
        assert encoder in SAM_VIT, (
            f"encoder must be 'tiny' or one of {sorted(SAM_VIT)}, got {encoder!r}"
        )
        image_encoder = ViTEncoder(
            img_size=image_size, pretrain_img_size=1024, deep_only=True, **SAM_VIT[encoder]
        )
    grid = image_size // 16
    sam = Sam(
        image_encoder=image_encoder,
        prompt_encoder=PromptEncoder(
            embed_dim=PROMPT_EMBED_DIM,
            image_embedding_size=(grid, grid),
            input_image_size=(image_size, image_size),
            mask_in_chans=16,
        ),
        mask_decoder=_sam_decoder(MaskDecoder),
        pixel_mean=list(PIXEL_MEAN),
        pixel_std=list(PIXEL_STD),
    )
    sam.eval()
    if checkpoint is not None:
        load_checkpoint(sam, checkpoint, kind="sam")
    return sam


# ---------------------------------------------------------------------------------------------
# SAM 2 Hiera models (optional extra `sam2`; docs/sam2.md)
# ---------------------------------------------------------------------------------------------


def build_irsam_sam2_hiera(
    *,
    size: str,
    checkpoint: str | None = None,
    image_size: int = 1024,
    resize_mode: str = "nearest",
    wpmd: bool = True,
    wpmd_stages: Sequence[int] = (0, 1, 2, 3),
    wpmd_wavelet: str = "haar",
    wpmd_iterations: int = 1,
    wpmd_refine: str = "dwconv",
    wpmd_diffusion: bool = True,
    wpmd_pad_mode: str = "replicate",
    edge_branch: bool = True,
    gad_fusion: str = "deep+shallow",
    edge_upsample: str = "logits",
    grad_checkpointing: bool = False,
    channels_last: bool = False,
) -> IRSAM:
    """IRSAM on a SAM 2 Hiera encoder (trunk + FPN neck from the ``sam2`` package).

    Arguments:
      size (str): Hiera size ``"t"``, ``"s"``, ``"b+"`` or ``"l"``.
      checkpoint (str | None): ``sam2.1_hiera_*.pt`` / ``sam2_hiera_*.pt`` (official layout),
        an irsam weights file or a Lightning ``.ckpt``; None = random init.
      image_size (int): internal encoder resolution S (1024 for SAM 2); padded to a multiple of
        32 inside the encoder, grid ⌈S/16⌉.
      wpmd_stages (Sequence[int]): Hiera stages (0-3, strides 4-32) whose outputs get a WPMD.
      wpmd_refine (str): ``"dwconv"`` (default; the stage maps are wide) or ``"conv3x3"``.
      edge_branch (bool): GAD edge branch (False for the ``sam2_hiera_*`` baselines).
      gad_fusion (str): ``"deep"``, ``"shallow"`` (stride-4 FPN level) or ``"deep+shallow"``.
      resize_mode, wpmd, wpmd_wavelet, wpmd_iterations, wpmd_diffusion, wpmd_pad_mode,
        edge_upsample, grad_checkpointing, channels_last: as :func:`build_irsam_tiny`.
    Returns:
      IRSAM: the model.
    Raises:
      ImportError: ``sam2`` is not installed (the message names ``pip install -e ".[sam2]"``).
    """
    return _build_irsam(
        partial(Sam2HieraEncoder, size=size),
        image_size=image_size,
        grad_checkpointing=grad_checkpointing,
        wpmd_at=wpmd_stages if wpmd else None,
        wpmd_slots=hiera_stage_channels(size),
        wavelet=wpmd_wavelet,
        iterations=wpmd_iterations,
        refine=wpmd_refine,
        diffusion=wpmd_diffusion,
        pad_mode=wpmd_pad_mode,
        checkpoint=checkpoint,
        resize_mode=resize_mode,
        edge_branch=edge_branch,
        gad_fusion=gad_fusion,
        edge_upsample=edge_upsample,
        channels_last=channels_last,
        decoder_type=Sam2GranularityAwareDecoder,
        loader=load_sam2_checkpoint,
    )


def build_sam2_hiera(
    *,
    size: str,
    checkpoint: str | None = None,
    image_size: int = 1024,
    resize_mode: str = "nearest",
    grad_checkpointing: bool = False,
    channels_last: bool = False,
) -> IRSAM:
    """Baseline: SAM 2 fine-tuned prompt-free (Hiera + FPN, SAM 2's high-res decoder skips, no
    WPMD, no edge branch).

    Arguments:
      size, checkpoint, image_size, resize_mode, grad_checkpointing, channels_last: as
        :func:`build_irsam_sam2_hiera`.
    Returns:
      IRSAM: the model; its forward returns only ``"mask_logits"``.
    """
    return build_irsam_sam2_hiera(
        size=size,
        checkpoint=checkpoint,
        image_size=image_size,
        resize_mode=resize_mode,
        wpmd=False,
        edge_branch=False,
        grad_checkpointing=grad_checkpointing,
        channels_last=channels_last,
    )


build_irsam_sam2_hiera_t = _sized(
    "build_irsam_sam2_hiera_t", build_irsam_sam2_hiera, "sam2.1_hiera_tiny.pt", size="t"
)
build_irsam_sam2_hiera_s = _sized(
    "build_irsam_sam2_hiera_s", build_irsam_sam2_hiera, "sam2.1_hiera_small.pt", size="s"
)
build_irsam_sam2_hiera_bplus = _sized(
    "build_irsam_sam2_hiera_bplus", build_irsam_sam2_hiera, "sam2.1_hiera_base_plus.pt", size="b+"
)
build_irsam_sam2_hiera_l = _sized(
    "build_irsam_sam2_hiera_l", build_irsam_sam2_hiera, "sam2.1_hiera_large.pt", size="l"
)
build_sam2_hiera_t = _sized(
    "build_sam2_hiera_t", build_sam2_hiera, "sam2.1_hiera_tiny.pt", size="t"
)
build_sam2_hiera_s = _sized(
    "build_sam2_hiera_s", build_sam2_hiera, "sam2.1_hiera_small.pt", size="s"
)
build_sam2_hiera_bplus = _sized(
    "build_sam2_hiera_bplus", build_sam2_hiera, "sam2.1_hiera_base_plus.pt", size="b+"
)
build_sam2_hiera_l = _sized(
    "build_sam2_hiera_l", build_sam2_hiera, "sam2.1_hiera_large.pt", size="l"
)

model_registry: dict[str, Callable[..., IRSAM]] = {
    "irsam_tiny": build_irsam_tiny,
    "irsam_vit_b": build_irsam_vit_b,
    "irsam_vit_l": build_irsam_vit_l,
    "irsam_vit_h": build_irsam_vit_h,
    "mobile_sam": build_mobile_sam,
    "sam_vit_b": build_sam_vit_b,
    # SAM 2 (optional extra `sam2`); "+" is valid in Hydra option names: model=irsam_sam2_hiera_b+
    "irsam_sam2_hiera_t": build_irsam_sam2_hiera_t,
    "irsam_sam2_hiera_s": build_irsam_sam2_hiera_s,
    "irsam_sam2_hiera_b+": build_irsam_sam2_hiera_bplus,
    "irsam_sam2_hiera_l": build_irsam_sam2_hiera_l,
    "sam2_hiera_t": build_sam2_hiera_t,
    "sam2_hiera_s": build_sam2_hiera_s,
    "sam2_hiera_b+": build_sam2_hiera_bplus,
    "sam2_hiera_l": build_sam2_hiera_l,
}
