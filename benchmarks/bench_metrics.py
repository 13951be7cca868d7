# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Throughput of ``IRSTDMetrics.update`` (IoU, nIoU, Pd, Fa) on synthetic sparse IRSTD predictions.

Each image holds 1-3 small target blobs; the prediction detects most of them with a slightly
shifted, resized blob, misses some and adds 0-2 false-alarm blobs. Data are generated with a fixed
seed before timing; only ``update`` + the final ``compute`` are timed.

Usage::

    python benchmarks/bench_metrics.py --count 1000 --size 512 --batch 8
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from irsam.metrics import IRSTDMetrics


def _disc(canvas: np.ndarray, row: float, col: float, radius: float, value: float) -> None:
    """Paint a filled disc in place.

    Arguments:
      canvas (np.ndarray): ``H×W`` float32 array.
      row (float): centre row.
      col (float): centre column.
      radius (float): radius in pixels.
      value (float): value written inside the disc.
    """
    r0, r1 = max(int(row - radius) - 1, 0), min(int(row + radius) + 2, canvas.shape[0])
    c0, c1 = max(int(col - radius) - 1, 0), min(int(col + radius) + 2, canvas.shape[1])
    rr, cc = np.mgrid[r0:r1, c0:c1]
    inside = (rr - row) ** 2 + (cc - col) ** 2 <= radius**2
    canvas[r0:r1, c0:c1][inside] = value


def make_data(count: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic logits and targets with realistic sparsity.

    Arguments:
      count (int): number of images N.
      size (int): image side S.
      seed (int): NumPy seed.
    Returns:
      tuple[torch.Tensor, torch.Tensor]: ``N×1×S×S`` float32 logits (−8 background, +8 blobs) and
      ``N×1×S×S`` uint8 targets in {0, 255}.
    """
    rng = np.random.default_rng(seed)
    logits = np.full((count, 1, size, size), -8.0, dtype=np.float32)
    targets = np.zeros((count, 1, size, size), dtype=np.uint8)
    for k in range(count):
        target = np.zeros((size, size), dtype=np.float32)
        for _ in range(rng.integers(1, 4)):
            row, col = rng.uniform(8, size - 8, 2)
            radius = rng.uniform(0.5, 4.0)
            _disc(target, row, col, radius, 255.0)
            if rng.random() < 0.9:
                shift_r, shift_c = rng.normal(0, 1.0, 2)
                _disc(
                    logits[k, 0], row + shift_r, col + shift_c, radius * rng.uniform(0.7, 1.3), 8.0
                )
        for _ in range(rng.integers(0, 3)):
            row, col = rng.uniform(4, size - 4, 2)
            _disc(logits[k, 0], row, col, rng.uniform(0.5, 2.5), 8.0)
        targets[k, 0] = target.astype(np.uint8)
    return torch.from_numpy(logits), torch.from_numpy(targets)


def time_metrics(
    logits: torch.Tensor, targets: torch.Tensor, batch: int
) -> tuple[float, dict[str, float]]:
    """Time ``IRSTDMetrics.update`` over all images in batches, plus the final ``compute``.

    One warm-up update on the first image (then ``reset``) precedes the timed loop.

    Arguments:
      logits (torch.Tensor): ``N×1×S×S`` float32 logits (from :func:`make_data`).
      targets (torch.Tensor): ``N×1×S×S`` uint8 targets in {0, 255}.
      batch (int): images per ``update`` call.
    Returns:
      tuple[float, dict[str, float]]: elapsed seconds and the computed IoU, nIoU, Pd and Fa.
    """
    metric = IRSTDMetrics()
    metric.update(logits[:1], targets[:1])
    metric.reset()
    start = time.perf_counter()
    for i in range(0, logits.shape[0], batch):
        metric.update(logits[i : i + batch], targets[i : i + batch])
    result = {key: float(value) for key, value in metric.compute().items()}
    return time.perf_counter() - start, result


def main() -> None:
    """Parse the arguments, time the metric and print the results and a one-line summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="number of images")
    parser.add_argument("--size", type=int, default=512, help="image side in pixels")
    parser.add_argument("--batch", type=int, default=8, help="images per update call")
    parser.add_argument("--seed", type=int, default=0, help="data seed")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    logits, targets = make_data(args.count, args.size, args.seed)
    elapsed, result = time_metrics(logits, targets, args.batch)

    rate = args.count / elapsed
    print(
        f"metrics: IoU={result['IoU']:.4f} nIoU={result['nIoU']:.4f} Pd={result['Pd']:.4f} "
        f"Fa={result['Fa'] * 1e6:.2f}e-6"
    )
    print(
        f"time: {elapsed:.3f} s for {args.count} images ({1e3 * elapsed / args.count:.3f} ms/image)"
    )
    print(
        f"SUMMARY: IRSTDMetrics {rate:.0f} images/s on {args.count} {args.size}x{args.size} "
        f"predictions, batch {args.batch}, CPU ({platform.processor() or platform.machine()}, "
        f"{args.threads} torch thread), torch {torch.__version__}"
    )


if __name__ == "__main__":
    main()
