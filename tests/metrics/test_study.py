# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""irsam.metrics.study and irsam-study: a sweep folder as mean ± std per configuration and x."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from irsam.metrics.compare import CompareError, MixedProtocolError
from irsam.metrics.study import collect_runs, study_markdown, summarise, write_study
from irsam.tasks.study import main as study_main
from irsam.utils.errors import MissingFileError

RULES = {"threshold": 0.0, "fa_rule": "component"}


def _job(
    sweep: Path,
    number: int,
    overrides: list[str],
    iou: float,
    dataset: str = "nudt_sirst",
    rules: dict | None = None,
) -> Path:
    """Write one job folder: .hydra/overrides.yaml and a train results.json."""
    folder = sweep / str(number)
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(
        "".join(f"- {item}\n" for item in overrides), encoding="utf-8"
    )
    results = {
        "dataset": dataset,
        "protocol": {"dataset": dataset, "protocol": "irsam", "sizes": {"test": 266}},
        "metrics": {"test/IoU": iou, "test/Pd": 0.5},
        "metric_rules": rules or RULES,
    }
    (folder / "results.json").write_text(json.dumps(results), encoding="utf-8")
    return folder


def _label_budget_sweep(sweep: Path) -> None:
    """Two fractions × two seeds × copy-paste off/on, plus an unfinished job."""
    number = 0
    values = {  # (p, fraction) -> IoU of seeds 1 and 2
        ("0.0", "0.1"): (0.10, 0.14),
        ("0.0", "1.0"): (0.30, 0.34),
        ("0.5", "0.1"): (0.20, 0.20),
        ("0.5", "1.0"): (0.40, 0.44),
    }
    for (p, fraction), ious in values.items():
        for seed, iou in zip((1, 2), ious, strict=True):
            _job(
                sweep,
                number,
                [
                    "experiment=nudt_cpu_study",
                    f"dataset.train_fraction={fraction}",
                    f"seed={seed}",
                    f"dataset.augmentation.copy_paste.p={p}",
                ],
                iou,
            )
            number += 1
    (sweep / str(number) / ".hydra").mkdir(parents=True)  # a job killed before its test


def test_summary_groups_configurations_and_averages_seeds(tmp_path: Path) -> None:
    _label_budget_sweep(tmp_path)
    runs = collect_runs(tmp_path)
    assert len(runs) == 8
    summary = summarise(runs)
    assert list(summary.cells) == [
        "dataset.augmentation.copy_paste.p=0.0",
        "dataset.augmentation.copy_paste.p=0.5",
    ]
    assert summary.x_values == [0.1, 1.0]
    cell = summary.cells["dataset.augmentation.copy_paste.p=0.0"][0.1]
    assert cell.values == pytest.approx([10.0, 14.0])
    assert cell.mean == pytest.approx(12.0)
    assert cell.std == pytest.approx(math.sqrt(8.0))  # sample std of 10 and 14
    assert summary.cells["dataset.augmentation.copy_paste.p=0.5"][0.1].std == 0.0
    table = study_markdown(summary)
    assert "| dataset.augmentation.copy_paste.p=0.0 | nudt_sirst/irsam (266 images) | " in table
    assert "12.00 ± 2.83 (2) | 32.00 ± 2.83 (2) |" in table
    assert "| 20.00 ± 0.00 (2) | 42.00 ± 2.83 (2) |" in table


def test_several_sweeps_are_summarised_together(tmp_path: Path) -> None:
    """A later sweep that adds a seed joins the cells of the first one."""
    _label_budget_sweep(tmp_path / "first")
    _job(
        tmp_path / "extra",
        0,
        [
            "experiment=nudt_cpu_study",
            "dataset.train_fraction=0.1",
            "seed=3",
            "dataset.augmentation.copy_paste.p=0.0",
        ],
        0.18,
    )
    summary = summarise(collect_runs(tmp_path / "first", tmp_path / "extra"))
    cell = summary.cells["dataset.augmentation.copy_paste.p=0.0"][0.1]
    assert cell.values == pytest.approx([10.0, 14.0, 18.0]) and cell.std == pytest.approx(4.0)
    assert len(summary.cells["dataset.augmentation.copy_paste.p=0.5"][0.1].values) == 2


def test_write_study_files(tmp_path: Path) -> None:
    _label_budget_sweep(tmp_path)
    written = write_study(summarise(collect_runs(tmp_path)), tmp_path)
    assert [p.name for p in written] == ["study.md", "study.csv", "study.png"]
    assert (tmp_path / "study.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with (tmp_path / "study.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4
    assert rows[1]["dataset.train_fraction"] == "1"
    assert rows[1]["values"] == "30.0000;34.0000"
    assert float(rows[1]["mean"]) == pytest.approx(32.0)


def test_another_x_key_and_metric(tmp_path: Path) -> None:
    _label_budget_sweep(tmp_path)
    summary = summarise(collect_runs(tmp_path), x_key="dataset.augmentation.copy_paste.p")
    assert list(summary.cells) == ["dataset.train_fraction=0.1", "dataset.train_fraction=1.0"]
    assert summary.cells["dataset.train_fraction=1.0"][0.5].mean == pytest.approx(42.0)
    pd = summarise(collect_runs(tmp_path), metric="Pd")
    assert pd.cells["dataset.augmentation.copy_paste.p=0.0"][0.1].mean == pytest.approx(50.0)


def test_mixed_rules_and_test_sets_are_refused(tmp_path: Path) -> None:
    _job(tmp_path, 0, ["dataset.train_fraction=0.1", "seed=1"], 0.1)
    _job(tmp_path, 1, ["dataset.train_fraction=0.1", "seed=2"], 0.1, rules={"fa_rule": "x"})
    with pytest.raises(MixedProtocolError, match="metric rules"):
        summarise(collect_runs(tmp_path))
    other = tmp_path / "sets"
    _job(other, 0, ["dataset.train_fraction=0.1", "seed=1"], 0.1)
    _job(other, 1, ["dataset.train_fraction=0.1", "seed=2"], 0.1, dataset="nuaa_sirst")
    with pytest.raises(MixedProtocolError, match="share their test set"):
        summarise(collect_runs(other))


def test_bad_sweeps_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match="no finished job"):
        collect_runs(tmp_path)
    _job(tmp_path, 0, ["seed=1"], 0.1)
    with pytest.raises(CompareError, match="dataset.train_fraction is not among"):
        summarise(collect_runs(tmp_path))
    with pytest.raises(CompareError, match="no test/nIoU; available: IoU, Pd"):
        summarise(collect_runs(tmp_path), x_key="seed", metric="nIoU", seed_keys=())


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _label_budget_sweep(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    assert study_main([str(tmp_path), "--out", str(out), "--no-plot"]) == 0
    assert "12.00 ± 2.83 (2)" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["study.csv", "study.md"]
    assert study_main([str(tmp_path / "missing")]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("irsam-study: error: ")
