# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""End-to-end runs of ``oneshot.py`` on synthetic sequences with a tiny random SAM (CPU)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from irsam.data.io import list_images, read_mask
from irsam.oneshot.cli import run_oneshot
from irsam.oneshot.synthetic_sequence import make_synthetic_sequence, write_synthetic_sequence

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "backbone.encoder=debug",
    "backbone.allow_random_weights=true",
    "backbone.device=cpu",
    "backbone.debug_img_size=128",
    "progress=false",
]


def test_cli_single_sequence_writes_masks_and_metrics(tmp_path):
    root = write_synthetic_sequence(
        make_synthetic_sequence(num_frames=6, height=64, width=64, seed=1), tmp_path / "seq"
    )
    out = tmp_path / "out"
    command = [
        sys.executable,
        str(PROJECT_ROOT / "oneshot.py"),
        f"sequence={root / 'frames'}",
        "reference=frame_0000",
        f"annotation={root / 'masks' / 'frame_0000.png'}",
        f"gt={root / 'masks'}",
        f"output={out}",
        f"hydra.run.dir={tmp_path / 'run'}",
        *TINY,
    ]
    result = subprocess.run(
        command, check=False, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    masks = list_images(out / "masks")
    assert [p.name for p in masks] == [p.name for p in list_images(root / "frames")]
    assert read_mask(masks[0]).shape == (64, 64) and len(list_images(out / "overlays")) == 6
    metrics = json.loads((out / "metrics.json").read_text())["sequences"]["frames"]
    assert metrics["scored_frames"] == 5 and set(metrics) >= {"IoU", "nIoU", "Pd", "Fa"}
    assert (out / "reference_state.pt").is_file() and (out / "metrics.csv").is_file()


def test_sequences_mode_macro_average_and_point_reference(tmp_path):
    for i, name in enumerate(["seq_a", "seq_b"]):
        seq = make_synthetic_sequence(num_frames=3, height=48, width=48, num_targets=1, seed=i)
        write_synthetic_sequence(seq, tmp_path / "tmp" / name)
        (tmp_path / "images").mkdir(exist_ok=True)
        (tmp_path / "tmp" / name / "frames").rename(tmp_path / "images" / name)
        (tmp_path / "masks").mkdir(exist_ok=True)
        (tmp_path / "tmp" / name / "masks").rename(tmp_path / "masks" / name)
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            config_name="oneshot",
            overrides=[
                f"sequences={tmp_path / 'images'}",
                f"gt={tmp_path / 'masks'}",
                "annotation_kind=point",
                f"output={tmp_path / 'out'}",
                "include_reference=true",
                "save_overlays=false",
                *TINY,
            ],
        )
    result = run_oneshot(cfg)
    assert set(result["sequences"]) == {"seq_a", "seq_b"} and result["fps"] > 0
    rows = list(csv.DictReader((tmp_path / "out" / "metrics.csv").open()))
    assert [r["sequence"] for r in rows] == ["seq_a", "seq_b", "macro"]
    assert rows[0]["scored_frames"] == "3"
    for key in ("IoU", "Pd", "Fa"):
        expected = (float(rows[0][key]) + float(rows[1][key])) / 2
        assert float(rows[2][key]) == pytest.approx(expected)
    assert len(list_images(tmp_path / "out" / "seq_b" / "masks")) == 3


def test_cli_with_an_irsam_checkpoint_trained_by_train_py(tmp_path):
    """encoder=irsam with its own prompt-free decoder: no SAM weights, one mask per frame."""
    from conftest import TINY_TRAIN_OVERRIDES, compose_config

    from irsam.tasks.train import train

    cfg = compose_config("train", tmp_path / "train", [*TINY_TRAIN_OVERRIDES, "test=false"])
    train(cfg)
    checkpoint = tmp_path / "train" / "checkpoints" / "last.ckpt"
    root = write_synthetic_sequence(
        make_synthetic_sequence(num_frames=4, height=64, width=64, seed=3), tmp_path / "seq"
    )
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            config_name="oneshot",
            overrides=[
                f"sequence={root / 'frames'}",
                f"gt={root / 'masks'}",
                f"output={tmp_path / 'out'}",
                "backbone.encoder=irsam",
                f"backbone.irsam_checkpoint={checkpoint}",
                "backbone.device=cpu",
                "progress=false",
            ],
        )
    run_oneshot(cfg)
    assert len(list_images(tmp_path / "out" / "masks")) == 4
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())["sequences"]["frames"]
    assert metrics["scored_frames"] == 3 and set(metrics) >= {"IoU", "Pd", "Fa"}
