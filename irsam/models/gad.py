# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""GAD: the Granularity-Aware Decoder with an edge token (docs/model.md §4).

SAM's mask decoder extended HQ-SAM style. Token order in the transformer is
``[iou_token, mask_tokens(4), edge_token]``. Module names follow SAM (``iou_token``,
``mask_tokens``, ``output_upscaling``, ``output_hypernetworks_mlps``, ``iou_prediction_head``,
``transformer``) and the IRSAM authors (``edge_token``, ``edge_mlp``, ``embedding_encoder``,
``compress_vit_feat``, ``embedding_maskfeature``), so MobileSAM/SAM decoder weights load as is.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from segment_anything.modeling.mask_decoder import MLP
from torch import nn

from irsam.models.layers import LayerNorm2d

GAD_FUSIONS = ("deep", "shallow", "deep+shallow")


def _conv_stack(
    chans: tuple[int, int, int], activation: type[nn.Module], end_act: bool = False, **conv: int
) -> nn.Sequential:
    """ConvT in→mid, LayerNorm2d, activation, ConvT mid→out (``end_act``: one more activation)."""
    c_in, mid, out = chans
    layers = [
        nn.ConvTranspose2d(c_in, mid, **conv),
        LayerNorm2d(mid),
        activation(),
        nn.ConvTranspose2d(mid, out, **conv),
    ]
    if end_act:
        layers.append(activation())
    return nn.Sequential(*layers)


