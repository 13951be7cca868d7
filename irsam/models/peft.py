# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Parameter-efficient fine-tuning of the image encoder through the ``peft`` library.

:func:`apply_peft` wraps the encoder's attention (``qkv``, ``proj``) and MLP linears of a SAM ViT
(B/L/H) or TinyViT encoder with a ``peft`` method (LoRA, LoHa or IA3), in place. The adapters,
the WPMD blocks, the prompt-free embedding and the decoder (GAD) train; the rest of the encoder
is frozen. The trainable delta (:func:`adapter_state_dict`) is small enough to be the whole
checkpoint: it re-loads strictly on top of the base weights with
:func:`load_adapter_state_dict`. :func:`merge_peft` folds the adapters into the base linears for
inference and export. See ``docs/peft-export.md``.

``peft`` is an optional dependency (``pip install irsam[peft]``), imported when first needed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from irsam.models.checkpoints import CheckpointError
from irsam.models.irsam import IRSAM
from irsam.models.param_groups import count_parameters
from irsam.utils import get_logger

log = get_logger(__name__)

PEFT_METHODS = ("none", "lora", "loha", "ia3")
"""Values of the ``peft.method`` config key."""

_CONFIG_CLASSES = {"lora": "LoraConfig", "loha": "LoHaConfig", "ia3": "IA3Config"}

# Target "parts" of the config and the linear layers they name in each encoder family:
# SAM ViT blocks are ``blocks.<i>.{attn.qkv, attn.proj, mlp.lin1, mlp.lin2}``, TinyViT blocks are
# ``layers.<s>.blocks.<i>.{attn.qkv, attn.proj, mlp.fc1, mlp.fc2}`` (TinyViT's first stage is
# convolutional and has no linears).
_PART_PATTERNS = {
    "qkv": r"attn\.qkv",
    "proj": r"attn\.proj",
    "mlp": r"mlp\.(?:lin1|lin2|fc1|fc2)",
}
TARGET_PARTS = tuple(_PART_PATTERNS)
"""Values allowed in ``peft.target_modules``."""
_BLOCK_PREFIX = r"image_encoder\.(?:layers\.\d+\.)?blocks\.\d+\."
_FEEDFORWARD = r"mlp\.(?:lin2|fc2)"  # IA3 scales the input of the second MLP linear

# Parts of an IRSAM outside the encoder's frozen body that always train with PEFT and are saved
# in an adapter-only checkpoint.
TRAINABLE_PREFIXES = ("image_encoder.wpmd.", "mask_decoder.", "no_mask_embed.")


def _peft():
    """Import ``peft`` lazily with an install hint."""
    try:
        import peft
    except ImportError as err:
        raise ImportError(
            "model.peft needs the optional `peft` package: pip install 'irsam[peft]' "
            "(or pip install 'peft>=0.11'), or set peft=none."
        ) from err
    return peft


def _target_regex(parts: list[str]) -> str:
    """Full-match regular expression over module names for the chosen target parts."""
    unknown = [p for p in parts if p not in _PART_PATTERNS]
    if unknown or not parts:
        raise ValueError(
            f"peft.target_modules={parts}: expected a non-empty list drawn from "
            f"{list(TARGET_PARTS)} (unknown: {unknown})."
        )
    alternatives = "|".join(_PART_PATTERNS[p] for p in parts)
    return f"{_BLOCK_PREFIX}(?:{alternatives})"


def _peft_config(cfg: Mapping[str, Any]) -> Any:
    """The ``peft`` config object described by a ``conf/peft/*.yaml`` mapping."""
    method = str(cfg["method"])
    parts = [str(p) for p in cfg.get("target_modules") or []]
    options = dict(cfg.get("options") or {})
    for reserved in ("target_modules", "feedforward_modules"):
        if reserved in options:
            raise ValueError(
                f"peft.options.{reserved} is set by irsam from peft.target_modules; remove it."
            )
    options["target_modules"] = _target_regex(parts)
    if method == "ia3":
        if "mlp" not in parts:
            raise ValueError(
                "peft.method=ia3 needs 'mlp' in peft.target_modules (IA3 scales the "
                "MLP hidden activations)."
            )
        options["feedforward_modules"] = f"{_BLOCK_PREFIX}{_FEEDFORWARD}"
    config_class = getattr(_peft(), _CONFIG_CLASSES[method])
    try:
        return config_class(**options)
    except TypeError as err:
        raise ValueError(
            f"peft.options for method {method!r} are not valid arguments of "
            f"peft.{_CONFIG_CLASSES[method]}: {err}"
        ) from err


