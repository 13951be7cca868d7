# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Train IRSAM: `python train.py dataset=nudt_sirst` (see README.md).

Logic lives in irsam.tasks.train."""

import hydra
import rootutils
from omegaconf import DictConfig

rootutils.setup_root(__file__, indicator=".project-root", pythonpath=True)

from irsam.tasks.train import train


@hydra.main(version_base="1.3", config_path="conf", config_name="train.yaml")
def main(cfg: DictConfig) -> float | None:
    """Train, test the best checkpoint, and return the optimised metric for sweeps."""
    _, objects = train(cfg)
    return objects.get("optimized_metric")


if __name__ == "__main__":
    main()
