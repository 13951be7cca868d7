# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""IRSTDMetrics (with every extra metric) and PdFaCurve under torch.distributed (2 CPU processes,
gloo) equal one process.

The pytest process itself is rank 0 and spawns a single rank-1 process, so only one extra
interpreter has to import torch and torchmetrics. Marked ``slow``: that import alone makes the
test take 10-16 s on the shared 2-core development machine.
"""

from __future__ import annotations

import socket
import warnings
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from irsam.metrics import IRSTDMetrics, PdFaCurve

THRESHOLDS = [-1.0, 0.0, 1.5]
FLOAT_SUMS = (
    "IoU",
    "hIoU",
    "_err",
    "Precision",
    "Recall",
    "F1",
    "tIoU_area",
    "curve_mean_precision",
    "curve_mean_recall",
    "curve_mean_tpr",
    "curve_mean_fpr",
)
"""Keys whose values come from float64 sums (compared to 1e-12; the others exactly)."""


def dataset() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Five batches of sparse logits / {0,255} targets with three image sizes (fixed seed)."""
    generator = torch.Generator().manual_seed(7)
    batches = []
    for count, shape in ((2, (24, 24)), (1, (17, 30)), (3, (24, 24)), (1, (9, 9)), (2, (32, 20))):
        target = (torch.rand(count, 1, *shape, generator=generator) < 0.05).to(torch.uint8) * 255
        noise = torch.randn(count, 1, *shape, generator=generator)
        batches.append((noise - 1.8 + 2.5 * (target > 0), target))
    return batches


EXTRA = ["pixel", "opdc", "shooting", "size_bins", "curves", "per_image"]


def names_of(first: int, count: int) -> list[str]:
    """Image names ``img<k>`` of ``count`` images starting at global index ``first``."""
    return [f"img{k}" for k in range(first, first + count)]


def run(
    metrics: list[IRSTDMetrics | PdFaCurve], batches: list, first: int = 0
) -> dict[str, list[float]]:
    """Update every metric with the batches and return their computed values as lists.

    Arguments:
      metrics (list): the metrics under test.
      batches (list): ``(logits, target)`` batches.
      first (int): global index of the first image (image names are ``img<k>``).
    Returns:
      dict[str, list[float]]: every value; the report of metrics with extras adds its curves,
      size bins and the per-image table (names encoded as their index).
    """
    for logits, target in batches:
        names = names_of(first, logits.shape[0])
        first += logits.shape[0]
        for metric in metrics:
            if isinstance(metric, IRSTDMetrics) and metric.extra:
                metric.update(logits, target, names=names)
            else:
                metric.update(logits, target)
    result = {}
    for index, metric in enumerate(metrics):
        for key, value in metric.compute().items():
            result[f"{index}/{key}"] = value.reshape(-1).tolist()
        if isinstance(metric, IRSTDMetrics) and metric.extra:
            report = metric.report()
            for key, values in report["curves"].items():
                result[f"{index}/curve_{key}"] = values
            result[f"{index}/size_targets"] = [row["targets"] for row in report["size_bins"]]
            rows = sorted(report["images"], key=lambda row: row["name"])
            result[f"{index}/image_index"] = [float(row["name"][3:]) for row in rows]
            result[f"{index}/image_IoU"] = [row["IoU"] for row in rows]
            result[f"{index}/image_missed"] = [row["missed"] for row in rows]
    return result


def make_metrics() -> list[IRSTDMetrics | PdFaCurve]:
    """The metrics under test: both Fa rules, a fixed normaliser, and the curve."""
    return [
        IRSTDMetrics(),
        IRSTDMetrics(fa_rule="legacy_area", fa_normaliser=32, empty_policy="skip"),
        PdFaCurve(THRESHOLDS),
        IRSTDMetrics(extra=EXTRA, curve_bins=9, size_bins=(1, 3)),
    ]


def worker(rank: int, port: int, out_dir: str) -> None:
    """One of 2 ranks: an uneven shard (rank 0: batch 0; rank 1: batches 1-4), a synced compute.

    Arguments:
      rank (int): 0 or 1.
      port (int): TCP rendezvous port on 127.0.0.1.
      out_dir (str): folder receiving ``rank<k>.pt`` with the computed values.
    """
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=2,
        timeout=timedelta(seconds=60),
    )
    try:
        batches = dataset()
        shard = batches[:1] if rank == 0 else batches[1:]
        first = 0 if rank == 0 else batches[0][0].shape[0]
        torch.save(run(make_metrics(), shard, first), Path(out_dir) / f"rank{rank}.pt")
        # a process with no image at all (more processes than images)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = run(make_metrics(), [] if rank == 0 else batches)
        torch.save(result, Path(out_dir) / f"rank{rank}_idle.pt")
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_ddp_two_processes_equal_single_process(tmp_path: Path) -> None:
    port = free_port()
    child = mp.get_context("spawn").Process(target=worker, args=(1, port, str(tmp_path)))
    child.start()
    try:
        worker(0, port, str(tmp_path))
        child.join(timeout=120)
    finally:
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0, f"rank 1 failed with exit code {child.exitcode}"
    expected = run(make_metrics(), dataset())
    for name in ("rank0", "rank1", "rank0_idle", "rank1_idle"):
        result = torch.load(tmp_path / f"{name}.pt")
        assert result.keys() == expected.keys()
        for key, values in expected.items():
            if any(part in key for part in FLOAT_SUMS):  # float64 sums: summation order differs
                assert result[key] == pytest.approx(values, abs=1e-12, nan_ok=True), key
            else:
                assert result[key] == values, key
    assert 0 < expected["0/Pd"][0] < 1 and expected["0/Fa"][0] > 0
    assert 0 < expected["3/hIoU"][0] < 1 and len(expected["3/image_IoU"]) == 9
    assert all(count > 0 for count in expected["3/size_targets"])
