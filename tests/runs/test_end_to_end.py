# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Subprocess runs: simulated DDP, sweeps and offline wandb (SIGKILL resume: test_resume.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import PROJECT_ROOT, TINY_TRAIN_OVERRIDES, compose_config

pytestmark = pytest.mark.slow

CLI_OVERRIDES = [o for o in TINY_TRAIN_OVERRIDES if "enable_progress_bar" not in o] + [
    "trainer.enable_progress_bar=false"
]


def _run(
    args: list[str], cwd: Path, timeout: int = 600, env: dict | None = None
) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, *args],
        check=False,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 0, (
        f"{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    )
    return result


def test_ddp_sim_synced_metrics_equal_single_process_metrics_on_the_same_predictions(
    tmp_path: Path,
) -> None:
    """2 CPU processes (gloo) evaluate a checkpoint; their synced metric states equal a single
    process's metrics over the very masks the two ranks scored (saved by each rank).

    Exact by construction: both sides binarise the same logits, so the integer sums behind IoU,
    Pd and Fa are equal whatever the batch layout (compared after the float32 rounding that
    logging applies to the synced value); nIoU is a float64 sum over images taken in another
    order, hence compared to 1e-6 (float32 logging).
    """
    import json

    import hydra
    from PIL import Image

    from irsam.metrics import IRSTDMetrics
    from irsam.tasks.train import train

    cfg = compose_config("train", tmp_path / "train", list(TINY_TRAIN_OVERRIDES) + ["test=false"])
    train(cfg)
    checkpoint = tmp_path / "train" / "checkpoints" / "last.ckpt"
    run = tmp_path / "ddp_eval"
    overrides = [
        f"ckpt_path={checkpoint}",
        "trainer=ddp_sim",
        "trainer.enable_progress_bar=false",
        "dataset.synthetic.native_size=64",
        "dataset.synthetic.num_test=7",
        "dataset.eval_batch_size=2",
        "save_predictions=true",
        "pd_fa_thresholds=null",
        "extras.print_config=false",
    ]
    _run(["evaluate.py", f"hydra.run.dir={run}", *overrides], PROJECT_ROOT)
    synced = json.loads((run / "results.json").read_text())["metrics"]

    eval_cfg = compose_config("evaluate", tmp_path / "single", overrides)
    datamodule = hydra.utils.instantiate(eval_cfg.dataset)
    datamodule.setup("test")
    single = IRSTDMetrics()
    masks = run / "predictions" / "masks"
    for index in range(len(datamodule.test_dataset)):
        item = datamodule.test_dataset[index]
        pred = np.asarray(Image.open(masks / f"{item['name']}.png")) > 0
        logits = torch.where(torch.from_numpy(pred), 1.0, -1.0)[None, None]
        single.update(logits, item["mask_native"][None])
    values = {f"test/{k}": float(v) for k, v in single.compute().items()}
    assert len(list(masks.iterdir())) == 7, "each rank writes the masks of its own images"
    assert synced["test/IoU"] > 0.0, "degenerate comparison: no target pixel was predicted"
    for key in ("test/IoU", "test/Pd", "test/Fa"):
        assert np.float32(synced[key]) == np.float32(values[key]), key
    assert synced["test/nIoU"] == pytest.approx(values["test/nIoU"], rel=1e-6)


def test_optuna_sweep_two_trials(tmp_path: Path) -> None:
    """`-m hparams_search=irsam_optuna` runs 2 trials and writes optimization_results.yaml."""
    sweep = tmp_path / "optuna"
    _run(
        [
            "train.py",
            "-m",
            "hparams_search=irsam_optuna",
            f"hydra.sweep.dir={sweep}",
            "hydra.sweeper.n_trials=2",
            "hydra.sweeper.sampler.n_startup_trials=2",
            *CLI_OVERRIDES,
        ],
        PROJECT_ROOT,
    )
    assert (sweep / "optimization_results.yaml").is_file()
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]


OOM_PROBE = """# @package _global_
defaults:
  - override /hydra/sweeper: optuna
  - override /hydra/sweeper/sampler: random
optimized_metric: val/IoU_best
test: false
hydra:
  mode: MULTIRUN
  sweeper:
    direction: maximize
    n_trials: 2
    max_failure_rate: 1.0
    sampler:
      seed: 0
    params:
      model.net.encoder_size: choice(131072, 128)
"""
"""Two Optuna trials (random sampler, seed 0: one of each value) of which one cannot allocate its
131072² input (~200 GB)."""


def test_optuna_sweep_survives_a_trial_that_runs_out_of_memory(tmp_path: Path) -> None:
    """A trial whose allocation fails is recorded as failed and the sweep finishes its
    other trial instead of aborting (the project's sweeps set max_failure_rate: 1.0, as here)."""
    configs = tmp_path / "configs" / "hparams_search"
    configs.mkdir(parents=True)
    (configs / "oom_probe.yaml").write_text(OOM_PROBE)
    sweep = tmp_path / "optuna_oom"
    result = _run(
        [
            "train.py",
            f"hydra.searchpath=[file://{tmp_path / 'configs'}]",
            "hparams_search=oom_probe",
            f"hydra.sweep.dir={sweep}",
            *[o for o in CLI_OVERRIDES if not o.startswith("model.net.encoder_size")],
        ],
        PROJECT_ROOT,
    )
    assert (sweep / "optimization_results.yaml").is_file()
    assert "this sweep trial is marked failed" in result.stdout + result.stderr
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]


def test_grid_multirun_two_jobs(tmp_path: Path) -> None:
    """A plain Hydra grid `-m loss=irsam,dice_focal` runs 2 jobs with their own run folders."""
    sweep = tmp_path / "grid"
    _run(
        ["train.py", "-m", "loss=irsam,dice_focal", f"hydra.sweep.dir={sweep}", *CLI_OVERRIDES],
        PROJECT_ROOT,
    )
    for job in ("0", "1"):
        assert (sweep / job / "checkpoints" / "last.ckpt").is_file()


def test_wandb_offline_writes_a_run_directory(tmp_path: Path) -> None:
    """logger=wandb with offline=true needs no network and writes a local run folder."""
    run = tmp_path / "wandb_run"
    overrides = [o for o in CLI_OVERRIDES if o != "~logger"]
    _run(
        [
            "train.py",
            f"hydra.run.dir={run}",
            "logger=wandb",
            "logger.wandb.offline=true",
            *overrides,
        ],
        PROJECT_ROOT,
        env={"WANDB_MODE": "offline", "WANDB_SILENT": "true"},
    )
    runs = list((run / "wandb").glob("offline-run-*"))
    assert runs, f"no offline run in {run / 'wandb'}"
