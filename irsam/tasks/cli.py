# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""The installed commands (``[project.scripts]`` of pyproject.toml): ``irsam-train``,
``irsam-evaluate``, ``irsam-predict``, ``irsam-export`` and ``irsam-oneshot`` run the tasks of
:mod:`irsam.tasks` with the configs shipped inside the package (``irsam/conf``, Hydra's
``pkg://irsam.conf``), from any folder; runs are written under ``./logs`` of the current folder
(``paths.log_dir``, conf/paths/default.yaml). They take the overrides of the repository's
``train.py`` ... (``irsam-train dataset=nudt_sirst dataset.root=/data/NUDT-SIRST``), and Hydra's
``--config-dir <folder>`` adds a folder of one's own configs (e.g. ``local/default.yaml``).

The repository's scripts share :func:`run_train` and
:func:`~irsam.tasks.runner.check_command_line` with these commands. Each command imports only its
own task.
"""

from __future__ import annotations

import sys
from typing import Any

import hydra
from omegaconf import DictConfig

from irsam.tasks.runner import check_command_line

CONFIG_PATH = "pkg://irsam.conf"
"""Hydra's search path of the shipped configs: the ``conf/`` folder of the repository, installed as
the package ``irsam.conf``."""


def run_train(cfg: DictConfig) -> float | None:
    """Train, test the selected checkpoint, and return the optimised metric for sweeps.

    Arguments:
      cfg (DictConfig): the composed ``train.yaml`` config.
    Returns:
      float | None: the value of ``cfg.optimized_metric`` after training (None when
      ``train=false`` or when a sweep trial ran out of memory).
    """
    from irsam.tasks.train import train

    _, objects = train(cfg)
    return objects.get("optimized_metric")


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train.yaml")
def _train(cfg: DictConfig) -> float | None:
    """Hydra application of ``irsam-train``."""
    return run_train(cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="evaluate.yaml")
def _evaluate(cfg: DictConfig) -> None:
    """Hydra application of ``irsam-evaluate``."""
    from irsam.tasks.evaluate import evaluate

    evaluate(cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="predict.yaml")
def _predict(cfg: DictConfig) -> None:
    """Hydra application of ``irsam-predict``."""
    from irsam.tasks.predict import predict

    predict(cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="export.yaml")
def _export(cfg: DictConfig) -> None:
    """Hydra application of ``irsam-export``."""
    from irsam.tasks.export import export_task

    export_task(cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="oneshot.yaml")
def _oneshot(cfg: DictConfig) -> dict[str, Any]:
    """Hydra application of ``irsam-oneshot``."""
    from irsam.tasks.oneshot import run_oneshot

    return run_oneshot(cfg)


def train_main() -> None:
    """``irsam-train``: train, test the best checkpoint (``python train.py``; conf/train.yaml)."""
    check_command_line(sys.argv[1:], "train")
    _train()


def evaluate_main() -> None:
    """``irsam-evaluate``: score a checkpoint on a test split (``python evaluate.py``)."""
    check_command_line(sys.argv[1:], "evaluate")
    _evaluate()


def predict_main() -> None:
    """``irsam-predict``: segment images, folders, videos or stacks (``python predict.py``)."""
    check_command_line(sys.argv[1:], "predict")
    _predict()


def export_main() -> None:
    """``irsam-export``: write the ONNX or torch.export file (``python export.py``)."""
    check_command_line(sys.argv[1:], "export")
    _export()


def oneshot_main() -> None:
    """``irsam-oneshot``: training-free one-shot sequence segmentation (``python oneshot.py``);
    ``annotation=x,y`` and ``annotation=x1,y1,x2,y2`` become ``point=`` / ``box=`` first."""
    from irsam.tasks.oneshot import rewrite_annotation_argv

    check_command_line(sys.argv[1:], "oneshot")
    sys.argv[1:] = rewrite_annotation_argv(sys.argv[1:])
    _oneshot()
