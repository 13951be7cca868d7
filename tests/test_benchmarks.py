# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Smoke test: ``benchmarks/run.py`` with the tiniest settings writes its JSON and Markdown."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_run_writes_json_and_markdown(tmp_path: Path) -> None:
    """All four sections at 64², batch 1, one repeat, no workers: both reports are complete."""
    out = tmp_path / "bench"
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "run.py"),
        "--threads=1",
        "--input-size=64",
        "--batch-sizes=1",
        "--repeats=1",
        "--warmup=0",
        "--workers=0",
        "--data-images=2",
        "--metric-images=2",
        f"--out={out}",
    ]
    done = subprocess.run(
        command, check=False, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((out / "benchmark.json").read_text())
    assert set(report["sections"]) == {"train", "infer", "data", "metrics"}
    assert report["sections"]["train"]["rows"][0]["images_per_s"] > 0
    assert report["sections"]["infer"]["best"]["batch_size"] == 1
    assert report["environment"]["torch"]
    markdown = (out / "benchmark.md").read_text()
    for title in ("## Training step", "## Inference", "## Data pipeline", "## Metrics"):
        assert title in markdown
