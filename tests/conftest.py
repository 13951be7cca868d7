# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Shared pytest fixtures: the project root and the real datasets in ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from irsam.data.io import write_png

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("IRSAM_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))


def shared_dataset(name: str) -> Path:
    """Path of a real dataset under ``../shared/data``; skips the calling test when it is absent.

    Arguments:
      name (str): folder name, e.g. ``"NUAA-SIRST"`` or ``"NUDT-SIRST"``.
    Returns:
      Path: the dataset root.
    """
    root = SHARED_DATA / name
    if not root.is_dir():
        pytest.skip(f"real dataset {root} is absent (set IRSAM_SHARED_DATA to its parent folder)")
    return root


@pytest.fixture(scope="session")
def project_root() -> Path:
    """The repository root (the folder holding ``.project-root``)."""
    return PROJECT_ROOT


# ---------------------------------------------------------------------------------------------
# Hydra configs shrunk for CPU tests (lightning-hydra-template pattern).
# ---------------------------------------------------------------------------------------------

TINY_TRAIN_OVERRIDES = [
    "trainer=cpu",
    "~logger",
    "dataset.synthetic.native_size=64",
    "dataset.loader_size=64",
    "dataset.synthetic.num_train=8",
    "dataset.synthetic.num_val=4",
    "dataset.synthetic.num_test=4",
    "dataset.batch_size=4",
    "dataset.eval_batch_size=4",
    "model.net.encoder_size=128",
    "trainer.max_epochs=1",
    "trainer.num_sanity_val_steps=0",
    "trainer.enable_model_summary=false",
    "trainer.enable_progress_bar=false",
    "callbacks.sample_predictions.every_n_epochs=1",
    "extras.print_config=false",
]
"""Overrides that make ``train.yaml`` run in seconds: 64² synthetic images, 128² model input."""


def compose_config(config_name: str, output_dir: Path, overrides: list[str]):
    """Compose a config of ``conf/`` as Hydra would, with ``paths`` pointed into ``output_dir``.

    Arguments:
      config_name (str): ``train``, ``evaluate`` or ``predict``.
      output_dir (Path): run folder for this test (also used as the logs root).
      overrides (list[str]): command-line style overrides.
    Returns:
      DictConfig: the composed config; ``HydraConfig`` is set so ``${hydra:...}`` resolves.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(PROJECT_ROOT / "conf")):
        cfg = compose(
            config_name=f"{config_name}.yaml", return_hydra_config=True, overrides=overrides
        )
    with open_dict(cfg):
        cfg.paths.root_dir = str(PROJECT_ROOT)
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.log_dir = str(output_dir / "logs")
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = 0
    HydraConfig().set_config(cfg)
    return cfg


def compose_option(group: str, option: str):
    """One option of a config group, ``conf/<group>/<option>.yaml``, with the configs its defaults
    list names (``_base``, ...) merged in; interpolations stay unresolved, for the caller to give
    the node a parent (e.g. one holding ``paths``).

    Arguments:
      group (str): the group, e.g. ``dataset``.
      option (str): the option, e.g. ``nudt_sirst``.
    Returns:
      DictConfig: the option's node (not in struct mode).
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(PROJECT_ROOT / "conf")):
        cfg = compose(overrides=[f"+{group}={option}"])
    return OmegaConf.create(OmegaConf.to_container(cfg[group], resolve=False))


@pytest.fixture
def cfg_train(tmp_path: Path):
    """A tiny CPU ``train.yaml`` config writing into ``tmp_path``."""
    return compose_config("train", tmp_path, list(TINY_TRAIN_OVERRIDES))


FOLDER_SPLITS = {"default": {"trainval": "split/trainval.txt", "test": "split/test.txt"}}
"""The split definition of :func:`make_dataset`'s folders."""


def make_dataset(root: Path, names: list[str], size: tuple[int, int] = (32, 40)) -> Path:
    """Write a valid NUDT-like dataset: images/, masks/, split/{trainval,test}.txt (the last
    name is the test split; ``FOLDER_SPLITS`` describes it), one 3×4 target per image."""
    rng = np.random.default_rng(0)
    for name in names:
        write_png(root / "images" / f"{name}.png", rng.integers(0, 255, size, dtype=np.uint8))
        mask = np.zeros(size, np.uint8)
        mask[5:8, 5:9] = 255
        write_png(root / "masks" / f"{name}.png", mask)
    (root / "split").mkdir(parents=True, exist_ok=True)
    (root / "split" / "trainval.txt").write_text("\n".join(names[:-1]) + "\n")
    (root / "split" / "test.txt").write_text(names[-1] + "\n")
    return root


@pytest.fixture
def one_thread():
    """Run the test with one torch thread (restored afterwards; the CI machine has two cores)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def write_train_checkpoint(path: Path, net: dict, loader_size: int) -> Path:
    """A checkpoint in the layout ``train.py`` writes (``state_dict``, ``hyper_parameters``,
    datamodule settings) of a randomly initialised module (seed 0) with the IRSAM loss."""
    import torch
    from omegaconf import OmegaConf

    from irsam.lit_module import IRSAMLitModule

    loss = OmegaConf.to_container(OmegaConf.load(PROJECT_ROOT / "conf" / "loss" / "irsam.yaml"))
    torch.manual_seed(0)
    module = IRSAMLitModule(net=net, loss=loss)
    torch.save(
        {
            "state_dict": module.state_dict(),
            "hyper_parameters": dict(module.hparams),
            "datamodule_hyper_parameters": {"loader_size": loader_size},
        },
        path,
    )
    return path
