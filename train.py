# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Train IRSAM: `python train.py dataset=nudt_sirst` (see README.md); installed: `irsam-train`.

Logic lives in irsam.tasks.train; irsam.tasks.cli holds the installed command."""

import sys
from pathlib import Path

import hydra
import rootutils
from omegaconf import DictConfig

rootutils.setup_root(__file__, indicator=".project-root", pythonpath=True)

from irsam.tasks.cli import run_train
from irsam.tasks.runner import check_command_line


@hydra.main(version_base="1.3", config_path="conf", config_name="train.yaml")
def main(cfg: DictConfig) -> float | None:
    """Train, test the best checkpoint, and return the optimised metric for sweeps."""
    return run_train(cfg)


if __name__ == "__main__":
    check_command_line(sys.argv[1:], "train", Path(__file__).parent / "conf")
    main()
