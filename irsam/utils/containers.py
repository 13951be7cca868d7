# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""OmegaConf nodes as plain Python containers (for checkpoints, hashing and comparisons)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf


def plain_container(value: Any) -> Any:
    """An OmegaConf node, or a mapping holding nodes, as plain dicts and lists.

    Arguments:
      value (Any): a ``DictConfig`` / ``ListConfig`` (interpolations are resolved), a mapping
        (its values are converted), or anything else.
    Returns:
      Any: plain dicts / lists for nodes and mappings; any other value unchanged.
    """
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    if isinstance(value, Mapping):
        return {key: plain_container(item) for key, item in value.items()}
    return value
