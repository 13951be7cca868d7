# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""The batched GAD decoder equals a per-image loop, and bf16 CPU autocast stays close to fp32.

The per-image reference loop lives in ``benchmarks/compare.py`` (the model has no such switch).
"""

from __future__ import annotations

import pytest
import torch

from benchmarks.common import autocast, build_model, synthetic_batch, torch_threads
from benchmarks.compare import decode_per_image, decoder_inputs

SIZE = 64
# bf16 keeps 8 mantissa bits (relative rounding 2^-8 ≈ 0.4 % per op). Measured on irsam_tiny
# (random weights, 64² internal size, 3 seeds): max |bf16 − fp32| is 1.1–1.3 % of the fp32 logit
# range and thresholded masks agree on 99.3–99.5 % of pixels (random-init logits cluster near the
# 0 threshold, so this is a pessimistic case). Tolerances: ~3× the measured difference, and ≥ 98 %
# agreement.
BF16_MAX_DIFF_OVER_RANGE = 0.04
BF16_MIN_MASK_AGREEMENT = 0.98


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    """irsam_tiny with random weights at a 64² internal size, eval mode."""
    return build_model("irsam_tiny", image_size=SIZE, device="cpu").eval()


def test_batched_decoder_equals_per_image_loop(model: torch.nn.Module) -> None:
    """A batch of 3 through the decoder equals 3 batch-1 calls (atol 1e-5)."""
    images = synthetic_batch(3, SIZE, "cpu", seed=1)["image"]
    with torch_threads(1), torch.inference_mode():
        inputs = decoder_inputs(model, images)
        batched = model.mask_decoder(**inputs)
        looped = decode_per_image(model.mask_decoder, inputs)
    assert set(batched) == {"mask_logits", "edge_logits"}
    for key, value in batched.items():
        assert value.shape == (3, 1, SIZE // 4, SIZE // 4), f"{key}: {tuple(value.shape)}"
        torch.testing.assert_close(value, looped[key], atol=1e-5, rtol=0.0)


def test_full_model_batch_invariance(model: torch.nn.Module) -> None:
    """The whole model (encoder included, eval BatchNorm) gives the same outputs per image."""
    images = synthetic_batch(3, SIZE, "cpu", seed=2)["image"]
    with torch_threads(1), torch.inference_mode():
        batched = model(images)
        single = [model(images[i : i + 1]) for i in range(3)]
    for key, value in batched.items():
        looped = torch.cat([out[key] for out in single])
        torch.testing.assert_close(value, looped, atol=1e-5, rtol=0.0)


def test_bf16_autocast_close_to_fp32(model: torch.nn.Module) -> None:
    """bf16 CPU autocast logits: max diff < 4 % of the fp32 range; masks agree on ≥ 98 %."""
    images = synthetic_batch(2, SIZE, "cpu", seed=0)["image"]
    with torch_threads(1), torch.inference_mode():
        reference = model(images)
        with autocast("cpu", "bf16"):
            low = model(images)
    for key, value in reference.items():
        assert low[key].dtype == torch.bfloat16, f"{key} was not computed in bf16"
        other = low[key].float()
        spread = float(value.max() - value.min())
        relative = float((value - other).abs().max()) / spread
        assert relative < BF16_MAX_DIFF_OVER_RANGE, f"{key}: max diff {relative:.3%} of range"
        agreement = float(((value > 0) == (other > 0)).float().mean())
        assert agreement >= BF16_MIN_MASK_AGREEMENT, f"{key}: masks agree on {agreement:.2%}"
