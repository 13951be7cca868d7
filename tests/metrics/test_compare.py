# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""irsam.metrics.compare and irsam-compare: runs side by side, never two protocols or rule sets
in one column."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from irsam.metrics.compare import MixedProtocolError, compare_markdown, load_results

RULES = {"threshold": "logit > 0.0", "fa_rule": "component", "fa_normaliser": "true_pixels"}


def run(dataset: str, protocol: str, test: int, iou: float, **rules: object) -> dict:
    """A results.json-like dict."""
    return {
        "dataset": dataset,
        "metrics": {"test/IoU": iou, "test/nIoU": iou - 0.01, "test/Pd": 0.9, "test/Fa": 2e-5},
        "protocol": {
            "dataset": dataset,
            "protocol": protocol,
            "sizes": {"test": test},
            "source": f"{protocol} lists",
        },
        "metric_rules": dict(RULES, **rules),
    }


def test_protocols_get_separate_columns_and_rows_merge_by_label() -> None:
    runs = [
        run("nudt_sirst", "irsam", 266, 0.75),
        run("nudt_sirst", "standard", 664, 0.70),
        run("nuaa_sirst", "irsam", 86, 0.60),
        run("nudt_sirst", "irsam", 266, 0.80),
    ]
    table = compare_markdown(runs, labels=["A", "A", "A", "B"])
    lines = table.splitlines()
    header = lines[0]
    assert "nudt_sirst/irsam IoU (%)" in header and "nudt_sirst/standard IoU (%)" in header
    assert "nuaa_sirst/irsam Fa (1e-6)" in header
    row_a = next(line for line in lines if line.startswith("| A |"))
    row_b = next(line for line in lines if line.startswith("| B |"))
    assert "75.00" in row_a and "70.00" in row_a and "60.00" in row_a and "20.00" in row_a
    cells_b = [cell.strip() for cell in row_b.strip("|").split("|")]
    assert cells_b.count("80.00") == 1 and cells_b.count("") == 8  # empty cells elsewhere
    assert "* nudt_sirst/standard: 664 test images" in table


def test_mixed_rules_or_sizes_are_refused_unless_allowed() -> None:
    runs = [run("nudt_sirst", "irsam", 266, 0.75), run("nudt_sirst", "irsam", 266, 0.7)]
    runs[1]["metric_rules"]["fa_rule"] = "legacy_area"
    with pytest.raises(MixedProtocolError, match="legacy_area"):
        compare_markdown(runs, labels=["A", "B"])
    table = compare_markdown(runs, labels=["A", "B"], allow_mixed=True)
    assert "70.00 †" in table and "† nudt_sirst / irsam" in table
    sized = [run("nuaa_sirst", "standard", 214, 0.7), run("nuaa_sirst", "standard", 200, 0.7)]
    with pytest.raises(MixedProtocolError, match="214 vs 200|200 vs 214"):
        compare_markdown(sized, labels=["A", "B"])


def test_unknown_protocol_is_flagged_and_files_load(tmp_path: Path) -> None:
    legacy = {"dataset": "nuaa_sirst", "metrics": {"test/IoU": 0.5}, "images": 86}
    folder = tmp_path / "run1"
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps(legacy))
    runs = load_results([folder])
    assert runs[0]["_label"] == "run1"
    table = compare_markdown(runs, metrics=["IoU", "Fa"])
    assert "nuaa_sirst/unknown IoU (%)" in table and "protocol not recorded" in table
    assert "| run1 | 50.00 | - |" in table
    with pytest.raises(FileNotFoundError, match="no results.json"):
        load_results([tmp_path / "missing"])
    with pytest.raises(ValueError, match="at least one"):
        compare_markdown([])


def test_split_table_one_row_per_test_set() -> None:
    from irsam.metrics.compare import split_table

    table = split_table(
        {"nuaa_sirst": {"IoU": 0.7, "Fa": 1e-5}, "union": {"test/IoU": 0.65, "test/Fa": 2e-5}},
        sizes={"nuaa_sirst": 214, "union": 878},
        metrics=["IoU", "Fa"],
    )
    lines = table.splitlines()
    assert lines[0] == "| test set | images | IoU (%) | Fa (1e-6) |"
    assert lines[2] == "| nuaa_sirst | 214 | 70.00 | 10.00 |"
    assert lines[3] == "| union | 878 | 65.00 | 20.00 |"


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from irsam.tasks.compare import main

    paths = []
    for name, fa_rule in (("a", "component"), ("b", "legacy_area")):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(run("nudt_sirst", "irsam", 266, 0.7, fa_rule=fa_rule)))
        paths.append(str(path))
    assert main([paths[0], "--labels", "A"]) == 0
    assert "| A | 70.00 |" in capsys.readouterr().out
    assert main(paths) == 2
    assert "cannot share a column" in capsys.readouterr().err
    assert main([*paths, "--allow-mixed"]) == 0


