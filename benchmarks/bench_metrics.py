# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Throughput of ``IRSTDMetrics.update`` on synthetic sparse IRSTD predictions, alone (IoU, nIoU,
Pd, Fa) or with every extra metric, optionally against PyIRSTDMetrics on the same inputs.

Each image holds 1-3 small target blobs; the prediction detects most of them with a slightly
shifted, resized blob, misses some and adds 0-2 false-alarm blobs. Data are generated with a fixed
seed before timing; only ``update`` + the final ``compute`` (``report`` with extras) are timed.

Usage::

    python benchmarks/bench_metrics.py --count 1000 --size 512 --batch 8
    python benchmarks/bench_metrics.py --count 200 --full --reference /work/venv-pyirstd/bin/python

``--full`` times ``IRSTDMetrics(extra=FULL)``; ``--reference PY`` also runs the same metric set of
PyIRSTDMetrics 1.0.2 (OPDC, distance-only, hIoU error analysis, shooting rule and ``CMMetrics``
with the same curve bins) in the interpreter ``PY`` (tests/reference/pyirstd_reference.py, one
thread), prints its images/s, the speed-up and the largest difference between the two.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
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


FULL = ("pixel", "opdc", "shooting", "size_bins", "curves", "per_image")
"""Every extra metric of ``IRSTDMetrics`` (docs/metrics.md §7-11)."""

REFERENCE_KEYS = {
    "iou": "IoU",
    "niou": "nIoU",
    "f1": "F1",
    "pd_dist": "Pd",
    "fa_dist": "Fa",
    "pd_opdc": "Pd_OPDC",
    "fa_opdc": "Fa_OPDC",
    "hiou_opdc": "hIoU",
    "seg_iou": "seg_IoU",
    "loc_iou": "loc_IoU",
    "seg_mrg_err": "seg_mrg_err",
    "seg_itf_err": "seg_itf_err",
    "seg_pcp_err": "seg_pcp_err",
    "loc_s2m_err": "loc_s2m_err",
    "loc_m2s_err": "loc_m2s_err",
    "loc_itf_err": "loc_itf_err",
    "loc_pcp_err": "loc_pcp_err",
    "pd_shoot": "Pd_shoot",
    "fa_shoot": "Fa_shoot",
}
"""PyIRSTDMetrics output key (tests/reference/pyirstd_reference.py) → our scalar name."""


def time_metrics(
    logits: torch.Tensor,
    targets: torch.Tensor,
    batch: int,
    extra: tuple[str, ...] = (),
    curve_bins: int = 256,
) -> tuple[float, dict[str, float]]:
    """Time ``IRSTDMetrics.update`` over all images in batches, plus the final compute.

    One warm-up update on the first image (then ``reset``) precedes the timed loop.

    Arguments:
      logits (torch.Tensor): ``N×1×S×S`` float32 logits (from :func:`make_data`).
      targets (torch.Tensor): ``N×1×S×S`` uint8 targets in {0, 255}.
      batch (int): images per ``update`` call.
      extra (tuple[str, ...]): extra metrics (empty: IoU, nIoU, Pd, Fa only; :data:`FULL`: all).
      curve_bins (int): bin edges of the pixel curves (with ``"curves"``).
    Returns:
      tuple[float, dict[str, float]]: elapsed seconds and the computed scalars (with ``extra``,
      ``report()`` is timed and the mean-curve values are added as ``mean_<name>_<k>``).
    """
    metric = IRSTDMetrics(extra=extra, curve_bins=curve_bins)
    names = [f"img{k}" for k in range(logits.shape[0])]
    kwargs = {"names": names[:1]} if extra else {}
    metric.update(logits[:1], targets[:1], **kwargs)
    metric.reset()
    start = time.perf_counter()
    for i in range(0, logits.shape[0], batch):
        kwargs = {"names": names[i : i + batch]} if extra else {}
        metric.update(logits[i : i + batch], targets[i : i + batch], **kwargs)
    if not extra:
        result = {key: float(value) for key, value in metric.compute().items()}
        return time.perf_counter() - start, result
    report = metric.report()
    elapsed = time.perf_counter() - start
    result = dict(report["scalars"])
    for name in ("mean_precision", "mean_recall", "mean_fpr"):
        for k, value in enumerate((report["curves"] or {}).get(name, [])):
            result[f"{name}_{k}"] = value
    return elapsed, result


