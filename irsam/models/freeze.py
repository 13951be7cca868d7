# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Freeze presets: which parts of an :class:`IRSAM` model are trained."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from irsam.utils import get_logger

log = get_logger(__name__)

_WPMD_PREFIX = "image_encoder.wpmd."

_PRESETS: dict[str, Callable[[str], bool]] = {
    # everything trains (the authors' recipe)
    "none": lambda name: True,
    # the pretrained encoder is frozen; WPMD, the prompt-free embedding and the decoder train
    "encoder": lambda name: not name.startswith("image_encoder.") or name.startswith(_WPMD_PREFIX),
    # only WPMD and the decoder train (the prompt-free embedding is frozen too)
    "wpmd_decoder": lambda name: name.startswith((_WPMD_PREFIX, "mask_decoder.")),
    # only the decoder trains (encoder, WPMD and prompt-free embedding frozen)
    "decoder_only": lambda name: name.startswith("mask_decoder."),
}
FREEZE_PRESETS = tuple(_PRESETS)


def apply_freeze(model: nn.Module, preset: str) -> dict[str, int]:
    """Set ``requires_grad`` according to a preset; the decoder's unused heads stay frozen.

    Arguments:
      model (nn.Module): an :class:`IRSAM` model (names ``image_encoder.*``, ``mask_decoder.*``).
      preset (str): ``"none"``, ``"encoder"`` (encoder frozen except WPMD), ``"wpmd_decoder"``
        (only WPMD and decoder train) or ``"decoder_only"``.
    Returns:
      dict[str, int]: ``{"trainable": n, "frozen": m}`` parameter (element) counts.
    Raises:
      ValueError: an unknown preset.
    """
    if preset not in _PRESETS:
        raise ValueError(f"model.freeze must be one of {FREEZE_PRESETS}, got {preset!r}")
    rule = _PRESETS[preset]
    for name, param in model.named_parameters():
        param.requires_grad_(rule(name))
    model.mask_decoder.freeze_unused_()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    log.info("freeze preset %r: %d trainable, %d frozen parameters", preset, trainable, frozen)
    # BatchNorm layers follow their parameters (see IRSAM.train); re-apply the current mode.
    model.train(model.training)
    return {"trainable": trainable, "frozen": frozen}
