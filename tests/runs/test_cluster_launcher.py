# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Cluster sweeps through hydra-submitit-launcher: ``hydra/launcher=local`` runs a 2-job sweep in
submitit's own job processes (the code path of ``hydra/launcher=slurm``), and the SLURM config
composes with its keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT, TINY_TRAIN_OVERRIDES, compose_config

pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install -e '.[cluster]'")


def test_slurm_launcher_config_composes(tmp_path: Path) -> None:
    """``hydra/launcher=slurm`` extends submitit_slurm with the partition / GPU / time keys."""
    cfg = compose_config("train", tmp_path, ["hydra/launcher=slurm", "hydra.launcher.nodes=2"])
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert launcher.nodes == 2
    for key in ("partition", "gpus_per_node", "tasks_per_node", "timeout_min", "cpus_per_task"):
        assert key in launcher, key


@pytest.mark.slow
def test_submitit_local_sweep_runs_two_jobs(tmp_path: Path) -> None:
    """``-m hydra/launcher=local seed=1,2``: both submitit jobs train, save their best
    checkpoint, test it and record their own seed."""
    sweep = tmp_path / "sweep"
    overrides = [
        o
        for o in TINY_TRAIN_OVERRIDES
        if not o.startswith(("callbacks.", "model.", "dataset.synthetic.num_train"))
    ]
    command = [
        sys.executable,
        "train.py",
        "-m",
        "hydra/launcher=local",
        f"hydra.sweep.dir={sweep}",
        f"paths.log_dir={tmp_path / 'logs'}",
        "seed=1,2",
        "callbacks=none",
        "dataset.synthetic.num_train=4",
        "model.net.encoder_size=64",
        *overrides,
    ]
    # two jobs share the machine: one torch thread each
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600, env=env, check=False
    )
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    results = sorted((sweep / ".submitit").glob("*/*_result.pkl"))
    assert len(results) == 2, f"submitit results: {results}"
    for job, seed in (("0", 1), ("1", 2)):
        assert f"seed={seed}" in (sweep / job / ".hydra" / "overrides.yaml").read_text()
        log = (sweep / job / "train.log").read_text()
        assert f"Test of {sweep / job / 'checkpoints'}" in log, log[-2000:]
        stored = json.loads((sweep / job / "results.json").read_text())
        assert stored["checkpoint"].startswith(str(sweep / job / "checkpoints"))
