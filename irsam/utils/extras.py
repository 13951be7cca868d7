# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Optional dependencies (``pip install 'irsam[<extra>]'``): one clear error when a chosen
setting needs an extra that is not installed.

* :func:`missing_extra`: the error itself (a :class:`MissingExtraError`, an ImportError and a
  user error);
* :func:`require_extra`: raise it unless a module can be imported;
* :func:`check_target_extras`: the loggers of a config group (``logger=wandb``,
  ``logger=tensorboard``), checked before they are built;
* :func:`check_overrides`: command-line choices that need a Hydra plugin
  (``hparams_search=irsam_optuna``, ``hydra/launcher=slurm``), checked before Hydra composes the
  config (a missing plugin would otherwise stop the composition with "Could not find").
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from irsam.utils.errors import UserError

TARGET_EXTRAS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "WandbLogger": (("wandb",), "logger=wandb", "wandb"),
    "TensorBoardLogger": (("tensorboard", "tensorboardX"), "logger=tensorboard", "tensorboard"),
}
"""Class name of a ``_target_`` (e.g. ``lightning.pytorch.loggers.wandb.WandbLogger``) → (modules,
one of which must import; the setting named in the error; the extra)."""

OVERRIDE_EXTRAS: dict[str, tuple[str, str]] = {
    "hparams_search=irsam_optuna": ("hydra_plugins.hydra_optuna_sweeper", "sweep"),
    "hydra/sweeper=optuna": ("hydra_plugins.hydra_optuna_sweeper", "sweep"),
    "hydra/launcher=local": ("hydra_plugins.hydra_submitit_launcher", "cluster"),
    "hydra/launcher=slurm": ("hydra_plugins.hydra_submitit_launcher", "cluster"),
}
"""Command-line choice → (the Hydra plugin module it needs, extra)."""


class MissingExtraError(UserError, ImportError):
    """A chosen setting needs an extra that is not installed; the message names the setting and
    the ``pip install`` command (the commands print it as one line, like every user error)."""


def missing_extra(setting: str, extra: str) -> MissingExtraError:
    """The error for a setting whose optional dependencies are not installed.

    Arguments:
      setting (str): what the user chose, e.g. ``logger=wandb``.
      extra (str): the extra that installs it, e.g. ``wandb``.
    Returns:
      MissingExtraError: an ImportError, e.g. "logger=wandb needs the wandb extra:
      pip install 'irsam[wandb]'".
    """
    return MissingExtraError(f"{setting} needs the {extra} extra: pip install 'irsam[{extra}]'")


def require_extra(modules: str | Iterable[str], *, setting: str, extra: str) -> None:
    """Raise :func:`missing_extra` unless one of ``modules`` can be imported.

    Arguments:
      modules (str | Iterable[str]): module name(s); one importable one is enough.
      setting (str): what the user chose, named in the error.
      extra (str): the extra that installs the modules.
    """
    names = (modules,) if isinstance(modules, str) else tuple(modules)
    if not any(_importable(name) for name in names):
        raise missing_extra(setting, extra)


def check_target_extras(nodes: Mapping[str, Any] | None) -> None:
    """Check that the objects of a config group (e.g. ``cfg.logger``) can be built: a node whose
    ``_target_`` needs an extra (the wandb and TensorBoard loggers) raises :func:`missing_extra`
    when that extra is not installed.

    Arguments:
      nodes (Mapping | None): name → config with ``_target_``; None checks nothing.
    """
    for node in (nodes or {}).values():
        target = node.get("_target_") if isinstance(node, Mapping) else None
        name = str(target).rpartition(".")[2]
        if target and name in TARGET_EXTRAS:
            modules, setting, extra = TARGET_EXTRAS[name]
            require_extra(modules, setting=setting, extra=extra)


def check_overrides(argv: Sequence[str]) -> None:
    """Check the command-line overrides that pick a Hydra plugin (the Optuna sweeper, the
    submitit launchers): raise :func:`missing_extra` when the plugin is not installed.

    Arguments:
      argv (Sequence[str]): the command-line arguments, e.g. ``sys.argv[1:]``.
    """
    for arg in argv:
        choice = arg.lstrip("+")
        if choice in OVERRIDE_EXTRAS:
            module, extra = OVERRIDE_EXTRAS[choice]
            require_extra(module, setting=choice, extra=extra)


def _importable(name: str) -> bool:
    """Whether ``name`` can be imported (its parent packages are imported to find it)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
