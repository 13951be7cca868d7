# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Prediction task: segment new images (no ground truth needed); masks, overlays, a targets CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import torch
from omegaconf import DictConfig
from scipy import ndimage
from torch.utils.data import DataLoader
from tqdm import tqdm

from irsam.data.images_only import ImageFileDataset, collect_inputs
from irsam.data.io import read_image, read_mask, write_png
from irsam.lit_module import native_resolution_logits
from irsam.metrics import IRSTDMetrics, connected_components, label_components
from irsam.tasks.evaluate import lit_module_from_checkpoint
from irsam.tasks.report import metrics_table, write_results
from irsam.utils import atomic_path, atomic_write_bytes, get_logger
from irsam.utils.config import load_lightning_checkpoint, task_wrapper
from irsam.visualize import overlay

log = get_logger(__name__)

TARGET_COLUMNS = ("image", "target", "centroid_x", "centroid_y", "area", "score_max", "score_mean",
                  "bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1")
"""Columns of ``targets.csv``: one row per detected target (8-connected component, raster order);
scores are sigmoid probabilities; the box is in pixels, x1/y1 exclusive."""


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _find_mask(gt_dir: Path, stem: str) -> Path | None:
    for candidate in sorted(gt_dir.glob(f"{stem}.*")) + sorted(gt_dir.glob(f"{stem}_pixels0.*")):
        return candidate
    return None


@task_wrapper
def predict(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Segment ``cfg.input`` (an image or a folder) with ``cfg.ckpt_path`` into ``cfg.output``.

    Writes ``masks/<name>.png`` (0/255), ``overlays/<name>.png``, optional ``probs/<name>.tif``
    (float32 probabilities), ``targets.csv`` and, with ``gt=<mask folder>``, ``results.json``/``.md``.

    Arguments:
      cfg (DictConfig): the composed ``predict.yaml`` config.
    Returns:
      tuple[dict, dict]: ({"images": N, "targets": T, metrics...}, {"model": module}).
    """
    checkpoint = load_lightning_checkpoint(cfg.ckpt_path)
    image_size = cfg.get("image_size") or checkpoint["hyper_parameters"].get("train_image_size")
    device = _device(cfg.device)
    module = lit_module_from_checkpoint(checkpoint).to(device)
    files = collect_inputs(cfg.input)
    loader = DataLoader(ImageFileDataset(files, int(image_size), cfg.high_bit_norm),
                        batch_size=cfg.batch_size, num_workers=cfg.num_workers)
    output = Path(cfg.output)
    gt_dir = Path(cfg.gt) if cfg.get("gt") else None
    metrics = IRSTDMetrics(threshold=cfg.threshold) if gt_dir else None
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")
    rows: list[tuple[Any, ...]] = []
    with torch.inference_mode():
        for batch in tqdm(loader, desc="predict", unit="batch"):
            with autocast:
                logits = module(batch["image"].to(device))["mask_logits"]
            native = native_resolution_logits(logits, batch["valid_size"], batch["orig_size"])
            for k, logit in enumerate(native):
                name, path = batch["name"][k], batch["path"][k]
                prob = torch.sigmoid(logit[0, 0]).cpu().numpy()
                pred = logit[0, 0].cpu().numpy() > cfg.threshold
                write_png(output / "masks" / f"{name}.png", pred.astype(np.uint8) * 255)
                if cfg.save_probabilities:
                    with atomic_path(output / "probs" / f"{name}.tif") as tmp:
                        tifffile.imwrite(tmp, prob.astype(np.float32))
                gt = None
                if gt_dir is not None:
                    mask_path = _find_mask(gt_dir, name)
                    if mask_path is None:
                        raise FileNotFoundError(f"gt={gt_dir}: no mask for image {path} "
                                                f"(expected {name}.png or {name}_pixels0.png)")
                    gt = read_mask(mask_path).astype(bool)
                    metrics.update(logit.cpu(), torch.from_numpy(gt)[None, None])
                if cfg.save_overlays:
                    write_png(output / "overlays" / f"{name}.png",
                              overlay(read_image(path, cfg.high_bit_norm), pred, gt))
                labels, count = label_components(pred)
                indices = np.arange(1, count + 1)
                score_max = ndimage.maximum(prob, labels, indices) if count else []
                score_mean = ndimage.mean(prob, labels, indices) if count else []
                for index, comp in enumerate(connected_components(pred), start=1):
                    row0, col0, row1, col1 = comp.bbox
                    rows.append((name, index, round(comp.centroid_col, 2), round(comp.centroid_row, 2),
                                 comp.area, round(float(score_max[index - 1]), 4),
                                 round(float(score_mean[index - 1]), 4), col0, row0, col1, row1))
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(TARGET_COLUMNS)
    writer.writerows(rows)
    atomic_write_bytes(output / "targets.csv", text.getvalue().encode())
    summary: dict[str, Any] = {"images": len(files), "targets": len(rows), "output": str(output)}
    if metrics is not None:
        values = {f"test/{k}": float(v) for k, v in metrics.compute().items()}
        summary.update(values)
        write_results(output, summary, metrics_table(values, "test/"))
    log.info("Wrote %d masks and %d targets to %s", len(files), len(rows), output)
    return summary, {"model": module}
