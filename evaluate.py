# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Evaluate a checkpoint: `python evaluate.py ckpt_path=... dataset=nuaa_sirst`; installed:
`irsam-evaluate`.

Logic in irsam.tasks.evaluate."""

import sys
from pathlib import Path

import hydra
import rootutils
from omegaconf import DictConfig

rootutils.setup_root(__file__, indicator=".project-root", pythonpath=True)

from irsam.tasks.evaluate import evaluate
from irsam.tasks.runner import check_command_line


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate.yaml")
def main(cfg: DictConfig) -> None:
    """Score the checkpoint on the test split and write results.json / results.md."""
    evaluate(cfg)


if __name__ == "__main__":
    check_command_line(sys.argv[1:], "evaluate", Path(__file__).parent / "conf")
    main()
