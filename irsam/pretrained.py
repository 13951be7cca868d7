# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""The model folder: a trained network and its inference options, without pickle.

A model folder holds two files:

* ``config.json``: plain JSON, everything that rebuilds the network and prepares, scores and
  binarises images as the checkpoint did (the network builder config with ``checkpoint: null``,
  the loss, the metric options, the threshold, the loader size, ``high_bit_norm``, the irsam
  version);
* ``model.safetensors``: the network's tensors (PEFT adapters merged into the base weights).

:meth:`irsam.lit_module.IRSAMLitModule.save_pretrained` writes it (``python export.py
format=pretrained``); :meth:`irsam.lit_module.IRSAMLitModule.from_checkpoint` and
:meth:`irsam.predictor.Predictor.from_pretrained` read it (docs/python-api.md). Reading runs no
pickle, so a folder from an untrusted source cannot execute code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from irsam import __version__
from irsam.models.checkpoints import CheckpointError
from irsam.utils import MissingFileError, atomic_path, atomic_write_bytes

CONFIG_FILE = "config.json"
"""The options file of a model folder."""
WEIGHTS_FILE = "model.safetensors"
"""The tensors file of a model folder."""
FORMAT = "irsam-model-folder"
"""Value of the ``format`` key of ``config.json``."""
FORMAT_VERSION = 1
"""Layout version of ``config.json``; a folder of a newer version is refused with a clear error."""


def write_model_folder(
    folder: str | os.PathLike, config: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]
) -> Path:
    """Write ``config.json`` and ``model.safetensors`` into ``folder`` (each file atomically).

    Arguments:
      folder (str | PathLike): the model folder (created when missing).
      config (Mapping): JSON-serialisable options; ``format``, ``format_version`` and
        ``irsam_version`` are added.
      tensors (Mapping[str, Tensor]): the network's state dict.
    Returns:
      Path: the folder.
    """
    folder = Path(folder)
    plain = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "irsam_version": __version__,
        **config,
    }
    text = json.dumps(plain, indent=2, sort_keys=False) + "\n"
    weights = {name: value.detach().cpu().contiguous() for name, value in tensors.items()}
    with atomic_path(folder / WEIGHTS_FILE, what="model weights") as tmp:
        save_file(weights, str(tmp), metadata={"format": "pt", "irsam_version": __version__})
    atomic_write_bytes(folder / CONFIG_FILE, text.encode("utf-8"), what="model config")
    return folder


def read_model_folder(folder: str | os.PathLike) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read a model folder written by :func:`write_model_folder`.

    Arguments:
      folder (str | PathLike): the model folder.
    Returns:
      tuple[dict, dict[str, Tensor]]: the ``config.json`` mapping and the tensors (CPU).
    Raises:
      FileNotFoundError: ``folder`` or one of its two files does not exist.
      CheckpointError: a file is unreadable, or the folder is of another format or a newer
        layout version (the message names the file and the fix).
    """
    folder = Path(folder)
    config_path, weights_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    for path in (config_path, weights_path):
        if not path.is_file():
            raise MissingFileError(
                f"{path} does not exist: a model folder holds {CONFIG_FILE} and {WEIGHTS_FILE}. "
                "Write one with python export.py ckpt_path=<file.ckpt> format=pretrained "
                "output=<folder>."
            )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{config_path} is not valid JSON ({err}).") from err
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(
            f'{config_path} is not an irsam model folder config (no "format": "{FORMAT}"). '
            "Write the folder with python export.py format=pretrained."
        )
    if int(config.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(
            f"{config_path} has format_version {config['format_version']}, newer than this irsam "
            f"({__version__}) reads ({FORMAT_VERSION}); written by irsam "
            f"{config.get('irsam_version')}. Upgrade irsam."
        )
    try:
        tensors = load_file(str(weights_path), device="cpu")
    except (SafetensorError, OSError) as err:
        raise CheckpointError(
            f"{weights_path} is not a readable safetensors file ({err}); the file is truncated "
            "or corrupt. Write the folder again with python export.py format=pretrained."
        ) from err
    return config, tensors