def time_reference(
    logits: torch.Tensor, targets: torch.Tensor, python: str, curve_bins: int = 256
) -> tuple[float, dict[str, float]]:
    """Time PyIRSTDMetrics 1.0.2 on the same images (its ``update`` calls only), one thread.

    Arguments:
      logits (torch.Tensor): ``N×1×S×S`` logits; the reference gets ``sigmoid`` in float64.
      targets (torch.Tensor): ``N×1×S×S`` targets in {0, 255}.
      python (str): interpreter with ``pyirstdmetrics`` installed.
      curve_bins (int): ``CMMetrics(num_bins=...)``.
    Returns:
      tuple[float, dict[str, float]]: seconds and the values under our names (mean curves as
      ``mean_<name>_<k>``, thresholds increasing).
    """
    script = Path(__file__).resolve().parents[1] / "tests" / "reference" / "pyirstd_reference.py"
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cases.npz"
        arrays = {}
        for k in range(logits.shape[0]):
            arrays[f"prob_{k}"] = torch.sigmoid(logits[k, 0].double()).numpy()
            arrays[f"mask_{k}"] = targets[k, 0].numpy() > 127
        np.savez(path, **arrays)
        done = subprocess.run(
            [python, str(script), str(path), "--bins", str(curve_bins), "--time"],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
    out = json.loads(done.stdout)
    result = {ours: out[theirs] for theirs, ours in REFERENCE_KEYS.items()}
    for name in ("mean_precision", "mean_recall", "mean_fpr"):
        for k, value in enumerate(out[name][::-1]):
            result[f"{name}_{k}"] = value
    return out["seconds"], result


def main() -> None:
    """Parse the arguments, time the metric and print the results and a one-line summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="number of images")
    parser.add_argument("--size", type=int, default=512, help="image side in pixels")
    parser.add_argument("--batch", type=int, default=8, help="images per update call")
    parser.add_argument("--seed", type=int, default=0, help="data seed")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--full", action="store_true", help="time every extra metric too")
    parser.add_argument("--curve-bins", type=int, default=256, help="pixel-curve bin edges")
    parser.add_argument("--reference", default=None, help="Python with pyirstdmetrics installed")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    logits, targets = make_data(args.count, args.size, args.seed)
    extra = FULL if args.full else ()
    elapsed, result = time_metrics(logits, targets, args.batch, extra, args.curve_bins)

    rate = args.count / elapsed
    label = "IRSTDMetrics(extra=FULL)" if args.full else "IRSTDMetrics"
    print(
        f"metrics: IoU={result['IoU']:.4f} nIoU={result['nIoU']:.4f} Pd={result['Pd']:.4f} "
        f"Fa={result['Fa'] * 1e6:.2f}e-6"
    )
    print(
        f"time: {elapsed:.3f} s for {args.count} images ({1e3 * elapsed / args.count:.3f} ms/image)"
    )
    print(
        f"SUMMARY: {label} {rate:.0f} images/s on {args.count} {args.size}x{args.size} "
        f"predictions, batch {args.batch}, CPU ({platform.processor() or platform.machine()}, "
        f"{args.threads} torch thread), torch {torch.__version__}"
    )
    if args.reference:
        ref_elapsed, ref = time_reference(logits, targets, args.reference, args.curve_bins)
        common = [key for key in ref if key in result]
        worst = max(common, key=lambda key: abs(result[key] - ref[key]))
        ref_rate = args.count / ref_elapsed
        print(
            f"REFERENCE: PyIRSTDMetrics 1.0.2 {ref_rate:.1f} images/s on the same images "
            f"(1 thread); speed-up x{rate / ref_rate:.1f}; {len(common)} values compared, "
            f"largest difference {abs(result[worst] - ref[worst]):.3g} ({worst})"
        )


if __name__ == "__main__":
    main()
