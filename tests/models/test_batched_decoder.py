# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""The batched GAD decoder equals a per-image loop, and bf16 CPU autocast stays close to fp32.

The per-image reference loop lives here (the model has no such switch).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from irsam.models import model_registry

SIZE = 64
# bf16 keeps 8 mantissa bits (relative rounding 2^-8 ≈ 0.4 % per op). Measured on irsam_tiny
# (random weights, 64² internal size, 3 seeds): max |bf16 − fp32| is 1.1–1.3 % of the fp32 logit
# range and thresholded masks agree on 99.3–99.5 % of pixels (random-init logits cluster near the
# 0 threshold, so this is a pessimistic case). Tolerances: ~3× the measured difference, and ≥ 98 %
# agreement.
BF16_MAX_DIFF_OVER_RANGE = 0.04
BF16_MIN_MASK_AGREEMENT = 0.98


def random_images(batch_size: int, seed: int) -> torch.Tensor:
    """B×3×SIZE×SIZE float RGB 0–255 (a grey image repeated to three channels)."""
    generator = torch.Generator().manual_seed(seed)
    grey = torch.rand(batch_size, 1, SIZE, SIZE, generator=generator) * 255.0
    return grey.repeat(1, 3, 1, 1)


def decoder_inputs(model: nn.Module, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """The keyword arguments ``IRSAM.forward`` passes to its decoder, for ``images``.

    Arguments:
      model (nn.Module): an :class:`irsam.models.IRSAM`.
      images (torch.Tensor): B×3×H×W float RGB, 0–255 scale.
    Returns:
      dict[str, torch.Tensor]: ``image_embeddings`` B×256×g×g, ``image_pe`` 1×256×g×g,
      ``dense_prompt_embeddings`` 1×256×1×1 and ``shallow_embeddings`` B×C_s×g×g.
    """
    deep, shallow = model.encode(images)
    grid = (deep.shape[-2], deep.shape[-1])
    return {
        "image_embeddings": deep,
        "image_pe": model.pe_layer(grid).unsqueeze(0).to(deep.dtype),
        "dense_prompt_embeddings": model.no_mask_embed.weight.reshape(1, -1, 1, 1),
        "shallow_embeddings": shallow,
    }


def decode_per_image(
    decoder: nn.Module, inputs: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Reference path: call the decoder once per image (batch 1) and concatenate the outputs.

    Arguments:
      decoder (nn.Module): the :class:`irsam.models.GranularityAwareDecoder`.
      inputs (dict[str, torch.Tensor]): from :func:`decoder_inputs`.
    Returns:
      dict[str, torch.Tensor]: the decoder outputs (B×1×4g×4g logits) stacked over the batch.
    """
    per_image = [
        decoder(
            image_embeddings=inputs["image_embeddings"][i : i + 1],
            image_pe=inputs["image_pe"],
            dense_prompt_embeddings=inputs["dense_prompt_embeddings"],
            shallow_embeddings=inputs["shallow_embeddings"][i : i + 1],
        )
        for i in range(inputs["image_embeddings"].shape[0])
    ]
    return {key: torch.cat([out[key] for out in per_image]) for key in per_image[0]}


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    """irsam_tiny with random weights at a 64² internal size, eval mode."""
    torch.manual_seed(0)
    return model_registry["irsam_tiny"](encoder_size=SIZE).eval()


def test_batched_decoder_equals_per_image_loop(model: torch.nn.Module, one_thread: None) -> None:
    """A batch of 3 through the decoder equals 3 batch-1 calls (atol 1e-5)."""
    images = random_images(3, seed=1)
    with torch.inference_mode():
        inputs = decoder_inputs(model, images)
        batched = model.mask_decoder(**inputs)
        looped = decode_per_image(model.mask_decoder, inputs)
    assert set(batched) == {"mask_logits", "edge_logits"}
    for key, value in batched.items():
        assert value.shape == (3, 1, SIZE // 4, SIZE // 4), f"{key}: {tuple(value.shape)}"
        torch.testing.assert_close(value, looped[key], atol=1e-5, rtol=0.0)


def test_full_model_batch_invariance(model: torch.nn.Module, one_thread: None) -> None:
    """The whole model (encoder included, eval BatchNorm) gives the same outputs per image."""
    images = random_images(3, seed=2)
    with torch.inference_mode():
        batched = model(images)
        single = [model(images[i : i + 1]) for i in range(3)]
    for key, value in batched.items():
        looped = torch.cat([out[key] for out in single])
        torch.testing.assert_close(value, looped, atol=1e-5, rtol=0.0)


def test_bf16_autocast_close_to_fp32(model: torch.nn.Module, one_thread: None) -> None:
    """bf16 CPU autocast logits: max diff < 4 % of the fp32 range; masks agree on ≥ 98 %."""
    images = random_images(2, seed=0)
    with torch.inference_mode():
        reference = model(images)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(images)
    for key, value in reference.items():
        assert low[key].dtype == torch.bfloat16, f"{key} was not computed in bf16"
        other = low[key].float()
        spread = float(value.max() - value.min())
        relative = float((value - other).abs().max()) / spread
        assert relative < BF16_MAX_DIFF_OVER_RANGE, f"{key}: max diff {relative:.3%} of range"
        agreement = float(((value > 0) == (other > 0)).float().mean())
        assert agreement >= BF16_MIN_MASK_AGREEMENT, f"{key}: masks agree on {agreement:.2%}"
