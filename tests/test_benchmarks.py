# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""``benchmarks/benchmark.py``: small settings write JSON + Markdown, and its training step is the
LightningModule's (same loss and same updated weights as a module built independently)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import hydra
import pytest
import torch
from conftest import compose_config

from benchmarks import benchmark

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_benchmark_writes_json_and_markdown(tmp_path: Path) -> None:
    """Every section plus the max-batch search at 64², one repeat: both reports are complete."""
    out = tmp_path / "bench"
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "benchmark.py"),
        "--threads=1",
        "--input-size=64",
        "--batch-sizes=1,2",
        "--repeats=1",
        "--warmup=0",
        "--workers=0",
        "--data-images=4",
        "--metric-images=4",
        "--max-batch",
        "--max-batch-limit=2",
        f"--out={out}",
    ]
    done = subprocess.run(
        command, check=False, cwd=tmp_path, capture_output=True, text=True, timeout=170
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((out / "benchmark.json").read_text())
    rows = report["configs"][0]["rows"]
    assert [(r["section"], r["batch_size"]) for r in rows] == [
        ("train", 1),
        ("train", 2),
        ("infer", 1),
        ("infer", 2),
    ]
    assert all(r["error"] is None and r["images_per_s"] > 0 and r["peak_mib"] > 0 for r in rows)
    assert report["configs"][0]["optimizer_state_mib"] > 0
    assert report["sections"]["max_batch"][0]["largest"] == 2
    assert [(r["workers"], r["cache_images"]) for r in report["sections"]["data"]["rows"]] == [
        (0, False),
        (0, True),
    ]
    assert report["sections"]["metrics"]["images_per_s"] > 0
    assert report["summary"]["loader_vs_train"]["train_images_per_s"] > 0
    assert report["environment"]["torch"] == torch.__version__
    markdown = (out / "benchmark.md").read_text()
    for title in ("## Training step and inference", "## Largest training batch", "## Data loader"):
        assert title in markdown


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
def test_benchmark_step_is_the_lightning_training_step(tmp_path: Path) -> None:
    """The benchmark's step (``benchmark.make_train_step``) gives the loss of
    ``IRSAMLitModule.training_step`` and the weights of ``configure_optimizers()``'s step, for a
    module built independently from the same config and seed."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        overrides = benchmark.model_overrides("irsam_tiny", 64, 64, {})
        cfg = benchmark.compose(overrides)
        module = benchmark.build_module(cfg, "cpu", seed=3)
        batch = benchmark.loader_batch(cfg, 2, "cpu")
        step, _ = benchmark.make_train_step(module, batch, "cpu", "fp32")
        before = [p.detach().clone() for p in module.parameters()]
        loss = step()

        reference_cfg = compose_config("train", tmp_path, overrides)
        torch.manual_seed(3)
        reference = hydra.utils.instantiate(reference_cfg.model).train()
        optimizer = reference.configure_optimizers()["optimizer"]
        reference_loss = reference.training_step(batch, 0)
        reference_loss.backward()
        optimizer.step()
    finally:
        torch.set_num_threads(previous)
    assert torch.isfinite(loss) and float(loss) > 0
    torch.testing.assert_close(loss, reference_loss.detach())
    changed = 0
    pairs = zip(module.named_parameters(), reference.parameters(), before, strict=True)
    for (name, param), ref, initial in pairs:
        torch.testing.assert_close(param, ref, msg=f"{name} differs after one step")
        changed += int(not torch.equal(param, initial))
    assert changed > 100, f"the step changed only {changed} parameter tensors"


@pytest.mark.slow
def test_gpu_script_smoke_mode_runs_every_step(tmp_path: Path) -> None:
    """``benchmarks/gpu.sh --smoke DIR`` runs every step of the GPU benchmark on the CPU at tiny
    sizes (sweep + loader, largest batch of both models, the from-scratch NUDT-layout run, the
    compile step) and leaves the summary, the log and the details archive."""
    out = tmp_path / "gpu"
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu.sh"), "--smoke", str(out)],
        check=False,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHON": sys.executable},
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    summary = (out / "summary.md").read_text()
    for step in ("A_sweep_data=0", "C_max_batch_irsam_tiny=0", "C_max_batch_irsam_vit_b=0"):
        assert step in summary, summary
    assert "D_train_nudt=0" in summary and "B_compile=0" in summary, summary
    assert "## From-scratch NUDT-SIRST run" in summary and "| 0 | " in summary, summary
    assert "Test metrics of the selected checkpoint: test/" in summary, summary
    assert "Does the loader keep up?" in summary, summary
    with tarfile.open(out / "details.tar.gz") as archive:
        names = archive.getnames()
    assert "details/A_sweep_data/benchmark.json" in names
    assert not [name for name in names if name.endswith(".ckpt")]
    assert (out / "gpu.log").is_file()
