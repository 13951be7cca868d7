# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""One-shot, training-free sequence segmentation (docs/oneshot.md):
`python oneshot.py sequence=<frames> reference=<frame> annotation=<mask> | point=[x,y] |
box=[x1,y1,x2,y2] backbone.checkpoint=mobile_sam.pt output=<folder>`; installed: `irsam-oneshot`."""

import sys
from pathlib import Path
from typing import Any

import hydra
import rootutils
from omegaconf import DictConfig

rootutils.setup_root(__file__, indicator=".project-root", pythonpath=True)

from irsam.tasks.oneshot import rewrite_annotation_argv, run_oneshot
from irsam.tasks.runner import check_command_line


@hydra.main(version_base="1.3", config_path="conf", config_name="oneshot.yaml")
def main(cfg: DictConfig) -> dict[str, Any]:
    """Segment the sequence(s) and, with ground truth, score them."""
    return run_oneshot(cfg)


if __name__ == "__main__":
    check_command_line(sys.argv[1:], "oneshot", Path(__file__).parent / "conf")
    sys.argv[1:] = rewrite_annotation_argv(sys.argv[1:])
    main()
