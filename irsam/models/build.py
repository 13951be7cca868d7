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

from collections.abc import Callable, Sequence

import torch
from segment_anything.modeling import MaskDecoder, PromptEncoder, Sam, TwoWayTransformer
from segment_anything.modeling.prompt_encoder import PositionEmbeddingRandom
from torch import nn

from irsam.models.checkpoints import load_checkpoint, load_sam2_checkpoint
from irsam.models.gad import GranularityAwareDecoder
from irsam.models.irsam import IRSAM
from irsam.models.sam2_encoder import (
    HIERA_SIZES,
    Sam2GranularityAwareDecoder,
    Sam2HieraEncoder,
    hiera_stage_channels,
)
from irsam.models.tiny_vit import TinyViTEncoder
from irsam.models.vit_encoder import ViTEncoder
from irsam.models.wpmd import WPMD

PROMPT_EMBED_DIM = 256
PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)

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


def _wpmd_blocks(
    channels: dict[int, int],
    *,
    wavelet: str,
    iterations: int,
    refine: str,
    diffusion: bool,
    pad_mode: str,
) -> nn.ModuleDict:
    """One WPMD block per placement index (stage or block), with the given channel widths."""
    return nn.ModuleDict(
        {
            str(index): WPMD(
                channels=width,
                wavelet=wavelet,
                iterations=iterations,
                refine=refine,
                diffusion=diffusion,
                pad_mode=pad_mode,
            )
            for index, width in sorted(channels.items())
        }
    )


def _prompt_free_decoder(
    *,
    edge_branch: bool,
    gad_fusion: str,
    shallow_channels: int,
    decoder_type: type[GranularityAwareDecoder] = GranularityAwareDecoder,
) -> GranularityAwareDecoder:
    """SAM's decoder settings (two-way transformer depth 2, 8 heads, MLP 2048) as a GAD."""
    return decoder_type(
        transformer_dim=PROMPT_EMBED_DIM,
        transformer=TwoWayTransformer(
            depth=2, embedding_dim=PROMPT_EMBED_DIM, mlp_dim=2048, num_heads=8
        ),
        num_multimask_outputs=3,
        iou_head_depth=3,
        iou_head_hidden_dim=256,
        edge_branch=edge_branch,
        gad_fusion=gad_fusion,
        shallow_channels=shallow_channels,
    )