def test_compare_command_on_files_that_are_not_results(tmp_path: Path, capsys) -> None:
    """irsam-compare on a non-JSON file, on JSON that is no results.json (a list, an oneshot
    metrics.json) and on a missing file: exit code 2 and one line naming the file."""
    from irsam.tasks.compare import main

    good = tmp_path / "good.json"
    good.write_text(json.dumps(run("nudt_sirst", "irsam", 266, 0.7)))
    binary = tmp_path / "model.onnx"
    binary.write_bytes(b"\x08\x07\x12\x00\xff\xfe")
    text = tmp_path / "notes.txt"
    text.write_text("IoU 0.7")
    listing = tmp_path / "list.json"
    listing.write_text("[1, 2]")
    oneshot = tmp_path / "metrics.json"
    oneshot.write_text(json.dumps({"sequences": {"a": {"IoU": 0.5}}}))
    cases = {
        binary: "is not a JSON file",
        text: "is not a JSON file",
        listing: 'no "metrics" mapping',
        oneshot: 'no "metrics" mapping',
        tmp_path / "missing.json": "no results.json",
    }
    for path, words in cases.items():
        assert main([str(good), str(path)]) == 2
        lines = capsys.readouterr().err.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"irsam-compare: error: {path}")
        assert words in lines[0]
    assert main([str(good), "--labels", "A", "B"]) == 2
    assert "2 labels for 1 results files" in capsys.readouterr().err


def trained(dataset: str, protocol: str, **budget: object) -> dict:
    """A results.json ``trained_on``."""
    return {
        "dataset": dataset,
        "split": protocol,
        "protocol": protocol,
        "loader_size": 256,
        **budget,
    }


def _write(folder: Path, data: dict) -> Path:
    """``folder/results.json`` holding ``data``."""
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(data))
    return folder


def _matrix_files(tmp_path: Path) -> list[Path]:
    """A two-set evaluation of a NUDT model on a quarter of its labels, and two training runs on
    NUAA-SIRST (their own test), the second in a folder named like the first."""
    nudt = _write(
        tmp_path / "eval_a",
        {
            "checkpoint": "a.ckpt",
            "trained_on": trained("nudt_sirst", "standard", train_fraction=0.25, copy_paste_p=0.5),
            "sets": {
                "nudt_sirst": run("nudt_sirst", "standard", 664, 0.70),
                "nuaa_sirst": run("nuaa_sirst", "irsam", 86, 0.40),
            },
        },
    )
    first = _write(tmp_path / "x" / "train", dict(run("nuaa_sirst", "irsam", 86, 0.60)))
    second = _write(tmp_path / "y" / "train", dict(run("nuaa_sirst", "irsam", 86, 0.625)))
    for folder in (first, second):
        data = json.loads((folder / "results.json").read_text())
        data["trained_on"] = trained("nuaa_sirst", "irsam")
        (folder / "results.json").write_text(json.dumps(data))
    return [nudt, first, second]


def test_matrix_rows_are_checkpoints_and_columns_test_sets(tmp_path: Path) -> None:
    """One row per results file (same training set: separate rows, labelled by folder), one
    column per test set and protocol, the chosen metric in its table unit."""
    from irsam.metrics.compare import matrix_markdown

    runs = load_results(_matrix_files(tmp_path))
    assert [r.get("_set") for r in runs] == ["nudt_sirst", "nuaa_sirst", None, None]
    lines = matrix_markdown(runs).splitlines()
    assert lines[:5] == [
        "| Run | Trained on | nuaa_sirst/irsam IoU (%) | nudt_sirst/standard IoU (%) |",
        "|---|---|---|---|",
        "| eval_a | nudt_sirst/standard, fraction 0.25, copy-paste 0.5 | 40.00 | 70.00 |",
        f"| {tmp_path / 'x' / 'train'} | nuaa_sirst/irsam | 60.00 |  |",
        f"| {tmp_path / 'y' / 'train'} | nuaa_sirst/irsam | 62.50 |  |",
    ]
    assert any(line.startswith("* nudt_sirst/standard: 664 test images") for line in lines)
    fa = matrix_markdown(runs, metric="Fa").splitlines()
    assert fa[0].endswith("nudt_sirst/standard Fa (1e-6) |") and fa[2].endswith("| 20.00 | 20.00 |")
    table = compare_markdown(runs[:2], metrics=["IoU"])  # a multi-set file: one row
    assert "| eval_a | 40.00 | 70.00 |" in table


def test_matrix_refuses_mixed_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A column whose runs used different Fa rules is refused, as in the comparison table."""
    from irsam.metrics.compare import matrix_markdown
    from irsam.tasks.compare import main

    files = _matrix_files(tmp_path)
    data = json.loads((files[2] / "results.json").read_text())
    data["metric_rules"]["fa_rule"] = "legacy_area"
    (files[2] / "results.json").write_text(json.dumps(data))
    with pytest.raises(MixedProtocolError, match="nuaa_sirst / irsam.*legacy_area"):
        matrix_markdown(load_results(files))
    assert main([*map(str, files), "--matrix", "--metric", "nIoU"]) == 2
    assert "cannot share a column" in capsys.readouterr().err
    assert main([*map(str, files), "--matrix", "--metric", "nIoU", "--allow-mixed"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| Run | Trained on | nuaa_sirst/irsam nIoU (%) |") and "61.50 †" in out
