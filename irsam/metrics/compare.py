# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Several evaluation results side by side as one Markdown table (the table a paper needs).

Rows are runs, columns are ``<dataset> / <protocol>`` groups of metrics. A column only ever holds
numbers measured under one protocol (docs/protocols.md) with one set of metric rules
(docs/metrics.md): runs on the same dataset under different protocols get different column
groups, and runs whose metric rules or test-set sizes differ within a group are refused unless
``allow_mixed=True``, which marks the odd cells and lists the differences under the table.

Input: the ``results.json`` of ``evaluate.py``: ``dataset``, ``metrics`` (``test/IoU`` ... as
fractions / raw ratios), and when present ``protocol``
(:func:`irsam.data.protocols.protocol_record`), ``metric_rules``
(:func:`irsam.metrics.report.metric_rules`) or ``metric_options``. The command line is
:func:`irsam.tasks.compare.main` (``irsam-compare``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from irsam.metrics.report import TABLE_METRICS, table_unit
from irsam.utils.errors import MissingFileError, UserError

RULE_KEYS: tuple[str, ...] = (
    "threshold",
    "fa_rule",
    "fa_normaliser",
    "niou_empty_policy",
    "empty_policy",
    "resolution",
    "opdc",
    "shooting_radii",
)
"""Metric-rule entries that must agree within a column."""


class CompareError(UserError, ValueError):
    """The runs given to a comparison cannot be read or put side by side."""


class ResultsFileError(CompareError):
    """A file given as a results file is not JSON, or not the ``results.json`` of ``evaluate.py``
    (the message names the file)."""


class MixedProtocolError(CompareError):
    """Runs in one column were measured under different rules or test sets."""


def load_results(paths: Sequence[str | os.PathLike]) -> list[dict[str, Any]]:
    """Read ``results.json`` files; a run's label defaults to its folder name.

    Arguments:
      paths (Sequence[str | PathLike]): results.json files, or folders holding one.
    Returns:
      list[dict[str, Any]]: the parsed results, each with ``"_label"`` and ``"_path"`` added.
    Raises:
      MissingFileError: a path has no results.json (named in the message).
      ResultsFileError: a file is not JSON, or holds no ``metrics`` mapping (named in the
        message).
    """
    runs = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            path = path / "results.json"
        if not path.is_file():
            raise MissingFileError(f"{path}: no results.json (give a file or a run folder)")
        data = _read_results(path)
        data.setdefault("_label", path.parent.name)
        data["_path"] = str(path)
        runs.append(data)
    return runs


def _read_results(path: Path) -> dict[str, Any]:
    """The parsed ``results.json`` at ``path``; :class:`ResultsFileError` when it is not one."""
    hint = "give the results.json that evaluate.py writes in its run folder"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ResultsFileError(f"{path} is not a JSON file ({error}): {hint}.") from error
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
        raise ResultsFileError(f'{path} is not a results file (no "metrics" mapping): {hint}.')
    return data


def _metric(run: Mapping[str, Any], key: str) -> float:
    """A metric of a run (``test/<key>`` or ``<key>``), NaN when absent."""
    metrics = run.get("metrics") or {}
    for name in (f"test/{key}", key):
        if name in metrics:
            return float(metrics[name])
    return math.nan


def _group(run: Mapping[str, Any]) -> tuple[str, str]:
    """``(dataset, protocol)`` of a run; protocol ``"unknown"`` when not recorded."""
    record = run.get("protocol")
    if isinstance(record, Mapping):
        return str(record.get("dataset", run.get("dataset"))), str(record.get("protocol"))
    return str(run.get("dataset", "unknown")), str(record or "unknown")


def _rules(run: Mapping[str, Any]) -> dict[str, Any]:
    """The metric rules a column must agree on (JSON-comparable)."""
    rules = run.get("metric_rules") or run.get("metric_options") or {}
    return {key: rules[key] for key in RULE_KEYS if key in rules}


def _test_size(run: Mapping[str, Any]) -> int | None:
    """Number of test images of a run, when recorded."""
    record = run.get("protocol")
    if isinstance(record, Mapping) and record.get("sizes"):
        return int(record["sizes"]["test"])
    return int(run["images"]) if run.get("images") is not None else None


def _format(value: float, name: str) -> str:
    """A cell: the value of metric ``name`` in its table unit with two decimals ("-" for NaN)."""
    return "-" if math.isnan(value) else f"{value * table_unit(name)[0]:.2f}"


def compare_markdown(
    runs: Sequence[Mapping[str, Any]],
    labels: Sequence[str] | None = None,
    metrics: Sequence[str] = TABLE_METRICS,
    allow_mixed: bool = False,
) -> str:
    """Markdown table of several runs: one row per label, one column group per dataset/protocol.

    Arguments:
      runs (Sequence[Mapping]): parsed results (see :func:`load_results`).
      labels (Sequence[str] | None): row label of each run (runs sharing a label share a row,
        e.g. one model evaluated on several datasets); None uses each run's ``_label``.
      metrics (Sequence[str]): metric keys, each in its
        :func:`~irsam.metrics.report.table_unit` (``Fa*`` in 10⁻⁶, the others in %).
      allow_mixed (bool): False: raise :class:`MixedProtocolError` when runs of one column group
        differ in metric rules or test-set size, or when one label has two runs in a group.
        True: print them, mark the cells with ``†`` and list the differences.
    Returns:
      str: the Markdown table, the protocol legend and any notes.
    Raises:
      CompareError: no runs, or ``labels`` of the wrong length.
      MixedProtocolError: see ``allow_mixed``.
    """
    if not runs:
        raise CompareError("compare needs at least one results.json")
    names = (
        list(labels)
        if labels is not None
        else [str(r.get("_label", i)) for i, r in enumerate(runs)]
    )
    if len(names) != len(runs):
        raise CompareError(
            f"--labels gives {len(names)} labels for {len(runs)} results files: give one label "
            "per file"
        )
    groups: dict[tuple[str, str], list[int]] = {}
    for index, run in enumerate(runs):
        groups.setdefault(_group(run), []).append(index)
    notes: list[str] = []
    flagged: set[int] = set()
    for (dataset, protocol), members in groups.items():
        reference = members[0]
        for index in members[1:]:
            problems = []
            if _rules(runs[index]) != _rules(runs[reference]):
                problems.append(f"metric rules {_rules(runs[index])} vs {_rules(runs[reference])}")
            if _test_size(runs[index]) != _test_size(runs[reference]):
                problems.append(
                    f"{_test_size(runs[index])} vs {_test_size(runs[reference])} test images"
                )
            if names[index] in [names[m] for m in members if m < index]:
                problems.append("the same label twice")
            if not problems:
                continue
            message = (
                f"{dataset} / {protocol}: run {names[index]!r} differs from "
                f"{names[reference]!r}: {'; '.join(problems)}"
            )
            if not allow_mixed:
                raise MixedProtocolError(
                    f"{message}. Numbers measured differently cannot share a column; "
                    "re-evaluate under the same rules, or pass allow_mixed=True to print them "
                    "marked."
                )
            flagged.add(index)
            notes.append(f"† {message}")
        if protocol == "unknown":
            notes.append(
                f"{dataset}: protocol not recorded in {len(members)} run(s); their numbers may "
                "come from any split"
            )
    ordered = sorted(groups)
    rows: dict[str, dict[tuple[str, str], int]] = {}
    for key, members in groups.items():
        for index in members:
            rows.setdefault(names[index], {})[key] = index
    header = ["Method"]
    for dataset, protocol in ordered:
        for metric in metrics:
            header.append(f"{dataset}/{protocol} {metric} ({table_unit(metric)[1]})")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, cells_by_group in rows.items():
        cells = [label]
        for group in ordered:
            index = cells_by_group.get(group)
            for metric in metrics:
                if index is None:
                    cells.append("")
                    continue
                cell = _format(_metric(runs[index], metric), metric)
                cells.append(cell + (" †" if index in flagged else ""))
        lines.append("| " + " | ".join(cells) + " |")
    legend = []
    for dataset, protocol in ordered:
        run = runs[groups[(dataset, protocol)][0]]
        size = _test_size(run)
        record = run.get("protocol") if isinstance(run.get("protocol"), Mapping) else {}
        source = f"; {record['source']}" if record.get("source") else ""
        legend.append(
            f"* {dataset}/{protocol}: {size if size is not None else '?'} test images, rules "
            f"{_rules(run) or 'not recorded'}{source}"
        )
    return "\n".join(lines + [""] + legend + ([""] + notes if notes else [])) + "\n"


def split_table(
    results: Mapping[str, Mapping[str, Any]],
    sizes: Mapping[str, int] | None = None,
    metrics: Sequence[str] = TABLE_METRICS,
) -> str:
    """One run scored on several test sets (SIRST3: each member and the union) as one table.

    Arguments:
      results (Mapping[str, Mapping]): test-set name → metrics (``IoU`` or ``test/IoU`` ... as
        fractions / raw ratios), in row order.
      sizes (Mapping[str, int] | None): test-set name → number of test images (a column).
      metrics (Sequence[str]): metric keys, each in its
        :func:`~irsam.metrics.report.table_unit`.
    Returns:
      str: Markdown table, one row per test set.
    """
    header = ["test set"] + (["images"] if sizes else [])
    header += [f"{m} ({table_unit(m)[1]})" for m in metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, values in results.items():
        cells = [name] + ([str(sizes.get(name, ""))] if sizes else [])
        cells += [_format(_metric({"metrics": values}, m), m) for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


__all__ = [
    "RULE_KEYS",
    "CompareError",
    "MixedProtocolError",
    "ResultsFileError",
    "compare_markdown",
    "load_results",
    "split_table",
]
