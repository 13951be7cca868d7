# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""GAD: the Granularity-Aware Decoder with an edge token (docs/model.md §4).

SAM's mask decoder extended HQ-SAM style. Token order in the transformer is
``[iou_token, mask_tokens(4), edge_token]``. Module names follow SAM (``iou_token``,
``mask_tokens``, ``output_upscaling``, ``output_hypernetworks_mlps``, ``iou_prediction_head``,
``transformer``) and the IRSAM authors (``edge_token``, ``edge_mlp``, ``embedding_encoder``,
``compress_vit_feat``, ``embedding_maskfeature``), so MobileSAM/SAM decoder weights load as is.
"""

from __future__ import annotations

import torch
from segment_anything.modeling.mask_decoder import MLP
from torch import nn

from irsam.models.layers import LayerNorm2d

GAD_FUSIONS = ("deep", "shallow", "deep+shallow")


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
        assert gad_fusion in GAD_FUSIONS, (
            f"gad_fusion must be one of {GAD_FUSIONS}, got {gad_fusion!r}"
        )
        dim = transformer_dim
        self.transformer_dim = dim
        self.transformer = transformer
        self.edge_branch = edge_branch
        self.gad_fusion = gad_fusion if edge_branch else "none"
        self.num_mask_tokens = num_multimask_outputs + 1

        self.iou_token = nn.Embedding(1, dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(dim, dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(dim // 4),
            activation(),
            nn.ConvTranspose2d(dim // 4, dim // 8, kernel_size=2, stride=2),
            activation(),
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
                self.embedding_encoder = nn.Sequential(
                    nn.ConvTranspose2d(dim, dim // 4, kernel_size=2, stride=2),
                    LayerNorm2d(dim // 4),
                    activation(),
                    nn.ConvTranspose2d(dim // 4, dim // 8, kernel_size=2, stride=2),
                )
            if "shallow" in gad_fusion:
                self.compress_vit_feat = nn.Sequential(
                    nn.ConvTranspose2d(shallow_channels, dim, kernel_size=2, stride=2),
                    LayerNorm2d(dim),
                    activation(),
                    nn.ConvTranspose2d(dim, dim // 8, kernel_size=2, stride=2),
                )
            self.embedding_maskfeature = nn.Sequential(
                nn.ConvTranspose2d(dim // 8, dim // 4, kernel_size=3, stride=1, padding=1),
                LayerNorm2d(dim // 4),
                activation(),
                nn.ConvTranspose2d(dim // 4, dim // 8, kernel_size=3, stride=1, padding=1),
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
        shallow_embeddings: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Batched prompt-free decoding (B×T×256 tokens against B×256×g×g, no per-image loop).

        Arguments:
          image_embeddings (torch.Tensor): deep encoder embedding, B×256×g×g.
          image_pe (torch.Tensor): dense positional encoding, 1×256×g×g.
          dense_prompt_embeddings (torch.Tensor): ``no_mask_embed``, 1×256×1×1 or B×256×g×g.
          shallow_embeddings (torch.Tensor | None): shallow encoder embedding B×C_s×g×g;
            required when ``gad_fusion`` uses the shallow branch.
        Returns:
          dict[str, torch.Tensor]: ``"mask_logits"`` B×1×4g×4g (gated by the edge map when the
            edge branch exists) and, with the edge branch, ``"edge_logits"`` B×1×4g×4g (logits;
            the gate uses their sigmoid).
        """
        b, c, h, w = image_embeddings.shape
        assert c == self.transformer_dim, f"expected {self.transformer_dim}-ch embeddings, got {c}"
        token_weights = [self.iou_token.weight, self.mask_tokens.weight]
        if self.edge_branch:
            token_weights.append(self.edge_token.weight)
        tokens = torch.cat(token_weights, dim=0).unsqueeze(0).expand(b, -1, -1)

        src = image_embeddings + dense_prompt_embeddings
        pos = image_pe.expand(b, -1, -1, -1)
        hs, src = self.transformer(src, pos, tokens)
        upscaled = self.output_upscaling(src.transpose(1, 2).reshape(b, c, h, w))

        hyper_mask = self.output_hypernetworks_mlps[0](hs[:, 1, :])
        mask_logits = self._dot(hyper_mask, upscaled)
        if not self.edge_branch:
            return {"mask_logits": mask_logits}

        features = self.embedding_maskfeature(upscaled)
        if "deep" in self.gad_fusion:
            features = features + self.embedding_encoder(image_embeddings)
        if "shallow" in self.gad_fusion:
            assert shallow_embeddings is not None, (
                f"gad_fusion={self.gad_fusion!r} needs the shallow embedding"
            )
            assert shallow_embeddings.shape[-2:] == (h, w), (
                f"shallow grid {tuple(shallow_embeddings.shape[-2:])} != deep grid {(h, w)}"
            )
            features = features + self.compress_vit_feat(shallow_embeddings)
        edge_logits = self._dot(self.edge_mlp(hs[:, 1 + self.num_mask_tokens, :]), features)
        mask_logits = mask_logits * (1.0 + torch.sigmoid(edge_logits))
        return {"mask_logits": mask_logits, "edge_logits": edge_logits}

    @staticmethod
    def _dot(hyper: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Per-pixel dot product: B×K hypernetwork outputs, B×K×H×W features → B×1×H×W."""
        b, k, h, w = features.shape
        return (hyper.unsqueeze(1) @ features.reshape(b, k, h * w)).view(b, 1, h, w)
