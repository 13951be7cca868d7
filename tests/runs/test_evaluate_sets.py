# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""evaluate.py datasets=[...]: one checkpoint scored on several test sets, each under its own
protocol, in one run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import PROJECT_ROOT, compose_config, make_dataset, write_train_checkpoint

from irsam.tasks.evaluate import evaluate
from irsam.utils import ConfigError

NET = {"_target_": "irsam.models.build.build_irsam_tiny", "encoder_size": 64, "checkpoint": None}
"""A tiny random network (encoder input 64)."""

TRAINED_ON = {
    "name": "nudt_sirst",
    "split": "standard",
    "splits": {"standard": {"protocol": "standard", "trainval": "a.txt", "test": "b.txt"}},
    "loader_size": 32,
    "train_fraction": 0.25,
    "train_subset_seed": 0,
}
"""Datamodule settings stored in the checkpoint: a quarter of NUDT-SIRST's standard split."""


def _checkpoint(path: Path) -> Path:
    """A train.py-layout checkpoint of the tiny network with the datamodule settings above."""
    write_train_checkpoint(path, NET, loader_size=32)
    data = torch.load(path, weights_only=True)
    data["datamodule_hyper_parameters"] = dict(TRAINED_ON)
    torch.save(data, path)
    return path


def _data_dir(root: Path) -> Path:
    """NUDT-SIRST and NUAA-SIRST folders (3 and 2 test images) with their default split files."""
    for folder, split_dir, count in (
        ("NUDT-SIRST", "IRSAM_split", 3),
        ("NUAA-SIRST", "idx_427", 2),
    ):
        names = [f"{folder[:4].lower()}{i}" for i in range(3 + count)]
        make_dataset(root / folder, names, size=(24, 28))
        (root / folder / split_dir).mkdir()
        (root / folder / split_dir / "trainval.txt").write_text("\n".join(names[:3]) + "\n")
        (root / folder / split_dir / "test.txt").write_text("\n".join(names[3:]) + "\n")
    return root


def _config(tmp_path: Path, *overrides: str):
    """The evaluate config of the tiny checkpoint on the two generated datasets."""
    return compose_config(
        "evaluate",
        tmp_path / "run",
        [
            f"ckpt_path={_checkpoint(tmp_path / 'last.ckpt')}",
            f"paths.data_dir={_data_dir(tmp_path / 'data')}",
            "trainer=cpu",
            "extras.print_config=false",
            "trainer.enable_progress_bar=false",
            *overrides,
        ],
    )


@pytest.mark.usefixtures("one_thread")
def test_each_set_is_scored_under_its_own_protocol(tmp_path: Path, monkeypatch) -> None:
    """Two sets: results.json holds each set's single-set results under its name, results.md
    one protocol line and table per set, and each set's reports lie in its own folder; the
    user's other dataset overrides apply to every set."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cfg = _config(tmp_path, "datasets=[nudt_sirst,nuaa_sirst]", "dataset.eval_batch_size=2")
    results, _ = evaluate(cfg)
    run = tmp_path / "run"
    stored = json.loads((run / "results.json").read_text())
    assert stored == json.loads(json.dumps(results))
    assert stored["checkpoint"] == str(tmp_path / "last.ckpt")
    assert stored["trained_on"] == {
        "dataset": "nudt_sirst",
        "split": "standard",
        "protocol": "standard",
        "loader_size": 32,
        "train_fraction": 0.25,
        "train_subset_seed": 0,
        "copy_paste_p": 0.0,
    }
    assert list(results["sets"]) == ["nudt_sirst", "nuaa_sirst"]  # the order given
    for name, folder, images in (("nudt_sirst", "NUDT-SIRST", 3), ("nuaa_sirst", "NUAA-SIRST", 2)):
        one = stored["sets"][name]
        assert (one["dataset"], one["protocol"]["protocol"], one["images"]) == (
            name,
            "irsam",
            images,
        )
        assert one["protocol"]["root"] == str(tmp_path / "data" / folder)
        assert one["trained_on"] == stored["trained_on"] and "test/IoU" in one["metrics"]
        assert (run / name / "per_image.csv").is_file()
        assert (run / name / "pd_fa_curve.csv").is_file()
    markdown = (run / "results.md").read_text()
    assert markdown.startswith(f"**Checkpoint:** {tmp_path / 'last.ckpt'}, trained on ")
    assert "nudt_sirst/standard, fraction 0.25" in markdown.splitlines()[0]
    assert markdown.count("**Protocol:** ") == 2 and markdown.count("\n| IoU (%) |") == 2
    assert markdown.index("## nudt_sirst") < markdown.index("**Protocol:** nudt_sirst / irsam")
    assert markdown.index("## nuaa_sirst") < markdown.index("**Protocol:** nuaa_sirst / irsam")
    assert not (run / "per_image.csv").exists()


def test_an_unknown_set_name_lists_the_dataset_configs(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "datasets=[nudt_sirst,nudt]")
    with pytest.raises(ConfigError, match=r"no dataset config \['nudt'\]; available: .*nudt_sirst"):
        evaluate(cfg)
    (tmp_path / "twice").mkdir()
    cfg = _config(tmp_path / "twice", "datasets=[nudt_sirst,nudt_sirst]")
    with pytest.raises(ConfigError, match=r"names \['nudt_sirst'\] twice"):
        evaluate(cfg)


def test_dataset_root_cannot_go_with_several_sets(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "datasets=[nudt_sirst,nuaa_sirst]", f"dataset.root={tmp_path}")
    with pytest.raises(ConfigError, match=r"dataset.root=.*Drop dataset.root.*paths.data_dir="):
        evaluate(cfg)


@pytest.mark.slow
def test_evaluate_py_composes_each_set_inside_the_running_app(tmp_path: Path) -> None:
    """The command line: the sets are composed from the running app's own configs, with the
    user's overrides, and a typo in a set name is one line with exit code 2."""
    run = tmp_path / "run"
    common = [
        sys.executable,
        "evaluate.py",
        f"ckpt_path={_checkpoint(tmp_path / 'last.ckpt')}",
        f"paths.data_dir={_data_dir(tmp_path / 'data')}",
        "trainer=cpu",
        "extras.print_config=false",
        "trainer.enable_progress_bar=false",
        "dataset.eval_batch_size=2",
    ]
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}

    def evaluate(*overrides: str) -> subprocess.CompletedProcess:
        """Run evaluate.py with the common overrides."""
        return subprocess.run(
            [*common, *overrides],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )

    result = evaluate(f"hydra.run.dir={run}", "datasets=[nuaa_sirst,nudt_sirst]")
    assert result.returncode == 0, result.stderr[-3000:]
    stored = json.loads((run / "results.json").read_text())
    assert {name: one["images"] for name, one in stored["sets"].items()} == {
        "nuaa_sirst": 2,
        "nudt_sirst": 3,
    }
    result = evaluate(f"hydra.run.dir={tmp_path / 'typo'}", "datasets=[nuaa]")
    assert result.returncode == 2
    assert "no dataset config ['nuaa']; available:" in result.stderr.strip().splitlines()[-1]
