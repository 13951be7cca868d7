# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Prediction task: segment new images (no ground truth needed) through the Lightning Trainer.

Prediction runs the checkpoint's module with ``Trainer.predict`` (or ``Trainer.test`` when ground
truth is given), so devices and precision come from the ``trainer`` config, and images are sized,
scored and binarised exactly as in evaluation. Without ground truth the input is streamed
(:mod:`irsam.data.streams`: images, frame folders, videos, multi-page TIFFs, ``.npy`` stacks) in
constant memory and targets are tracked frame to frame.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from omegaconf import DictConfig
from torch.utils.data import DataLoader

from irsam.data.collate import collate_irstd
from irsam.data.dataset import IRSTDDataset
from irsam.data.layouts import collect_samples
from irsam.data.preflight import drop_unreadable
from irsam.data.streams import open_stream
from irsam.lit_module import IRSAMLitModule
from irsam.metrics.report import metrics_table, write_results
from irsam.outputs import PredictionWriter
from irsam.outputs.predictions import clear_output_dir, count_masks
from irsam.tasks.evaluate import checkpoint_data_options, metric_overrides, refuse_model_override
from irsam.tasks.runner import task_wrapper
from irsam.tiling import ShrinkWarning, TiledNetwork
from irsam.utils import ConfigError, get_logger

log = get_logger(__name__)


@task_wrapper
def predict(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Segment ``cfg.input`` (an image or a folder) with ``cfg.ckpt_path`` into ``cfg.output``.

    Writes ``masks/<name>.png`` (0/255), ``overlays/<name>.png``, optional ``probs/<name>.tif``
    (float32 probabilities), ``targets.csv`` and, with ``gt=<mask folder>``,
    ``results.json``/``.md``
    scored with the checkpoint's metric options (merged with ``metrics.*``). Frames a stream
    cannot deliver as stored (unreadable, missing from a truncated file, NaN/Inf pixels) are
    skipped or repaired with a warning (``on_error=skip``) and listed in ``skipped.txt``. An
    ``output`` folder that is not empty is refused unless ``overwrite=true``.

    Arguments:
      cfg (DictConfig): the composed ``predict.yaml`` config.
    Returns:
      tuple[dict, dict]: ({"images": N, "targets": T, "skipped": {file: reason}, "output":
      folder, metrics...},
      {"model": module, "trainer": trainer}).
    """
    refuse_model_override(cfg)
    module = IRSAMLitModule.from_checkpoint(cfg.ckpt_path, metrics=metric_overrides(cfg))
    network: Any = module.net
    if cfg.backend == "onnx":
        from irsam.export import OnnxNetwork

        if not cfg.get("onnx_path"):
            raise ConfigError("backend=onnx needs onnx_path=<file.onnx> (written by export.py).")
        network = OnnxNetwork(cfg.onnx_path)
    elif cfg.backend != "torch":
        raise ConfigError(f"backend={cfg.backend!r} must be torch or onnx.")
    options = checkpoint_data_options(cfg, module)
    tile = cfg.get("tile")
    if tile is not None:  # native frames, windows at the training scale (irsam/tiling.py)
        network = TiledNetwork(
            network, tile=tile, overlap=cfg.overlap, window_size=options["loader_size"]
        )
    if network is not module.net:
        module.use_runner(network)
    source: Any = None
    if cfg.get("gt"):
        samples, source = drop_unreadable(collect_samples(cfg.input, cfg.gt), cfg.on_error)
        dataset: Any = IRSTDDataset(
            samples,
            stage="eval",
            loader_size=options["loader_size"],
            eval_resize="pad" if tile is not None else options.get("eval_resize", "resize"),
            pad_divisor=options.get("pad_divisor", 32),
            pad_value=options.get("pad_value", 128.0),
            high_bit_norm=options["high_bit_norm"],
            cache_images=False,
        )
    else:  # an image, a folder of frames, a video, a multi-page TIFF or a .npy stack, streamed
        dataset = source = open_stream(
            cfg.input,
            0 if tile is not None else options["loader_size"],
            options["high_bit_norm"],
            on_error=cfg.on_error,
        )
    loader = DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        num_workers=cfg.num_workers if cfg.get("gt") else 0,  # streams prefetch in a thread
        collate_fn=functools.partial(collate_irstd, pad_value=options.get("pad_value", 128.0)),
    )
    output = Path(cfg.output)
    clear_output_dir(output, bool(cfg.overwrite))
    writer = PredictionWriter(
        str(output),
        overlays=cfg.save_overlays,
        probabilities=cfg.save_probabilities,
        track_radius=cfg.track_radius,
        track_max_gap=cfg.track_max_gap,
        video=str(output / "overlay.avi") if cfg.save_overlay_video else None,
        video_fps=float(getattr(dataset, "fps", None) or cfg.video_fps),
        source=source,
    )
    callbacks = [writer] if tile is not None else [writer, ShrinkWarning(module.net.img_size)]
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=False)
    summary: dict[str, Any] = {"output": str(output)}
    if cfg.get("gt"):
        trainer.test(module, dataloaders=loader)
        values = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
        summary.update(values, metric_options=dict(module.hparams.metrics or {}))
    else:
        trainer.predict(module, dataloaders=loader, return_predictions=False)
    images = count_masks(output)
    summary.update(images=images, targets=len(writer.rows), skipped=writer.skipped)
    if cfg.get("gt") and trainer.is_global_zero:
        write_results(output, summary, metrics_table(summary, "test/"))
    log.info(
        "Wrote %d masks and %d targets to %s%s",
        images,
        len(writer.rows),
        output,
        f"; skipped or repaired {len(writer.skipped)} frame(s), listed in skipped.txt"
        if writer.skipped
        else "",
    )
    return summary, {"model": module, "trainer": trainer}
