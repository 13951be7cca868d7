# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""IRSTDMetrics and PdFaCurve under torch.distributed (2 CPU processes, gloo) equal one process.

The pytest process itself is rank 0 and spawns a single rank-1 process, so only one extra
interpreter has to import torch and torchmetrics. Marked ``slow``: that import alone makes the
test take 10-16 s on the shared 2-core development machine.
"""

from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from irsam.metrics import IRSTDMetrics, PdFaCurve

THRESHOLDS = [-1.0, 0.0, 1.5]


def dataset() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Five batches of sparse logits / {0,255} targets with three image sizes (fixed seed)."""
    generator = torch.Generator().manual_seed(7)
    batches = []
    for count, shape in ((2, (24, 24)), (1, (17, 30)), (3, (24, 24)), (1, (9, 9)), (2, (32, 20))):
        target = (torch.rand(count, 1, *shape, generator=generator) < 0.05).to(torch.uint8) * 255
        noise = torch.randn(count, 1, *shape, generator=generator)
        batches.append((noise - 1.8 + 2.5 * (target > 0), target))
    return batches


def run(metrics: list[IRSTDMetrics | PdFaCurve], batches: list) -> dict[str, list[float]]:
    """Update every metric with the batches and return their computed values as lists."""
    for logits, target in batches:
        for metric in metrics:
            metric.update(logits, target)
    result = {}
    for index, metric in enumerate(metrics):
        for key, value in metric.compute().items():
            result[f"{index}/{key}"] = value.reshape(-1).tolist()
    return result


def make_metrics() -> list[IRSTDMetrics | PdFaCurve]:
    """The metrics under test: both Fa rules, a fixed normaliser, and the curve."""
    return [
        IRSTDMetrics(),
        IRSTDMetrics(fa_rule="legacy_area", fa_normaliser=32, empty_policy="skip"),
        PdFaCurve(THRESHOLDS),
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
        torch.save(run(make_metrics(), shard), Path(out_dir) / f"rank{rank}.pt")
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
    for rank in range(2):
        result = torch.load(tmp_path / f"rank{rank}.pt")
        assert result.keys() == expected.keys()
        for key, values in expected.items():
            if key.endswith("nIoU"):  # a float64 sum: only the summation order differs
                assert all(abs(a - b) <= 1e-15 for a, b in zip(result[key], values)), key
            else:
                assert result[key] == values, key
    assert 0 < expected["0/Pd"][0] < 1 and expected["0/Fa"][0] > 0
