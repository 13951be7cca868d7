# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""ESTIMATE of the largest training batch at 1024² internal resolution on 24 GB / 80 GB GPUs.

Method (no GPU needed):

1. On CPU, measure the peak RSS growth of one fp32 training step (forward + IRSAM loss +
   backward + AdamW) at two batch sizes and a small internal size S; the slope is the activation
   (+ gradient-of-activation) memory per image at S.
2. Scale it by the token-count ratio (1024 / S)²: ASSUMPTION: per-image activation memory is
   linear in the number of pixels/tokens. This holds for convolutions, MLPs and windowed
   attention (fixed window size). It does not hold for the global-attention blocks of the SAM
   ViT encoders, which materialise B·heads·N×N attention matrices (segment-anything's
   ``Attention`` does not use a fused kernel); for those models an analytic N² term is added:
   per global block, the saved softmax output plus ≈ 3 transient N×N tensors in backward.
3. Static memory = weights (4 B/parameter) + gradients and two AdamW moments (12 B/trainable
   parameter). A 10 % reserve of the card is kept for the CUDA context, cuBLAS/cuDNN workspaces
   and allocator fragmentation.

The result is an ESTIMATE for fp32; bf16 autocast roughly halves the activation part.
"""

from __future__ import annotations

import math
from typing import Any

from benchmarks.common import (
    PeakMemory,
    build_loss,
    build_model,
    build_optimizer,
    synthetic_batch,
    train_step,
)

TARGET_SIZE = 1024
GPUS_GB = {"24 GB": 24, "80 GB": 80}
RESERVE_FRACTION = 0.10
GLOBAL_ATTENTION_COPIES = 4


def measure_step_peak(model_name: str, image_size: int, batch_size: int) -> int:
    """Peak RSS growth (bytes) of one fp32 CPU training step after a warm-up step.

    Arguments:
      model_name (str): registry key.
      image_size (int): internal size S (the input is S² too).
      batch_size (int): B.
    Returns:
      int: the peak growth in bytes.
    """
    model = build_model(model_name, image_size=image_size, device="cpu")
    model.train()
    loss_fn = build_loss()
    optimizer = build_optimizer(model, fused=False)
    batch = synthetic_batch(batch_size, image_size, "cpu")
    train_step(model, loss_fn, optimizer, batch, device="cpu", precision="fp32")
    with PeakMemory("cpu") as memory:
        train_step(model, loss_fn, optimizer, batch, device="cpu", precision="fp32")
    return memory.peak_bytes


def global_attention_bytes(model: Any, size: int) -> int:
    """Analytic per-image N² memory of the explicit global-attention blocks at internal ``size``.

    Arguments:
      model (Any): an IRSAM model; only ViT encoders (``global_attn_indexes``) contribute.
      size (int): internal resolution S (N = (S/16)² tokens).
    Returns:
      int: bytes per image: blocks × heads × N² × 4 B × (1 saved + 3 transient, the transient
      counted once since blocks run one at a time).
    """
    encoder = model.image_encoder
    blocks = getattr(encoder, "global_attn_indexes", None)
    if not blocks:
        return 0
    heads = encoder.blocks[blocks[0]].attn.num_heads
    tokens = (size // 16) ** 2
    matrix = heads * tokens * tokens * 4
    return len(blocks) * matrix + (GLOBAL_ATTENTION_COPIES - 1) * matrix


def estimate(model_name: str, image_size: int, batch_sizes: tuple[int, int]) -> dict[str, Any]:
    """Per-image memory at S, its 1024² extrapolation and the largest batch per GPU size.

    Arguments:
      model_name (str): registry key.
      image_size (int): small internal size S measured on CPU.
      batch_sizes (tuple[int, int]): the two batch sizes of the slope (b1 < b2).
    Returns:
      dict[str, Any]: measured peaks, per-image bytes at S and at 1024, static bytes and
      ``max_batch`` per GPU (0 = does not fit even at batch 1).
    """
    b1, b2 = batch_sizes
    assert b2 > b1, f"need two increasing batch sizes, got {batch_sizes}"
    peak1 = measure_step_peak(model_name, image_size, b1)
    peak2 = measure_step_peak(model_name, image_size, b2)
    per_image_small = max(peak2 - peak1, 0) / (b2 - b1)
    ratio = (TARGET_SIZE / image_size) ** 2
    model = build_model(model_name, image_size=TARGET_SIZE, device="cpu")
    attention = global_attention_bytes(model, TARGET_SIZE)
    per_image = per_image_small * ratio + attention
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    static = 4 * total + 12 * trainable
    max_batch = {}
    for label, gigabytes in GPUS_GB.items():
        usable = gigabytes * 1e9 * (1 - RESERVE_FRACTION) - static
        max_batch[label] = max(math.floor(usable / per_image), 0) if per_image > 0 else None
    return {
        "model": model_name,
        "measured_size": image_size,
        "batch_sizes": [b1, b2],
        "peak_mib": [round(peak1 / 2**20, 1), round(peak2 / 2**20, 1)],
        "per_image_mib_at_measured": round(per_image_small / 2**20, 1),
        "token_ratio": ratio,
        "global_attention_mib_per_image": round(attention / 2**20, 1),
        "per_image_mib_at_1024": round(per_image / 2**20, 1),
        "static_mib": round(static / 2**20, 1),
        "max_batch_estimate": max_batch,
    }


def estimate_all(models: dict[str, int], batch_sizes: tuple[int, int]) -> list[dict[str, Any]]:
    """:func:`estimate` for each model at its own small measurement size.

    Arguments:
      models (dict[str, int]): registry key → measured internal size S.
      batch_sizes (tuple[int, int]): the two batch sizes of the slope.
    Returns:
      list[dict[str, Any]]: one estimate per model.
    """
    return [estimate(name, size, batch_sizes) for name, size in models.items()]
