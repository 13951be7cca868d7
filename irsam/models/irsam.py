# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""IRSAM: the prompt-free composite (encoder with optional WPMD, embeddings, decoder)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from segment_anything.modeling.prompt_encoder import PositionEmbeddingRandom
from torch import nn
from torch.nn import functional as F

from irsam.models.resize import RESIZE_MODES, resize_to_square

EDGE_UPSAMPLE = ("logits", "probabilities")
PIXEL_MEAN = (123.675, 116.28, 103.53)  # SAM's RGB normalisation, 0-255 scale
PIXEL_STD = (58.395, 57.12, 57.375)


class IRSAM(nn.Module):
    """Prompt-free SAM for infrared small targets: images in, mask (and edge) logits out.

    Submodules: ``image_encoder`` (TinyViT or SAM ViT, WPMD blocks inside it), ``pe_layer`` (SAM's
    random-Fourier position encoding), ``no_mask_embed`` (SAM's dense "no mask" embedding) and
    ``mask_decoder`` (:class:`GranularityAwareDecoder`). BatchNorm layers whose parameters are all
    frozen stay in eval mode, so a frozen encoder keeps its running statistics.
    """

    mask_threshold: float = 0.0
    image_format: str = "RGB"

    def __init__(
        self,
        *,
        image_encoder: nn.Module,
        pe_layer: PositionEmbeddingRandom,
        no_mask_embed: nn.Embedding,
        mask_decoder: nn.Module,
        pixel_mean: Sequence[float] = PIXEL_MEAN,
        pixel_std: Sequence[float] = PIXEL_STD,
        resize_mode: str = "nearest",
        channels_last: bool = False,
        edge_upsample: str = "logits",
    ) -> None:
        """
        Arguments:
          image_encoder (nn.Module): maps B×3×S×S normalised images to (deep B×256×g×g,
            shallow B×C_s×g×g); exposes ``img_size`` (S) and ``shallow_channels``.
          pe_layer (PositionEmbeddingRandom): random-Fourier PE (2×128 Gaussian matrix).
          no_mask_embed (nn.Embedding): 1×256 dense prompt embedding used without prompts.
          mask_decoder (nn.Module): :class:`GranularityAwareDecoder`.
          pixel_mean (Sequence[float]): RGB mean on the 0-255 scale (SAM's values).
          pixel_std (Sequence[float]): RGB std on the 0-255 scale (SAM's values).
          resize_mode (str): how an image side shorter than S grows to S: ``"nearest"`` (the
            authors' ×2 nearest upsampling of 512² inputs) or ``"bilinear"``. A side longer than
            S always shrinks with antialiased bilinear filtering, so that small targets of
            native-size frames survive (:mod:`irsam.models.resize`).
          channels_last (bool): feed the encoder channels-last tensors (pair with weights in
            channels-last memory format for faster convs on GPU). On CPU the encoder input is
            always channels-last: oneDNN's depthwise and 1×1 convolutions are 2-3× faster in that
            layout, and TinyViT's map ↔ token reshapes become free views.
          edge_upsample (str): order of the edge map's sigmoid and its upsampling to the input
            size: ``"probabilities"`` (the authors' code: sigmoid on the 4g×4g decoder grid, then
            bilinear upsampling of the probabilities) or ``"logits"`` (bilinear upsampling of the
            logits, then sigmoid). See docs/model.md, "Edge branch".
        """
        super().__init__()
        if resize_mode not in RESIZE_MODES:
            raise ValueError(
                f"model.net.resize_mode must be one of {RESIZE_MODES}, got {resize_mode!r}"
            )
        if edge_upsample not in EDGE_UPSAMPLE:
            raise ValueError(
                f"model.net.edge_upsample must be one of {EDGE_UPSAMPLE}, got {edge_upsample!r}"
            )
        self.edge_upsample = edge_upsample
        self.image_encoder = image_encoder
        self.pe_layer = pe_layer
        self.no_mask_embed = no_mask_embed
        self.mask_decoder = mask_decoder
        self.resize_mode = resize_mode
        self.channels_last = channels_last
        for name, values in (("pixel_mean", pixel_mean), ("pixel_std", pixel_std)):
            self.register_buffer(
                name, torch.tensor(values, dtype=torch.float32).view(-1, 1, 1), False
            )

    @property
    def img_size(self) -> int:
        """Internal (encoder) resolution S."""
        return self.image_encoder.img_size

    @property
    def has_edge_branch(self) -> bool:
        """Whether the decoder predicts an edge map (IRSAM) or only masks (baselines)."""
        return bool(self.mask_decoder.edge_branch)

    def train(self, mode: bool = True) -> IRSAM:
        """Set training mode; BatchNorm layers with only frozen parameters stay in eval mode.

        Arguments:
          mode (bool): True for training, False for evaluation.
        Returns:
          IRSAM: self.
        """
        super().train(mode)
        if mode:
            for module in self.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    params = list(module.parameters())
                    if params and not any(p.requires_grad for p in params):
                        module.eval()
        return self

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """Normalise with SAM's mean/std and resize to the internal resolution
        (:func:`~irsam.models.resize.resize_to_square`: growing sides with ``resize_mode``,
        shrinking sides antialiased).

        Arguments:
          images (torch.Tensor): B×3×H×W float RGB, 0-255 scale.
        Returns:
          torch.Tensor: B×3×S×S normalised images (channels-last on CPU or with
            ``channels_last``).
        """
        x = (images - self.pixel_mean) / self.pixel_std
        x = resize_to_square(x, self.img_size, self.resize_mode)
        if self.channels_last or x.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run preprocessing and the image encoder.

        Arguments:
          images (torch.Tensor): B×3×H×W float RGB, 0-255 scale.
        Returns:
          (torch.Tensor, torch.Tensor): deep B×256×g×g and shallow B×C_s×g×g (g = S/16).
        """
        return self.image_encoder(self.preprocess(images))

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """
        Arguments:
          images (torch.Tensor): B×3×H×W float RGB on the 0-255 scale, any H, W (grey images
            repeated to 3 channels upstream). Resized to S×S (aspect not kept).
        Returns:
          dict[str, torch.Tensor]: ``"mask_logits"`` B×1×H×W logits (threshold at
            ``mask_threshold``) and, for models with the edge branch, ``"edge_probs"`` B×1×H×W
            edge probabilities in [0, 1]; both bilinearly resized to the input size (the edge in
            the order set by ``edge_upsample``).
        Raises:
          ValueError: ``images`` is not B×3×H×W.
          TypeError: ``images`` is not a floating-point tensor.
        """
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"IRSAM expects B×3×H×W RGB images, got shape {tuple(images.shape)}: add the "
                "batch axis (images[None]) and repeat grey images to 3 channels"
            )
        if not images.is_floating_point():
            raise TypeError(
                f"IRSAM expects float images on the 0-255 scale, got {images.dtype}: convert "
                "with images.float() (no division by 255)"
            )
        deep, shallow = self.encode(images)
        grid = (deep.shape[-2], deep.shape[-1])
        outputs = self.mask_decoder(
            image_embeddings=deep,
            image_pe=self.pe_layer(grid).unsqueeze(0).to(deep.dtype),
            dense_prompt_embeddings=self.no_mask_embed.weight.reshape(1, -1, 1, 1),
            shallow_embeddings=shallow,
        )
        size = images.shape[-2:]

        def upsample(value: torch.Tensor) -> torch.Tensor:
            return F.interpolate(value, size=size, mode="bilinear", align_corners=False)

        result = {"mask_logits": upsample(outputs["mask_logits"])}
        if "edge_logits" in outputs:
            edge = outputs["edge_logits"]
            result["edge_probs"] = (
                upsample(torch.sigmoid(edge))
                if self.edge_upsample == "probabilities"
                else torch.sigmoid(upsample(edge))
            )
        return result