class GranularityAwareDecoder(nn.Module):
    """Prompt-free mask decoder: SAM's two-way transformer, mask token 0 and (optionally) the
    edge token whose map gates the mask, fusing the deep and/or shallow encoder features.

    The IoU head and the hypernetworks of mask tokens 1-3 are built (checkpoint compatibility)
    but never run, and are frozen (``requires_grad=False``); see :attr:`unused_prefixes`.
    """

    unused_prefixes: tuple[str, ...] = (
        "iou_prediction_head.",
        "output_hypernetworks_mlps.1.",
        "output_hypernetworks_mlps.2.",
        "output_hypernetworks_mlps.3.",
    )

    def __init__(
        self,
        *,
        transformer_dim: int,
        transformer: nn.Module,
        num_multimask_outputs: int = 3,
        activation: type[nn.Module] = nn.GELU,
        iou_head_depth: int = 3,
        iou_head_hidden_dim: int = 256,
        edge_branch: bool = True,
        gad_fusion: str = "deep+shallow",
        shallow_channels: int = 160,
    ) -> None:
        """
        Arguments:
          transformer_dim (int): channel width of the transformer and embeddings (256).
          transformer (nn.Module): segment-anything ``TwoWayTransformer``.
          num_multimask_outputs (int): SAM's extra mask tokens (3; kept for the weight layout).
          activation (type[nn.Module]): activation of the upscaling branches (GELU).
          iou_head_depth (int): layers of the (unused) IoU head.
          iou_head_hidden_dim (int): width of the (unused) IoU head.
          edge_branch (bool): True builds the GAD (edge token, fusion, gating); False gives the
            plain SAM decoder path (mask token 0 only) for the baselines.
          gad_fusion (str): edge-feature source F: ``"deep"`` (the authors' release),
            ``"shallow"`` or ``"deep+shallow"`` (the paper; default). Ignored without edge branch.
          shallow_channels (int): C_s of the shallow embedding (160 TinyViT, 768/1024/1280 ViT).
        """
        super().__init__()
        if gad_fusion not in GAD_FUSIONS:
            raise ValueError(
                f"model.net.gad_fusion must be one of {GAD_FUSIONS}, got {gad_fusion!r}"
            )
        dim = transformer_dim
        self.transformer_dim = dim
        self.transformer = transformer
        self.edge_branch = edge_branch
        self.gad_fusion = gad_fusion if edge_branch else "none"
        self.num_mask_tokens = num_multimask_outputs + 1

        self.iou_token = nn.Embedding(1, dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, dim)
        x4 = {"kernel_size": 2, "stride": 2}  # two ×2 steps
        self.output_upscaling = _conv_stack(
            (dim, dim // 4, dim // 8), activation, end_act=True, **x4
        )
        self.output_hypernetworks_mlps = nn.ModuleList(
            [MLP(dim, dim, dim // 8, 3) for _ in range(self.num_mask_tokens)]
        )
        self.iou_prediction_head = MLP(
            dim, iou_head_hidden_dim, self.num_mask_tokens, iou_head_depth
        )

        if edge_branch:
            self.edge_token = nn.Embedding(1, dim)
            self.edge_mlp = MLP(dim, dim, dim // 8, 3)
            if "deep" in gad_fusion:
                self.embedding_encoder = _conv_stack((dim, dim // 4, dim // 8), activation, **x4)
            if "shallow" in gad_fusion:
                self.compress_vit_feat = _conv_stack(
                    (shallow_channels, dim, dim // 8), activation, **x4
                )
            self.embedding_maskfeature = _conv_stack(
                (dim // 8, dim // 4, dim // 8), activation, kernel_size=3, padding=1
            )
        self.freeze_unused_()

    def freeze_unused_(self) -> None:
        """Set ``requires_grad=False`` on the parameters that never take part in the forward."""
        for name, param in self.named_parameters():
            if name.startswith(self.unused_prefixes):
                param.requires_grad_(False)

    def forward(
        self,
        *,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        shallow_embeddings: torch.Tensor | Sequence[torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Batched prompt-free decoding (B×T×256 tokens against B×256×g×g, no per-image loop).

        Arguments:
          image_embeddings (torch.Tensor): deep encoder embedding, B×256×g×g.
          image_pe (torch.Tensor): dense positional encoding, 1×256×g×g.
          dense_prompt_embeddings (torch.Tensor): ``no_mask_embed``, 1×256×1×1 or B×256×g×g.
          shallow_embeddings (torch.Tensor | Sequence[torch.Tensor] | None): shallow encoder
            embedding B×C_s×g×g, required when ``gad_fusion`` uses the shallow branch; for
            :class:`~irsam.models.sam2_encoder.Sam2GranularityAwareDecoder` the FPN pair (always
            required).
        Returns:
          dict[str, torch.Tensor]: ``"mask_logits"`` B×1×4g×4g (gated by the edge map when the
            edge branch exists) and, with the edge branch, ``"edge_logits"`` B×1×4g×4g (logits;
            the gate uses their sigmoid).
        """
        b, c, h, w = image_embeddings.shape
        if c != self.transformer_dim:
            raise ValueError(
                f"the decoder expects B×{self.transformer_dim}×g×g image embeddings, got shape "
                f"{tuple(image_embeddings.shape)}: build the encoder with out_chans="
                f"{self.transformer_dim} (its neck width)"
            )
        token_weights = [self.iou_token.weight, self.mask_tokens.weight]
        if self.edge_branch:
            token_weights.append(self.edge_token.weight)
        tokens = torch.cat(token_weights, dim=0).unsqueeze(0).expand(b, -1, -1)

        src = image_embeddings + dense_prompt_embeddings
        hs, src = self.transformer(src, image_pe.expand(b, -1, -1, -1), tokens)
        upscaled = self._upscale(src.transpose(1, 2).reshape(b, c, h, w), shallow_embeddings)

        mask_logits = self._dot(self.output_hypernetworks_mlps[0](hs[:, 1, :]), upscaled)
        if not self.edge_branch:
            return {"mask_logits": mask_logits}

        features = self.embedding_maskfeature(upscaled)
        if "deep" in self.gad_fusion:
            features = features + self.embedding_encoder(image_embeddings)
        if "shallow" in self.gad_fusion:
            features = features + self.compress_vit_feat(
                self._edge_shallow(shallow_embeddings, (h, w))
            )
        edge_logits = self._dot(self.edge_mlp(hs[:, 1 + self.num_mask_tokens, :]), features)
        mask_logits = mask_logits * (1.0 + torch.sigmoid(edge_logits))
        return {"mask_logits": mask_logits, "edge_logits": edge_logits}

    def _upscale(
        self, src: torch.Tensor, shallow_embeddings: torch.Tensor | Sequence[torch.Tensor] | None
    ) -> torch.Tensor:
        """Mask features B×32×4g×4g from the image tokens B×256×g×g (no shallow embedding here)."""
        return self.output_upscaling(src)

    def _edge_shallow(
        self, shallow: torch.Tensor | Sequence[torch.Tensor] | None, grid: tuple[int, int]
    ) -> torch.Tensor:
        """The shallow embedding B×C_s×h×w for ``compress_vit_feat``, checked against ``grid``."""
        if shallow is None:
            raise ValueError(
                f"gad_fusion={self.gad_fusion!r} needs the shallow embedding: pass "
                "shallow_embeddings= (the encoder's second output), or build the decoder with "
                "gad_fusion='deep'"
            )
        if tuple(shallow.shape[-2:]) != tuple(grid):
            raise ValueError(
                f"the shallow embedding's grid {tuple(shallow.shape[-2:])} differs from the deep "
                f"embedding's {tuple(grid)}: pass both outputs of the same encoder call"
            )
        return shallow

    @staticmethod
    def _dot(hyper: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Per-pixel dot product: B×K hypernetwork outputs, B×K×H×W features → B×1×H×W."""
        b, k, h, w = features.shape
        return (hyper.unsqueeze(1) @ features.reshape(b, k, h * w)).view(b, 1, h, w)
