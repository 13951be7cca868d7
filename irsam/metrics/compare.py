# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Several evaluation results side by side as one Markdown table (the table a paper needs).

Rows are runs, columns are ``<dataset> / <protocol>`` groups of metrics. A column only ever holds
numbers measured under one protocol (docs/protocols.md) with one set of metric rules
(docs/metrics.md): runs on the same dataset under different protocols get different column
groups, and runs whose metric rules or test-set sizes differ within a group are refused unless
``allow_mixed=True``, which marks the odd cells and lists the differences under the table.

:func:`matrix_markdown` is the train × test matrix of transfer studies: rows are checkpoints
with their training set, columns test sets, cells one metric, under the same column rules.

Input: the ``results.json`` of ``evaluate.py`` or ``train.py``: ``dataset``, ``metrics``
(``test/IoU`` ... as fractions / raw ratios), and when present ``protocol``
(:func:`irsam.data.protocols.protocol_record`), ``metric_rules``
(:func:`irsam.metrics.report.metric_rules`) or ``metric_options`` and ``trained_on``; or a
multi-set file, ``{"checkpoint", "trained_on", "sets": {name: <such results>}}``. The command
line is :func:`irsam.tasks.compare.main` (``irsam-compare``).
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


def load_results(
    paths: Sequence[str | os.PathLike], labels: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Read ``results.json`` files; a run's label defaults to its folder name. A multi-set file
    (``evaluate.py datasets=[...]``) gives one run per set, each with the file's ``checkpoint``,
    ``trained_on``, label and path.

    Arguments:
      paths (Sequence[str | PathLike]): results.json files, or folders holding one.
      labels (Sequence[str] | None): a label per path (None: the folder names).
    Returns:
      list[dict[str, Any]]: the parsed results, each with ``"_label"`` and ``"_path"`` added
      (and ``"_set"``, the set name, for the runs of a multi-set file).
    Raises:
      CompareError: ``labels`` of another length than ``paths``.
      MissingFileError: a path has no results.json (named in the message).
      ResultsFileError: a file is not JSON, or holds neither a ``metrics`` mapping nor a
        ``sets`` mapping of them (named in the message).
    """
    if labels is not None and len(labels) != len(paths):
        raise CompareError(
            f"--labels gives {len(labels)} labels for {len(paths)} results files: give one "
            "label per file"
        )
    runs = []
    for number, item in enumerate(paths):
        path = Path(item)
        if path.is_dir():
            path = path / "results.json"
        if not path.is_file():
            raise MissingFileError(f"{path}: no results.json (give a file or a run folder)")
        data = _read_results(path)
        label = labels[number] if labels is not None else data.get("_label", path.parent.name)
        sets = data.get("sets")
        parts = [(None, data)] if sets is None else list(sets.items())
        for name, part in parts:
            run = dict(part)
            if name is not None:
                run.update(_set=name, checkpoint=data.get("checkpoint"))
                run.setdefault("trained_on", data.get("trained_on"))
            run.update(_label=label, _path=str(path))
            runs.append(run)
    return runs


def _read_results(path: Path) -> dict[str, Any]:
    """The parsed ``results.json`` at ``path``; :class:`ResultsFileError` when it is not one."""
    hint = "give the results.json that evaluate.py or train.py writes in its run folder"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ResultsFileError(f"{path} is not a JSON file ({error}): {hint}.") from error
    sets = data.get("sets") if isinstance(data, dict) else None
    if isinstance(sets, dict) and sets:
        if all(isinstance(s, dict) and isinstance(s.get("metrics"), dict) for s in sets.values()):
            return data
        raise ResultsFileError(f'{path}: a set of "sets" has no "metrics" mapping: {hint}.')
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


def metric_rule_values(run: Mapping[str, Any]) -> dict[str, Any]:
    """The metric rules that numbers sharing a column must agree on.

    Arguments:
      run (Mapping[str, Any]): a parsed results file.
    Returns:
      dict[str, Any]: the :data:`RULE_KEYS` entries of its ``metric_rules`` (or, for older
      files, ``metric_options``), JSON-comparable.
    """
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


def _groups(runs: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], list[int]]:
    """Indices of the runs of each ``(dataset, protocol)`` column group, in run order."""
    groups: dict[tuple[str, str], list[int]] = {}
    for index, run in enumerate(runs):
        groups.setdefault(_group(run), []).append(index)
    return groups


def _check_groups(
    runs: Sequence[Mapping[str, Any]],
    groups: Mapping[tuple[str, str], list[int]],
    names: Sequence[str],
    allow_mixed: bool,
) -> tuple[set[int], list[str]]:
    """The runs to mark and the notes of a table; :class:`MixedProtocolError` for runs of one
    column group that differ in metric rules or test-set size, or share a row, unless
    ``allow_mixed``."""
    notes: list[str] = []
    flagged: set[int] = set()
    for (dataset, protocol), members in groups.items():
        reference = members[0]
        for index in members[1:]:
            problems = []
            rules, reference_rules = (metric_rule_values(runs[i]) for i in (index, reference))
            if rules != reference_rules:
                problems.append(f"metric rules {rules} vs {reference_rules}")
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
    return flagged, notes


def _cell(
    runs: Sequence[Mapping[str, Any]], index: int | None, metric: str, flagged: set[int]
) -> str:
    """A table cell: run ``index``'s metric (marked ``†`` when flagged); empty without a run."""
    if index is None:
        return ""
    return _format(_metric(runs[index], metric), metric) + (" †" if index in flagged else "")


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
    groups = _groups(runs)
    flagged, notes = _check_groups(runs, groups, names, allow_mixed)
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
            cells.extend(_cell(runs, index, metric, flagged) for metric in metrics)
        lines.append("| " + " | ".join(cells) + " |")
    legend = _legend(runs, groups)
    return "\n".join(lines + [""] + legend + ([""] + notes if notes else [])) + "\n"


def _legend(
    runs: Sequence[Mapping[str, Any]], groups: Mapping[tuple[str, str], list[int]]
) -> list[str]:
    """One line per column group: its test-set size, metric rules and split source."""
    legend = []
    for dataset, protocol in sorted(groups):
        run = runs[groups[(dataset, protocol)][0]]
        size = _test_size(run)
        record = run.get("protocol") if isinstance(run.get("protocol"), Mapping) else {}
        source = f"; {record['source']}" if record.get("source") else ""
        legend.append(
            f"* {dataset}/{protocol}: {size if size is not None else '?'} test images, rules "
            f"{metric_rule_values(run) or 'not recorded'}{source}"
        )
    return legend


def training_label(trained_on: Mapping[str, Any] | None) -> str:
    """The training set of a results file in a few words.

    Arguments:
      trained_on (Mapping[str, Any] | None): ``results.json`` ``trained_on`` (``dataset``,
        ``protocol``, ``train_fraction`` / ``train_count`` under a label budget, and
        ``copy_paste_p``).
    Returns:
      str: e.g. ``nudt_sirst/standard, fraction 0.25``, ``nuaa_sirst/irsam, 40 images`` or
      ``nudt_sirst/irsam, copy-paste 0.5``;
      ``not recorded`` when unknown.
    """
    if not trained_on or trained_on.get("dataset") is None:
        return "not recorded"
    label = f"{trained_on['dataset']}/{trained_on.get('protocol') or 'unknown'}"
    if trained_on.get("train_fraction") is not None:
        label += f", fraction {trained_on['train_fraction']:g}"
    if trained_on.get("train_count") is not None:
        label += f", {trained_on['train_count']} images"
    if trained_on.get("copy_paste_p"):
        label += f", copy-paste {trained_on['copy_paste_p']:g}"
    return label


def matrix_markdown(
    runs: Sequence[Mapping[str, Any]], metric: str = "IoU", allow_mixed: bool = False
) -> str:
    """The train × test matrix: one row per results file (checkpoint and its training set), one
    column per test set (dataset/protocol), one metric in the cells.

    Arguments:
      runs (Sequence[Mapping]): parsed results (see :func:`load_results`: a multi-set file
        gives one run per set, all with its ``_path``); the runs of one file form one row,
        labelled by its ``_label`` (the run folder; the folder path when two files share it).
      metric (str): metric key (``IoU``, ``nIoU``, ``Pd``, ``Fa`` ...) in its
        :func:`~irsam.metrics.report.table_unit`.
      allow_mixed (bool): as in :func:`compare_markdown`.
    Returns:
      str: the Markdown matrix, the protocol legend and any notes.
    Raises:
      CompareError: no runs.
      MixedProtocolError: as in :func:`compare_markdown`.
    """
    if not runs:
        raise CompareError("compare needs at least one results.json")
    keys = [str(run.get("_path", run.get("_label", i))) for i, run in enumerate(runs)]
    rows: dict[str, list[int]] = {}
    for index, key in enumerate(keys):
        rows.setdefault(key, []).append(index)
    labels = {key: str(runs[members[0]].get("_label", key)) for key, members in rows.items()}
    shared = {label for label in labels.values() if list(labels.values()).count(label) > 1}
    for key, label in labels.items():
        if label in shared:
            labels[key] = str(Path(key).parent) if key.endswith("results.json") else key
    groups = _groups(runs)
    flagged, notes = _check_groups(runs, groups, [labels[key] for key in keys], allow_mixed)
    ordered = sorted(groups)
    unit = table_unit(metric)[1]
    header = ["Run", "Trained on"] + [f"{d}/{p} {metric} ({unit})" for d, p in ordered]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, members in rows.items():
        cells = [labels[key], training_label(runs[members[0]].get("trained_on"))]
        by_group = {_group(runs[index]): index for index in members}
        for group in ordered:
            cells.append(_cell(runs, by_group.get(group), metric, flagged))
        lines.append("| " + " | ".join(cells) + " |")
    legend = _legend(runs, groups)
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
    "matrix_markdown",
    "metric_rule_values",
    "split_table",
    "training_label",
]