def _build_irsam(
    *,
    encoder: nn.Module,
    edge_branch: bool,
    gad_fusion: str,
    resize_mode: str,
    channels_last: bool,
    checkpoint: str | None,
    edge_upsample: str = "logits",
    decoder_type: type[GranularityAwareDecoder] = GranularityAwareDecoder,
    loader: Callable[[IRSAM, str], object] = load_checkpoint,
) -> IRSAM:
    """Assemble an :class:`IRSAM` around a built encoder and load weights.

    Everything trains except the decoder heads the prompt-free forward never uses; the freeze
    presets are applied by the LightningModule (``model.freeze``), the one place that knob lives.
    ``decoder_type`` and ``loader`` default to the GAD and :func:`load_checkpoint`; the SAM 2
    models pass their decoder subclass and :func:`load_sam2_checkpoint`.
    """
    model = IRSAM(
        image_encoder=encoder,
        pe_layer=PositionEmbeddingRandom(PROMPT_EMBED_DIM // 2),
        no_mask_embed=nn.Embedding(1, PROMPT_EMBED_DIM),
        mask_decoder=_prompt_free_decoder(
            edge_branch=edge_branch,
            gad_fusion=gad_fusion,
            shallow_channels=encoder.shallow_channels,
            decoder_type=decoder_type,
        ),
        pixel_mean=PIXEL_MEAN,
        pixel_std=PIXEL_STD,
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
    blocks = None
    if wpmd:
        dims = TINY_VIT_5M["embed_dims"]
        widths = {int(s): dims[min(int(s) + 1, len(dims) - 1)] for s in wpmd_stages}
        blocks = _wpmd_blocks(
            widths,
            wavelet=wpmd_wavelet,
            iterations=wpmd_iterations,
            refine=wpmd_refine,
            diffusion=wpmd_diffusion,
            pad_mode=wpmd_pad_mode,
        )
    encoder = TinyViTEncoder(
        img_size=image_size, wpmd=blocks, grad_checkpointing=grad_checkpointing, **TINY_VIT_5M
    )
    return _build_irsam(
        encoder=encoder,
        edge_branch=True,
        gad_fusion=gad_fusion,
        edge_upsample=edge_upsample,
        resize_mode=resize_mode,
        channels_last=channels_last,
        checkpoint=checkpoint,
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
      resize_mode (str): ``"nearest"`` or ``"bilinear"``.
      wpmd (bool): build WPMD blocks.
      wpmd_blocks (Sequence[int] | None): blocks followed by WPMD; None = the global blocks.
      wpmd_wavelet (str): orthogonal PyWavelets wavelet name.
      wpmd_iterations (int): diffusion steps T.
      wpmd_refine (str): ``"dwconv"`` (default for wide ViT maps) or ``"conv3x3"``.
      wpmd_diffusion (bool): False = DWT→IDWT only (ablation).
      wpmd_pad_mode (str): padding of odd maps.
      edge_branch (bool): GAD edge branch (False for the plain SAM baseline decoder).
      gad_fusion (str): ``"deep"``, ``"shallow"`` or ``"deep+shallow"``.
      edge_upsample (str): ``"probabilities"`` (authors' order) or ``"logits"`` (see
        :class:`IRSAM`).
      grad_checkpointing (bool): activation checkpointing per block (training only).
      channels_last (bool): channels-last memory format.
    Returns:
      IRSAM: the model.
    """
    blocks = None
    if wpmd:
        placement = global_attn_indexes if wpmd_blocks is None else wpmd_blocks
        blocks = _wpmd_blocks(
            {int(i): embed_dim for i in placement},
            wavelet=wpmd_wavelet,
            iterations=wpmd_iterations,
            refine=wpmd_refine,
            diffusion=wpmd_diffusion,
            pad_mode=wpmd_pad_mode,
        )
    encoder = ViTEncoder(
        img_size=image_size,
        pretrain_img_size=pretrain_image_size,
        embed_dim=embed_dim,
        depth=depth,
        num_heads=num_heads,
        global_attn_indexes=tuple(int(i) for i in global_attn_indexes),
        wpmd=blocks,
        grad_checkpointing=grad_checkpointing,
    )
    return _build_irsam(
        encoder=encoder,
        edge_branch=edge_branch,
        gad_fusion=gad_fusion,
        edge_upsample=edge_upsample,
        resize_mode=resize_mode,
        channels_last=channels_last,
        checkpoint=checkpoint,
    )


def build_irsam_vit_b(**kwargs) -> IRSAM:
    """IRSAM with SAM's ViT-B encoder (``sam_vit_b_01ec64.pth``); keyword arguments as
    :func:`build_irsam_vit` except the encoder sizes."""
    return build_irsam_vit(**SAM_VIT["vit_b"], **kwargs)


def build_irsam_vit_l(**kwargs) -> IRSAM:
    """IRSAM with SAM's ViT-L encoder (``sam_vit_l_0b3195.pth``); see :func:`build_irsam_vit`."""
    return build_irsam_vit(**SAM_VIT["vit_l"], **kwargs)


def build_irsam_vit_h(**kwargs) -> IRSAM:
    """IRSAM with SAM's ViT-H encoder (``sam_vit_h_4b8939.pth``); see :func:`build_irsam_vit`."""
    return build_irsam_vit(**SAM_VIT["vit_h"], **kwargs)


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
      checkpoint (str | None): ``mobile_sam.pt``, an irsam weights file or a Lightning ``.ckpt``.
      image_size (int): internal encoder resolution S.
      resize_mode (str): ``"nearest"`` or ``"bilinear"``.
      grad_checkpointing (bool): activation checkpointing per encoder block (training only).
      channels_last (bool): channels-last memory format.
    Returns:
      IRSAM: the model; its forward returns only ``"mask_logits"``.
    """
    encoder = TinyViTEncoder(
        img_size=image_size, grad_checkpointing=grad_checkpointing, **TINY_VIT_5M
    )
    return _build_irsam(
        encoder=encoder,
        edge_branch=False,
        gad_fusion="deep+shallow",
        resize_mode=resize_mode,
        channels_last=channels_last,
        checkpoint=checkpoint,
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
      image_size (int): internal encoder resolution S (multiple of 16).
      pretrain_image_size (int): resolution the weights are laid out for (1024).
      resize_mode (str): ``"nearest"`` or ``"bilinear"``.
      grad_checkpointing (bool): activation checkpointing per block (training only).
      channels_last (bool): channels-last memory format.
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
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(
                depth=2, embedding_dim=PROMPT_EMBED_DIM, mlp_dim=2048, num_heads=8
            ),
            transformer_dim=PROMPT_EMBED_DIM,
            iou_head_depth=3,
            iou_head_hidden_dim=256,
        ),
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
      resize_mode (str): ``"nearest"`` or ``"bilinear"``.
      wpmd (bool): build WPMD blocks.
      wpmd_stages (Sequence[int]): Hiera stages (0-3, strides 4-32) whose outputs get a WPMD.
      wpmd_wavelet (str): orthogonal PyWavelets wavelet name.
      wpmd_iterations (int): diffusion steps T.
      wpmd_refine (str): ``"dwconv"`` (default; the stage maps are wide) or ``"conv3x3"``.
      wpmd_diffusion (bool): False = DWT→IDWT only (ablation).
      wpmd_pad_mode (str): padding of odd maps.
      edge_branch (bool): GAD edge branch (False for the ``sam2_hiera_*`` baselines).
      gad_fusion (str): ``"deep"``, ``"shallow"`` (stride-4 FPN level) or ``"deep+shallow"``.
      edge_upsample (str): ``"probabilities"`` (authors' order) or ``"logits"`` (see
        :class:`IRSAM`).
      grad_checkpointing (bool): activation checkpointing per Hiera block (training only).
      channels_last (bool): channels-last memory format.
    Returns:
      IRSAM: the model.
    Raises:
      ImportError: ``sam2`` is not installed (the message names ``pip install -e ".[sam2]"``).
    """
    assert size in HIERA_SIZES, f"SAM 2 Hiera size must be one of {HIERA_SIZES}, got {size!r}"
    blocks = None
    if wpmd:
        widths = hiera_stage_channels(size)
        blocks = _wpmd_blocks(
            {int(s): widths[int(s)] for s in wpmd_stages},
            wavelet=wpmd_wavelet,
            iterations=wpmd_iterations,
            refine=wpmd_refine,
            diffusion=wpmd_diffusion,
            pad_mode=wpmd_pad_mode,
        )
    encoder = Sam2HieraEncoder(
        size=size, img_size=image_size, wpmd=blocks, grad_checkpointing=grad_checkpointing
    )
    return _build_irsam(
        encoder=encoder,
        edge_branch=edge_branch,
        gad_fusion=gad_fusion,
        resize_mode=resize_mode,
        channels_last=channels_last,
        checkpoint=checkpoint,
        edge_upsample=edge_upsample,
        decoder_type=Sam2GranularityAwareDecoder,
        loader=load_sam2_checkpoint,
    )


def build_irsam_sam2_hiera_t(**kwargs) -> IRSAM:
    """IRSAM on SAM 2 Hiera-T (``sam2.1_hiera_tiny.pt``); see :func:`build_irsam_sam2_hiera`."""
    return build_irsam_sam2_hiera(size="t", **kwargs)


def build_irsam_sam2_hiera_s(**kwargs) -> IRSAM:
    """IRSAM on SAM 2 Hiera-S (``sam2.1_hiera_small.pt``); see :func:`build_irsam_sam2_hiera`."""
    return build_irsam_sam2_hiera(size="s", **kwargs)


def build_irsam_sam2_hiera_bplus(**kwargs) -> IRSAM:
    """IRSAM on SAM 2 Hiera-B+ (``sam2.1_hiera_base_plus.pt``); see
    :func:`build_irsam_sam2_hiera`."""
    return build_irsam_sam2_hiera(size="b+", **kwargs)


def build_irsam_sam2_hiera_l(**kwargs) -> IRSAM:
    """IRSAM on SAM 2 Hiera-L (``sam2.1_hiera_large.pt``); see :func:`build_irsam_sam2_hiera`."""
    return build_irsam_sam2_hiera(size="l", **kwargs)


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
      size (str): Hiera size ``"t"``, ``"s"``, ``"b+"`` or ``"l"``.
      checkpoint (str | None): official SAM 2 / 2.1 file, irsam weights or a Lightning ``.ckpt``.
      image_size (int): internal encoder resolution S.
      resize_mode (str): ``"nearest"`` or ``"bilinear"``.
      grad_checkpointing (bool): activation checkpointing per Hiera block (training only).
      channels_last (bool): channels-last memory format.
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


def build_sam2_hiera_t(**kwargs) -> IRSAM:
    """Baseline SAM 2 Hiera-T; keyword arguments as :func:`build_sam2_hiera` except ``size``."""
    return build_sam2_hiera(size="t", **kwargs)


def build_sam2_hiera_s(**kwargs) -> IRSAM:
    """Baseline SAM 2 Hiera-S; see :func:`build_sam2_hiera`."""
    return build_sam2_hiera(size="s", **kwargs)


def build_sam2_hiera_bplus(**kwargs) -> IRSAM:
    """Baseline SAM 2 Hiera-B+; see :func:`build_sam2_hiera`."""
    return build_sam2_hiera(size="b+", **kwargs)


def build_sam2_hiera_l(**kwargs) -> IRSAM:
    """Baseline SAM 2 Hiera-L; see :func:`build_sam2_hiera`."""
    return build_sam2_hiera(size="l", **kwargs)


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