def _tuner_layers(net: nn.Module) -> dict[str, nn.Module]:
    """Modules of ``net`` that are ``peft`` tuner layers (they hold ``base_layer`` + adapters)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    return {name: m for name, m in net.named_modules() if isinstance(m, BaseTunerLayer)}


def has_peft(net: nn.Module) -> bool:
    """Whether ``net`` carries ``peft`` adapters (after :func:`apply_peft`, before merging).

    Arguments:
      net (nn.Module): a model.
    Returns:
      bool: True when it holds at least one ``peft`` tuner layer.
    """
    if not hasattr(net, "peft_config"):
        return False
    return bool(_tuner_layers(net))


def delta_keys(net: nn.Module) -> list[str]:
    """State-dict keys of the trainable delta: adapter tensors, WPMD, no-mask embedding, decoder.

    Arguments:
      net (nn.Module): an :class:`IRSAM` model, adapted or not.
    Returns:
      list[str]: sorted keys; the adapter keys are those inside tuner layers but not under their
        ``base_layer`` (the frozen pretrained linear).
    """
    keys = set()
    tuners = _tuner_layers(net) if hasattr(net, "peft_config") else {}
    for key in net.state_dict():
        if key.startswith(TRAINABLE_PREFIXES):
            keys.add(key)
            continue
        for name in tuners:
            if key.startswith(f"{name}.") and not key.startswith(f"{name}.base_layer."):
                keys.add(key)
                break
    return sorted(keys)


def apply_peft(net: IRSAM, cfg: Mapping[str, Any] | None) -> IRSAM:
    """Wrap the encoder linears with ``peft`` adapters in place and set what trains.

    Call it after the base weights are loaded (the builder's ``checkpoint``) and after any freeze
    preset (it overrides ``requires_grad``). Afterwards the adapters, ``image_encoder.wpmd.*``,
    ``no_mask_embed`` and ``mask_decoder.*`` train (the decoder's unused heads stay frozen); every
    other encoder parameter is frozen. State-dict names of wrapped linears gain ``base_layer.``
    (e.g. ``image_encoder.blocks.0.attn.qkv.base_layer.weight``) and the adapter tensors are
    named by ``peft`` (``...qkv.lora_A.default.weight``). With the default initialisations the
    adapted network computes exactly what the base network computes until it is trained.

    Arguments:
      net (IRSAM): the network (SAM ViT or TinyViT encoder).
      cfg (Mapping | None): a ``conf/peft/*.yaml`` mapping: ``method`` (``none``, ``lora``,
        ``loha``, ``ia3``), ``target_modules`` (subset of ``qkv``, ``proj``, ``mlp``) and
        ``options`` (keyword arguments of the ``peft`` config class, e.g. ``r``,
        ``lora_alpha``, ``lora_dropout``). None or ``method: none`` leaves ``net`` untouched.
    Returns:
      IRSAM: ``net`` itself, adapted.
    Raises:
      ValueError: unknown method or target part, invalid options, an already adapted network,
        or targets that match no layer of this encoder.
    """
    method = "none" if cfg is None else str(cfg.get("method", "none"))
    if method not in PEFT_METHODS:
        raise ValueError(f"peft.method={method!r} is not one of {PEFT_METHODS}.")
    if method == "none":
        return net
    if not isinstance(net, IRSAM):
        raise TypeError(f"apply_peft expects an IRSAM network, got {type(net).__name__}.")
    if hasattr(net, "peft_config"):
        raise ValueError(
            "apply_peft: the network already carries peft adapters; build a fresh "
            "network (or merge_peft it) before adapting it again."
        )
    config = _peft_config(cfg)
    pattern = re.compile(config.target_modules)
    if not any(pattern.fullmatch(name) for name, _ in net.named_modules()):
        raise ValueError(
            f"peft.target_modules={list(cfg.get('target_modules'))} match no linear "
            f"layer of the {type(net.image_encoder).__name__} encoder."
        )
    _peft().inject_adapter_in_model(config, net)
    adapters = delta_keys(net)
    trainable = set(adapters)
    for name, param in net.named_parameters():
        param.requires_grad_(name in trainable)
    net.mask_decoder.freeze_unused_()
    net.train(net.training)  # BatchNorm layers follow their (now frozen) parameters
    counts = count_parameters(net)
    adapter = sum(
        p.numel()
        for n, p in net.named_parameters()
        if p.requires_grad and not n.startswith(TRAINABLE_PREFIXES)
    )
    log.info(
        "peft %s on %s: %d adapter, %d trainable of %d parameters",
        method,
        type(net.image_encoder).__name__,
        adapter,
        counts["trainable"],
        counts["total"],
    )
    return net


def adapter_state_dict(net: IRSAM) -> dict[str, torch.Tensor]:
    """The trainable delta of an adapted network: adapters, WPMD, no-mask embedding, decoder.

    Arguments:
      net (IRSAM): a network after :func:`apply_peft`.
    Returns:
      dict[str, torch.Tensor]: detached CPU copies, keyed as in ``net.state_dict()``.
    Raises:
      ValueError: the network has no adapters, or a parameter outside the delta trains (its
        update would be lost in an adapter-only checkpoint).
    """
    if not has_peft(net):
        raise ValueError(
            "adapter_state_dict: the network has no peft adapters (peft.method=none "
            "or merged); save the full state dict instead (save_adapter_only=false)."
        )
    keys = delta_keys(net)
    kept = set(keys)
    lost = [n for n, p in net.named_parameters() if p.requires_grad and n not in kept]
    if lost:
        raise ValueError(
            f"adapter_state_dict: {len(lost)} trainable parameters lie outside the "
            f"adapter delta and would not be saved (e.g. {lost[:3]}); keep the base "
            "encoder frozen or set save_adapter_only=false."
        )
    state = net.state_dict()
    return {k: state[k].detach().cpu().clone() for k in keys}


def load_adapter_state_dict(
    net: IRSAM,
    state: Mapping[str, torch.Tensor],
    *,
    source: str | os.PathLike = "adapter state dict",
) -> None:
    """Load a trainable delta strictly on top of the base weights already in ``net``.

    Arguments:
      net (IRSAM): a network built with its base weights, after :func:`apply_peft` with the same
        ``peft`` config the delta was trained with.
      state (Mapping[str, Tensor]): from :func:`adapter_state_dict` (keys as in ``net``).
      source (str | PathLike): the file (or description) named in errors.
    Raises:
      CheckpointError: missing or unexpected keys, or shape mismatches (naming ``source``).
    """
    if not has_peft(net):
        raise CheckpointError(
            f"{source}: the network has no peft adapters; call apply_peft with "
            "the peft config the checkpoint was trained with before loading."
        )
    expected = set(delta_keys(net))
    own = net.state_dict()
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    mismatched = sorted(
        k for k in expected & set(state) if tuple(state[k].shape) != tuple(own[k].shape)
    )
    if missing or unexpected or mismatched:
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing keys (e.g. {missing[:3]})")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[:3]})")
        if mismatched:
            problems.append(f"{len(mismatched)} shape mismatches (e.g. {mismatched[:3]})")
        raise CheckpointError(
            f"{source} does not fit this adapted network: {'; '.join(problems)}. Use the same "
            "model and peft configs (method, target_modules, rank) as in training."
        )
    full = {k: state.get(k, v) for k, v in own.items()}
    net.load_state_dict(full, strict=True)
    log.info("loaded %d adapter-delta tensors from %s", len(expected), source)


def require_base_weights(
    ckpt_path: str | os.PathLike, base_weights: str | os.PathLike | None
) -> Path:
    """Check that an adapter-only checkpoint can find the base weights it was trained on.

    Arguments:
      ckpt_path (str | PathLike): the adapter-only checkpoint (named in the error).
      base_weights (str | PathLike | None): the base weights file (``model.net.checkpoint``).
    Returns:
      Path: the existing base weights file.
    Raises:
      CheckpointError: ``base_weights`` is None or does not exist.
    """
    hint = (
        "it stores only the peft adapters, WPMD and decoder (save_adapter_only=true) and "
        "needs the base SAM/MobileSAM weights it was trained on: set "
        "model.net.checkpoint=<sam_vit_*.pth or mobile_sam.pt>"
    )
    if base_weights is None:
        raise CheckpointError(f"checkpoint {ckpt_path}: {hint} (none is set).")
    path = Path(base_weights)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {ckpt_path}: {hint} ({path} does not exist).")
    return path


def merge_peft(net: IRSAM) -> IRSAM:
    """Fold the adapters into the base linears (``peft``'s merge and unload), in place.

    Each tuner layer is merged with its own ``merge()`` and replaced by its base linear, as
    ``peft``'s ``merge_and_unload`` does; the result has the state-dict layout of a plain
    :class:`IRSAM` and computes the adapted function (up to float rounding). Use it for
    inference and export; it cannot be trained further as an adapted network.

    Arguments:
      net (IRSAM): a network after :func:`apply_peft`.
    Returns:
      IRSAM: ``net`` itself, without tuner layers.
    Raises:
      ValueError: the network carries no adapters.
    """
    if not has_peft(net):
        raise ValueError("merge_peft: the network carries no peft adapters.")
    tuners = _tuner_layers(net)
    for name in sorted(tuners, key=lambda n: n.count("."), reverse=True):
        layer = tuners[name]
        layer.merge(safe_merge=True)
        parent_name, _, child = name.rpartition(".")
        parent = net.get_submodule(parent_name) if parent_name else net
        setattr(parent, child, layer.get_base_layer())
    del net.peft_config
    log.info("merged %d peft layers into the base weights", len(tuners))
    return net
