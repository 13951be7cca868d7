# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Segment new images: `python predict.py ckpt_path=... input=<image|folder> output=<folder>`;
installed: `irsam-predict`."""

import sys
from pathlib import Path

import hydra
import rootutils
from omegaconf import DictConfig

rootutils.setup_root(__file__, indicator=".project-root", pythonpath=True)

from irsam.tasks.predict import predict
from irsam.tasks.runner import check_command_line


@hydra.main(version_base="1.3", config_path="conf", config_name="predict.yaml")
def main(cfg: DictConfig) -> None:
    """Write masks, overlays and targets.csv for every input image."""
    predict(cfg)


if __name__ == "__main__":
    check_command_line(sys.argv[1:], "predict", Path(__file__).parent / "conf")
    main()
