# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Model builders (segment-anything style): all sizes live here.

``model_registry`` maps names to builders: the IRSAM variants ``irsam_tiny`` (the paper's
model), ``irsam_vit_b/l/h``, and the fine-tuning baselines ``mobile_sam`` and ``sam_vit_b`` (same
decoder path without WPMD and without the GAD edge branch); with the optional ``sam2`` extra,
``irsam_sam2_hiera_{t,s,b+,l}`` and the baselines ``sam2_hiera_{t,s,b+,l}`` (docs/sam2.md).
``build_prompt_sam`` builds a plain promptable segment-anything ``Sam`` for ``SamPredictor``
(the one-shot mode).

Every builder takes the encoder's own keywords (where WPMD goes, the ViT pretraining size) and
the options shared by all networks as keyword arguments: the fields of :class:`NetOptions`
(baselines) or :class:`IRSAMOptions` (IRSAM variants), whose defaults are the ones below. These
are the keys of ``model.net`` in ``conf/model/*.yaml``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class NetOptions:
    """Options of every prompt-free network (the baselines take exactly these).

    Attributes:
      checkpoint (str | None): pretrained weights loaded strictly after building: a MobileSAM /
        SAM / SAM 2 file, an irsam weights file or a Lightning ``.ckpt``; None = random init.
      encoder_size (int): internal encoder input side S in pixels; the embedding grid is S/16
        (1024 in the paper, where the 512² loader images are upsampled ×2).
      resize_mode (str): how an image side shorter than S grows to S: ``"nearest"`` (the
        paper's ×2 from 512²) or ``"bilinear"``; a side longer than S shrinks antialiased.
      grad_checkpointing (bool): recompute encoder blocks in the backward (less memory, slower;
        training only).
      channels_last (bool): channels-last memory format for the weights and encoder inputs.
    """

    checkpoint: str | None = None
    encoder_size: int = 1024
    resize_mode: str = "nearest"
    grad_checkpointing: bool = False
    channels_last: bool = False


@dataclass(frozen=True)
class IRSAMOptions(NetOptions):
    """Options of the IRSAM variants: :class:`NetOptions` plus WPMD and the GAD edge branch.

    Attributes:
      wpmd (bool): build the WPMD blocks (False: the ablation without WPMD).
      wpmd_wavelet (str): orthogonal PyWavelets wavelet (``haar``, ``db2``, ``sym4``, ...).
      wpmd_iterations (int): diffusion steps T per block.
      wpmd_refine (str): refine branch: ``"dwconv"`` (depthwise 3×3 + 1×1) or ``"conv3x3"``
        (9C² parameters per block; the TinyViT model's default).
      wpmd_diffusion (bool): False = DWT → IDWT only (ablation of the PM shrinkage).
      wpmd_pad_mode (str): padding of odd feature maps before the DWT: ``"replicate"`` or
        ``"reflect"``.
      gad_fusion (str): edge features of the GAD: ``"deep"`` (the authors' release),
        ``"shallow"`` or ``"deep+shallow"`` (the paper).
      edge_upsample (str): ``"logits"`` (upsample the edge logits, then sigmoid) or
        ``"probabilities"`` (sigmoid on the decoder grid, then upsample: the authors' order; see
        :class:`IRSAM`).
    """

    wpmd: bool = True
    wpmd_wavelet: str = "haar"
    wpmd_iterations: int = 1
    wpmd_refine: str = "dwconv"
    wpmd_diffusion: bool = True
    wpmd_pad_mode: str = "replicate"
    gad_fusion: str = "deep+shallow"
    edge_upsample: str = "logits"

    def wpmd_block_options(self) -> dict[str, Any]:
        """The :class:`WPMD` keyword arguments these options set (all but the width)."""
        return {
            "wavelet": self.wpmd_wavelet,
            "iterations": self.wpmd_iterations,
            "refine": self.wpmd_refine,
            "diffusion": self.wpmd_diffusion,
            "pad_mode": self.wpmd_pad_mode,
        }


def _sam_decoder(decoder_type: Callable[..., nn.Module], **options: Any) -> nn.Module:
    """SAM's mask decoder settings (depth-2 two-way transformer, 3 extra mask tokens) for a type."""
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
    options: NetOptions,
    *,
    wpmd_at: Iterable[int] = (),
    wpmd_slots: Sequence[int] = (),
    wpmd_unit: str = "stage",
    decoder_type: type[GranularityAwareDecoder] = GranularityAwareDecoder,
    loader: Callable[[IRSAM, str], object] = load_checkpoint,
) -> IRSAM:
    """Assemble an IRSAM network (WPMD blocks at ``wpmd_at``, encoder, decoder) and load weights."""
    edge = isinstance(options, IRSAMOptions)
    blocks = None
    if edge and options.wpmd:
        blocks = nn.ModuleDict(
            {
                str(i): WPMD(
                    channels=wpmd_width(i, wpmd_slots, wpmd_unit), **options.wpmd_block_options()
                )
                for i in sorted({int(i) for i in wpmd_at})
            }
        )
    encoder = make_encoder(
        img_size=options.encoder_size, grad_checkpointing=options.grad_checkpointing, wpmd=blocks
    )
    model = IRSAM(
        image_encoder=encoder,
        pe_layer=PositionEmbeddingRandom(PROMPT_EMBED_DIM // 2),
        no_mask_embed=nn.Embedding(1, PROMPT_EMBED_DIM),
        mask_decoder=_sam_decoder(
            decoder_type,
            edge_branch=edge,
            gad_fusion=options.gad_fusion if edge else "deep+shallow",
            shallow_channels=encoder.shallow_channels,
        ),
        resize_mode=options.resize_mode,
        channels_last=options.channels_last,
        edge_upsample=options.edge_upsample if edge else "logits",
    )
    if options.checkpoint is not None:
        loader(model, options.checkpoint)
    model.mask_decoder.freeze_unused_()
    if options.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def _sized(
    name: str, builder: Callable[..., IRSAM], weights: str, **fixed: Any
) -> Callable[..., IRSAM]:
    """``builder`` with the encoder settings ``fixed``, named ``name``, naming its ``weights``."""

    def build(**kwargs: Any) -> IRSAM:
        return builder(**fixed, **kwargs)

    build.__name__ = build.__qualname__ = name
    settings = ", ".join(f"{key}={value!r}" for key, value in fixed.items())
    build.__doc__ = (
        f":func:`{builder.__name__}` with {settings} (weights ``{weights}``); the other keyword "
        "arguments as there."
    )
    return build


def _vit(
    *,
    embed_dim: int,
    depth: int,
    num_heads: int,
    global_attn_indexes: Sequence[int],
    pretrain_image_size: int,
) -> Callable[..., nn.Module]:
    """The :class:`ViTEncoder` factory of a SAM-style ViT size."""
    return partial(
        ViTEncoder,
        pretrain_img_size=pretrain_image_size,
        embed_dim=embed_dim,
        depth=depth,
        num_heads=num_heads,
        global_attn_indexes=tuple(int(i) for i in global_attn_indexes),
    )


def build_irsam_tiny(
    *, wpmd_stages: Sequence[int] = (1, 2, 3), wpmd_refine: str = "conv3x3", **options: Any
) -> IRSAM:
    """IRSAM with MobileSAM's TinyViT-5M encoder (the paper's model, ≈ 12.33 M parameters).

    Arguments:
      wpmd_stages (Sequence[int]): TinyViT stages (0-3) whose outputs get a WPMD block.
      wpmd_refine (str): ``"conv3x3"`` (this model's refine branch) or ``"dwconv"``.
      **options: the other fields of :class:`IRSAMOptions`.
    Returns:
      IRSAM: the model (training mode, CPU, float32).
    """
    return _build_irsam(
        partial(TinyViTEncoder, **TINY_VIT_5M),
        IRSAMOptions(wpmd_refine=wpmd_refine, **options),
        wpmd_at=wpmd_stages,
        wpmd_slots=tiny_vit_stage_channels(TINY_VIT_5M["embed_dims"]),
    )


def build_irsam_vit(
    *,
    embed_dim: int,
    depth: int,
    num_heads: int,
    global_attn_indexes: Sequence[int],
    pretrain_image_size: int = 1024,
    wpmd_blocks: Sequence[int] | None = None,
    **options: Any,
) -> IRSAM:
    """IRSAM with a SAM-style ViT encoder of any size (ViT-B/L/H or small test configurations).

    Arguments:
      embed_dim (int): token width.
      depth (int): number of blocks.
      num_heads (int): attention heads.
      global_attn_indexes (Sequence[int]): global-attention blocks (the first is the shallow tap).
      pretrain_image_size (int): resolution the weights are laid out for (1024 for SAM files;
        the position embedding is resized to ``encoder_size`` at run time).
      wpmd_blocks (Sequence[int] | None): blocks followed by WPMD; None = the global blocks.
      **options: the fields of :class:`IRSAMOptions`.
    Returns:
      IRSAM: the model.
    """
    return _build_irsam(
        _vit(
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            global_attn_indexes=global_attn_indexes,
            pretrain_image_size=pretrain_image_size,
        ),
        IRSAMOptions(**options),
        wpmd_at=global_attn_indexes if wpmd_blocks is None else wpmd_blocks,
        wpmd_slots=(embed_dim,) * depth,
        wpmd_unit="block",
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


def build_mobile_sam(**options: Any) -> IRSAM:
    """Baseline: MobileSAM fine-tuned prompt-free (TinyViT-5M, SAM decoder, no WPMD/edge branch).

    Arguments:
      **options: the fields of :class:`NetOptions`.
    Returns:
      IRSAM: the model; its forward returns only ``"mask_logits"``.
    """
    return _build_irsam(partial(TinyViTEncoder, **TINY_VIT_5M), NetOptions(**options))


def build_sam_vit_b(*, pretrain_image_size: int = 1024, **options: Any) -> IRSAM:
    """Baseline: SAM ViT-B fine-tuned prompt-free (SAM decoder, no WPMD, no edge branch).

    Arguments:
      pretrain_image_size (int): as :func:`build_irsam_vit`.
      **options: the fields of :class:`NetOptions`.
    Returns:
      IRSAM: the model; its forward returns only ``"mask_logits"``.
    """
    return _build_irsam(
        _vit(**SAM_VIT["vit_b"], pretrain_image_size=pretrain_image_size), NetOptions(**options)
    )


def build_prompt_sam(
    *, encoder: str = "tiny", checkpoint: str | None = None, encoder_size: int = 1024
) -> Sam:
    """A plain promptable segment-anything ``Sam`` (for ``SamPredictor`` and the one-shot mode).

    The image encoder is our TinyViT or SAM's ViT with ``deep_only=True`` (it returns only the
    deep embedding, as ``Sam`` expects); prompt encoder and mask decoder are segment-anything's.
    ``mobile_sam.pt`` / ``sam_vit_*.pth`` load strictly (only the ImageNet head is dropped).

    Arguments:
      encoder (str): ``"tiny"`` (MobileSAM), ``"vit_b"``, ``"vit_l"`` or ``"vit_h"``.
      checkpoint (str | None): matching MobileSAM/SAM file; None = random weights.
      encoder_size (int): encoder input side. 1024 for real use; any multiple of 16 works with
        ``SamPredictor`` (it resizes the long side to ``image_encoder.img_size``), e.g. 256.
    Returns:
      Sam: in eval mode.
    Raises:
      ValueError: an unknown ``encoder``.
    """
    if encoder == "tiny":
        image_encoder: nn.Module = TinyViTEncoder(
            img_size=encoder_size, deep_only=True, **TINY_VIT_5M
        )
    elif encoder in SAM_VIT:
        image_encoder = ViTEncoder(
            img_size=encoder_size, pretrain_img_size=1024, deep_only=True, **SAM_VIT[encoder]
        )
    else:
        raise ValueError(f"encoder must be 'tiny' or one of {sorted(SAM_VIT)}, got {encoder!r}")
    grid = encoder_size // 16
    sam = Sam(
        image_encoder=image_encoder,
        prompt_encoder=PromptEncoder(
            embed_dim=PROMPT_EMBED_DIM,
            image_embedding_size=(grid, grid),
            input_image_size=(encoder_size, encoder_size),
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

_SAM2 = {"decoder_type": Sam2GranularityAwareDecoder, "loader": load_sam2_checkpoint}
"""The SAM 2 decoder (stride-4/8 FPN skips) and checkpoint loader of every Hiera model."""


def build_irsam_sam2_hiera(
    *, size: str, wpmd_stages: Sequence[int] = (0, 1, 2, 3), **options: Any
) -> IRSAM:
    """IRSAM on a SAM 2 Hiera encoder (trunk + FPN neck from the ``sam2`` package).

    The ``encoder_size`` S is padded to a multiple of 32 inside the encoder (grid ⌈S/16⌉);
    ``checkpoint`` may be an official ``sam2.1_hiera_*.pt`` / ``sam2_hiera_*.pt`` file, and
    ``gad_fusion="shallow"`` reads the stride-4 FPN level.

    Arguments:
      size (str): Hiera size ``"t"``, ``"s"``, ``"b+"`` or ``"l"``.
      wpmd_stages (Sequence[int]): Hiera stages (0-3, strides 4-32) whose outputs get a WPMD.
      **options: the fields of :class:`IRSAMOptions`.
    Returns:
      IRSAM: the model.
    Raises:
      ImportError: ``sam2`` is not installed (the message names ``pip install -e ".[sam2]"``).
    """
    return _build_irsam(
        partial(Sam2HieraEncoder, size=size),
        IRSAMOptions(**options),
        wpmd_at=wpmd_stages,
        wpmd_slots=hiera_stage_channels(size),
        **_SAM2,
    )


def build_sam2_hiera(*, size: str, **options: Any) -> IRSAM:
    """Baseline: SAM 2 fine-tuned prompt-free (Hiera + FPN, SAM 2's high-res decoder skips, no
    WPMD, no edge branch).

    Arguments:
      size (str): as :func:`build_irsam_sam2_hiera`.
      **options: the fields of :class:`NetOptions`.
    Returns:
      IRSAM: the model; its forward returns only ``"mask_logits"``.
    """
    return _build_irsam(partial(Sam2HieraEncoder, size=size), NetOptions(**options), **_SAM2)


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
