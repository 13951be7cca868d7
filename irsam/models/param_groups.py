# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Optimiser parameter groups (layer-wise LR decay, no decay on norms/biases), parameter counts."""

from __future__ import annotations

from typing import Any

from torch import nn

# Parameters that are embeddings or biases in disguise (ndim > 1) and get no weight decay.
_NO_DECAY_NAMES = (
    "pos_embed",
    "no_mem_embed",
    "rel_pos_",
    "attention_biases",
    "iou_token",
    "mask_tokens",
    "edge_token",
    "no_mask_embed",
)


def build_param_groups(
    model: nn.Module,
    *,
    lr: float,
    weight_decay: float,
    layer_decay: float = 1.0,
    no_decay_norm_bias: bool = True,
) -> list[dict[str, Any]]:
    """Parameter groups with layer-wise learning-rate decay over the image encoder.

    The encoder has L = ``image_encoder.num_lr_layers`` levels (stem 0, one per block, the neck at
    L). A parameter at level l gets ``lr · layer_decay^(L − l)``; the neck, WPMD, the prompt-free
    embedding and the decoder get ``lr``. Only parameters with ``requires_grad`` are included.

    Arguments:
      model (nn.Module): an :class:`IRSAM` model.
      lr (float): base learning rate (top level).
      weight_decay (float): weight decay of the decayed parameters.
      layer_decay (float): per-level LR factor in (0, 1]; 1.0 disables layer decay.
      no_decay_norm_bias (bool): no weight decay for biases, norm weights, WPMD scalars and
        embedding-like tensors (position embeddings, attention biases, tokens).
    Returns:
      list[dict]: torch optimiser groups with ``params``, ``lr``, ``weight_decay``, plus
        ``lr_scale`` (lr / base lr) and ``name`` (e.g. ``"layer3_decay"``), sorted by level.
    """
    if not 0.0 < layer_decay <= 1.0:
        raise ValueError(f"model.layer_decay must lie in (0, 1], got {layer_decay}")
    encoder = model.image_encoder
    top = encoder.num_lr_layers
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        level = top
        if name.startswith("image_encoder."):
            level = encoder.lr_layer_id(name[len("image_encoder.") :])
        no_decay = no_decay_norm_bias and (
            param.ndim <= 1 or name.endswith(".bias") or any(key in name for key in _NO_DECAY_NAMES)
        )
        key = (level, no_decay)
        if key not in groups:
            scale = layer_decay ** (top - level)
            groups[key] = {
                "params": [],
                "lr": lr * scale,
                "weight_decay": 0.0 if no_decay else weight_decay,
                "lr_scale": scale,
                "name": f"layer{level}_{'no_decay' if no_decay else 'decay'}",
            }
        groups[key]["params"].append(param)
    return [groups[key] for key in sorted(groups)]


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Parameter counts as reported (docs/model.md §6).

    Arguments:
      model (nn.Module): an :class:`IRSAM` model.
    Returns:
      dict[str, int]: ``total`` (every parameter, comparable with the paper's 12.33 M),
        ``trainable`` (requires grad) and ``effective`` (trainable and used in the forward:
        excludes the decoder's IoU head and the hypernetworks of mask tokens 1-3).
    """
    unused = tuple("mask_decoder." + prefix for prefix in model.mask_decoder.unused_prefixes)
    total = trainable = effective = 0
    for name, param in model.named_parameters():
        total += param.numel()
        if param.requires_grad:
            trainable += param.numel()
            if not name.startswith(unused):
                effective += param.numel()
    return {"total": total, "trainable": trainable, "effective": effective}
