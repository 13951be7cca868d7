# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Export task: the logic behind ``python export.py ...`` (Hydra config ``conf/export.yaml``);
the ONNX / ``torch.export`` machinery is :mod:`irsam.export`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from irsam.export import quiet_exporters, run_export
from irsam.tasks.runner import task_wrapper
from irsam.utils import get_logger

log = get_logger(__name__)

DEFAULT_OUTPUTS = {"onnx": "model.onnx", "torch_export": "model.pt2", "pretrained": "model"}
"""Name of the output in the run folder when ``output`` is null, per ``format``."""


@task_wrapper
def export_task(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``export.py`` task: :func:`irsam.export.run_export` with the keys of
    ``conf/export.yaml``.

    Arguments:
      cfg (DictConfig): the composed ``export.yaml`` config.
    Returns:
      tuple[dict, dict]: (the :func:`irsam.export.run_export` report, {}).
    """
    sizes = cfg.get("check_image_sizes")
    output = cfg.get("output") or Path(cfg.paths.output_dir) / DEFAULT_OUTPUTS.get(
        cfg.format, "model"
    )
    with quiet_exporters(verbose=bool(cfg.get("verbose"))):
        report = run_export(
            ckpt_path=cfg.ckpt_path,
            output=output,
            format=cfg.format,
            loader_size=cfg.get("loader_size"),
            opset=int(cfg.opset),
            check_batch_sizes=[int(b) for b in cfg.check_batch_sizes],
            check_image_sizes=[tuple(int(v) for v in s) for s in sizes] if sizes else None,
            atol=float(cfg.atol),
            rtol=float(cfg.rtol),
        )
    log.info("export report: %s", report)
    return report, {}
