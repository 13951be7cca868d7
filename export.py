# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Export a checkpoint: `python export.py ckpt_path=<file.ckpt> format=onnx output=model.onnx`;
installed: `irsam-export`."""

import sys
from pathlib import Path

import hydra
import rootutils
from omegaconf import DictConfig

rootutils.setup_root(__file__, indicator=".project-root", pythonpath=True)

from irsam.tasks.export import export_task
from irsam.tasks.runner import check_command_line


@hydra.main(version_base="1.3", config_path="conf", config_name="export.yaml")
def main(cfg: DictConfig) -> None:
    """Write the ONNX (checked against onnxruntime) or torch.export file."""
    export_task(cfg)


if __name__ == "__main__":
    check_command_line(sys.argv[1:], "export", Path(__file__).parent / "conf")
    main()
