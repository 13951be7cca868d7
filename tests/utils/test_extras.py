# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Optional dependencies (irsam.utils.extras): a setting that needs a missing extra stops with the
pip command that installs it; the default settings need none. A missing module is simulated with
``sys.modules[name] = None`` (its import then fails)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import compose_config

from irsam.tasks.runner import instantiate_group
from irsam.utils.errors import UserError
from irsam.utils.extras import check_overrides, missing_extra, require_extra

EXTRA_MODULES = ("wandb", "tensorboard", "tensorboardX", "matplotlib", "matplotlib.pyplot")
"""Modules of the wandb, tensorboard and plots extras."""


def _hide(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Make ``import <name>`` fail for each name, as when the module is not installed."""
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)


def test_missing_extra_names_the_setting_and_the_pip_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _hide(monkeypatch, "wandb")
    with pytest.raises(ImportError) as error:
        require_extra("wandb", setting="logger=wandb", extra="wandb")
    assert str(error.value) == "logger=wandb needs the wandb extra: pip install 'irsam[wandb]'"
    require_extra(("wandb", "json"), setting="logger=wandb", extra="wandb")  # one import is enough
    error = missing_extra("x", "plots")
    assert isinstance(error, ImportError) and isinstance(error, UserError)  # printed as one line


@pytest.mark.parametrize(
    "logger,extra",
    [("wandb", "wandb"), ("tensorboard", "tensorboard"), ("many", "tensorboard")],
)
def test_logger_without_its_extra_says_which_pip_install_fixes_it(
    logger: str, extra: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Building the loggers of ``logger=wandb`` / ``tensorboard`` / ``many`` (as train and
    evaluate do) without the extra raises one ImportError with the pip command."""
    cfg = compose_config("train", tmp_path, [f"logger={logger}"])
    _hide(monkeypatch, *EXTRA_MODULES)
    with pytest.raises(
        ImportError, match=rf"needs the {extra} extra: pip install 'irsam\[{extra}\]'"
    ):
        instantiate_group(cfg.logger)


def test_default_logger_needs_no_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CSV logger of ``python train.py`` builds without wandb, TensorBoard and matplotlib."""
    from lightning.pytorch.loggers import CSVLogger

    cfg = compose_config("train", tmp_path, [])
    _hide(monkeypatch, *EXTRA_MODULES)
    (logger,) = instantiate_group(cfg.logger)
    assert isinstance(logger, CSVLogger)


def test_wandb_run_id_continues_that_run(tmp_path: Path) -> None:
    """``logger.wandb.id=<id>`` reaches wandb.init with resume="allow" (conf/logger/wandb.yaml)."""
    pytest.importorskip("wandb")
    cfg = compose_config(
        "train", tmp_path, ["logger=wandb", "logger.wandb.offline=true", "logger.wandb.id=run42"]
    )
    (logger,) = instantiate_group(cfg.logger)
    assert logger.version == "run42"
    assert logger._wandb_init["id"] == "run42" and logger._wandb_init["resume"] == "allow"


@pytest.mark.parametrize(
    "override,module,extra",
    [
        ("hparams_search=irsam_optuna", "hydra_plugins.hydra_optuna_sweeper", "sweep"),
        ("hydra/sweeper=optuna", "hydra_plugins.hydra_optuna_sweeper", "sweep"),
        ("hydra/launcher=slurm", "hydra_plugins.hydra_submitit_launcher", "cluster"),
        ("+hydra/launcher=local", "hydra_plugins.hydra_submitit_launcher", "cluster"),
    ],
)
def test_plugin_choice_without_its_extra_stops_before_hydra(
    override: str, module: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command line that picks a Hydra plugin that is not installed stops with the pip
    command (Hydra itself would only say that it cannot find the config)."""
    check_overrides(["-m", "seed=1,2"])
    _hide(monkeypatch, module)
    with pytest.raises(ImportError, match=rf"pip install 'irsam\[{extra}\]'") as error:
        check_overrides(["-m", override, "seed=1,2"])
    assert str(error.value).startswith(override.lstrip("+"))
    check_overrides(["-m", "hparams_search=loss_grid"])  # the basic sweeper is Hydra's own


def test_curve_plots_without_matplotlib_say_which_pip_install_fixes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without matplotlib the curves are written as CSV; drawing one names the plots extra."""
    from irsam.metrics.report import curve_figure, pd_fa_figure, write_pd_fa_curve

    _hide(monkeypatch, "matplotlib", "matplotlib.pyplot")
    curve = {"threshold": [0.0, 1.0], "Pd": [1.0, 0.5], "Fa": [1e-5, 1e-6], "IoU": [0.5, 0.4]}
    assert [p.name for p in write_pd_fa_curve(curve, tmp_path)] == ["pd_fa_curve.csv"]
    with pytest.raises(ImportError, match=r"pip install 'irsam\[plots\]'"):
        pd_fa_figure(curve)
    with pytest.raises(ImportError, match=r"pip install 'irsam\[plots\]'"):
        curve_figure({}, "pr")
