# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""A Hydra sweep folder as one study: a table and a plot of a metric against one swept value.

A study sweep (``python train.py -m hparams_search=label_budget ...``) leaves one job folder per
run under ``<sweep>/<job number>/``, each with the job's overrides (``.hydra/overrides.yaml``) and
the ``results.json`` that training writes after its test. :func:`collect_runs` reads them;
:func:`summarise` groups the runs into configurations (the overrides that are neither the x value
nor a seed), and aggregates each configuration's metric at each x value over the seeds as
mean ± sample standard deviation. :func:`study_markdown`, :func:`write_study_csv` and
:func:`study_figure` format the summary; :func:`write_study` writes ``study.md``, ``study.csv``
and ``study.png`` into the sweep folder (atomically). The command line is
:func:`irsam.tasks.study.main` (``irsam-study``).

Every run of one study must be measured under one set of metric rules, and the runs of one
configuration on one test set; runs that are not raise
:class:`~irsam.metrics.compare.MixedProtocolError`, as ``irsam-compare`` does.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from irsam.metrics.compare import (
    CompareError,
    MixedProtocolError,
    ResultsFileError,
    metric_rule_values,
)
from irsam.metrics.report import agg_pyplot, save_figure, table_unit
from irsam.utils import atomic_write_bytes
from irsam.utils.errors import MissingFileError
from irsam.utils.extras import missing_extra

SEED_KEYS: tuple[str, ...] = ("seed", "dataset.train_subset_seed")
"""Overrides that repeat a configuration (averaged over) rather than define one."""


@dataclass(frozen=True)
class StudyRun:
    """One finished job of a sweep.

    Attributes:
      folder (Path): the job folder.
      overrides (dict[str, str]): the job's command-line and sweep overrides, ``key -> value``.
      metrics (dict[str, float]): ``results.json`` ``metrics`` (``test/IoU`` ... as fractions).
      test_set (str): ``<dataset>/<protocol> (<n> images)`` of the test split.
      rules (dict[str, Any]): the metric rules in force.
    """

    folder: Path
    overrides: dict[str, str]
    metrics: dict[str, float]
    test_set: str
    rules: dict[str, Any] = field(default_factory=dict)


@dataclass
class StudyCell:
    """A configuration's metric at one x value, over its seeds.

    Attributes:
      values (list[float]): one value per run, in the metric's table unit (% or 10⁻⁶).
      folders (list[str]): the job folder of each value.
    """

    values: list[float] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)

    @property
    def mean(self) -> float:
        """Mean of the values."""
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        """Sample standard deviation (n - 1); NaN for a single run."""
        return statistics.stdev(self.values) if len(self.values) > 1 else math.nan


@dataclass
class StudySummary:
    """A study's table: configuration -> x value -> :class:`StudyCell`.

    Attributes:
      x_key (str): the swept key on the x axis, e.g. ``dataset.train_fraction``.
      metric (str): the metric, e.g. ``IoU``.
      unit (str): its table unit (``%`` or ``1e-6``).
      test_sets (dict[str, str]): the test set of each configuration.
      cells (dict[str, dict[float, StudyCell]]): per configuration label, per x value.
    """

    x_key: str
    metric: str
    unit: str
    test_sets: dict[str, str]
    cells: dict[str, dict[float, StudyCell]]

    @property
    def x_values(self) -> list[float]:
        """Every x value of the study, ascending."""
        return sorted({x for row in self.cells.values() for x in row})


def _read_overrides(path: Path) -> dict[str, str]:
    """``key -> value`` of a job's ``.hydra/overrides.yaml`` (``+``/``~`` prefixes dropped)."""
    entries = OmegaConf.to_container(OmegaConf.load(path)) or []
    overrides = {}
    for entry in entries:
        key, _, value = str(entry).partition("=")
        overrides[key.lstrip("+~")] = value
    return overrides


def collect_runs(*sweeps: str | os.PathLike) -> list[StudyRun]:
    """Every finished job of one or several sweep folders: those with ``results.json`` and
    overrides (several folders: e.g. a sweep and a later one that adds seeds).

    Arguments:
      sweeps (str | PathLike): sweep folders (``logs/<task>/multiruns/<time>``) or folders
        above job folders.
    Returns:
      list[StudyRun]: the jobs, ordered by sweep, then by folder.
    Raises:
      MissingFileError: a sweep is not a folder, or the sweeps hold no finished job.
      ResultsFileError: a ``results.json`` is not JSON or has no ``metrics`` (named).
    """
    found = []
    for sweep in sweeps:
        root = Path(sweep)
        if not root.is_dir():
            raise MissingFileError(f"{root}: not a folder (give the sweep folder of train.py -m)")
        found.extend(sorted(root.rglob("results.json")))
    runs = []
    for results in found:
        overrides = results.parent / ".hydra" / "overrides.yaml"
        if not overrides.is_file():
            continue
        try:
            data = json.loads(results.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ResultsFileError(f"{results} is not a JSON file ({error})") from error
        if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
            raise ResultsFileError(f'{results} is not a results file (no "metrics" mapping)')
        runs.append(
            StudyRun(
                folder=results.parent,
                overrides=_read_overrides(overrides),
                metrics={key: float(value) for key, value in data["metrics"].items()},
                test_set=_test_set(data),
                rules=metric_rule_values(data),
            )
        )
    if not runs:
        raise MissingFileError(
            f"{', '.join(str(sweep) for sweep in sweeps)}: no finished job (a job folder holds "
            "results.json and .hydra/overrides.yaml; train.py writes results.json after its "
            "test: keep test=true)"
        )
    return runs


def _test_set(results: Mapping[str, Any]) -> str:
    """``<dataset>/<protocol> (<n> images)`` of a results file."""
    record = results.get("protocol")
    record = record if isinstance(record, Mapping) else {}
    dataset = record.get("dataset", results.get("dataset", "unknown"))
    sizes = record.get("sizes") or {}
    return f"{dataset}/{record.get('protocol', 'unknown')} ({sizes.get('test', '?')} images)"


def summarise(
    runs: Sequence[StudyRun],
    x_key: str = "dataset.train_fraction",
    metric: str = "IoU",
    seed_keys: Sequence[str] = SEED_KEYS,
) -> StudySummary:
    """Group runs into configurations and aggregate ``metric`` at each x value over seeds.

    A configuration is what the runs' overrides say besides ``x_key`` and ``seed_keys``; only the
    overrides that differ between runs name it (``dataset.augmentation.copy_paste.p=0.5``), and
    a study with one configuration calls it ``all runs``.

    Arguments:
      runs (Sequence[StudyRun]): from :func:`collect_runs`.
      x_key (str): the override on the x axis (a number in every run).
      metric (str): a metric key without ``test/`` (``IoU``, ``nIoU``, ``Pd``, ``Fa``, ...).
      seed_keys (Sequence[str]): overrides averaged over.
    Returns:
      StudySummary: the table.
    Raises:
      CompareError: a run lacks ``x_key`` or ``metric``, or ``x_key`` is not a number.
      MixedProtocolError: the runs were scored under different metric rules, or the runs of one
        configuration on different test sets.
    """
    first = runs[0]
    for run in runs[1:]:
        if run.rules != first.rules:
            raise MixedProtocolError(
                f"{run.folder} was scored with metric rules {run.rules}, {first.folder} with "
                f"{first.rules}: one study needs one set of rules (re-evaluate under the same "
                "metrics.* options, or summarise the sweeps apart)"
            )
    ignored = {x_key, *seed_keys}
    keys = sorted({k for run in runs for k in run.overrides if k not in ignored})
    varying = [k for k in keys if len({run.overrides.get(k) for run in runs}) > 1]
    scale, unit = table_unit(metric)
    cells: dict[str, dict[float, StudyCell]] = {}
    test_sets: dict[str, str] = {}
    for run in runs:
        if x_key not in run.overrides:
            raise CompareError(
                f"{run.folder}: {x_key} is not among the job's overrides; give the swept key "
                f"with --x (this job set {sorted(run.overrides)})"
            )
        try:
            x_value = float(run.overrides[x_key])
        except ValueError as error:
            raise CompareError(
                f"{run.folder}: {x_key}={run.overrides[x_key]} is not a number; the x axis "
                "needs a numeric sweep"
            ) from error
        name = f"test/{metric}"
        if name not in run.metrics:
            raise CompareError(
                f"{run.folder}/results.json has no {name}; available: "
                f"{', '.join(sorted(k.removeprefix('test/') for k in run.metrics))}"
            )
        label = " ".join(f"{k}={run.overrides.get(k, '-')}" for k in varying) or "all runs"
        known = test_sets.setdefault(label, run.test_set)
        if known != run.test_set:
            raise MixedProtocolError(
                f"{run.folder} was scored on {run.test_set}, other runs of {label!r} on {known}: "
                "the runs of one configuration must share their test set"
            )
        cell = cells.setdefault(label, {}).setdefault(x_value, StudyCell())
        cell.values.append(run.metrics[name] * scale)
        cell.folders.append(str(run.folder))
    return StudySummary(
        x_key, metric, unit, dict(sorted(test_sets.items())), dict(sorted(cells.items()))
    )


def _cell_text(cell: StudyCell | None) -> str:
    """``mean ± std (n)`` with two decimals; a single run has no ±; empty when absent."""
    if cell is None:
        return ""
    if len(cell.values) == 1:
        return f"{cell.mean:.2f} (1)"
    return f"{cell.mean:.2f} ± {cell.std:.2f} ({len(cell.values)})"


def study_markdown(summary: StudySummary) -> str:
    """The study as Markdown: one row per configuration, one column per x value.

    Arguments:
      summary (StudySummary): from :func:`summarise`.
    Returns:
      str: a header line naming the test set and metric, then the table; each cell is
      ``mean ± sample std (number of seeds)``.
    """
    xs = summary.x_values
    header = ["configuration", "test set"] + [f"{summary.x_key}={x:g}" for x in xs]
    lines = [
        f"test {summary.metric} ({summary.unit}): mean ± sample std (runs)",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for label, row in summary.cells.items():
        cells = [label, summary.test_sets[label]] + [_cell_text(row.get(x)) for x in xs]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_study_csv(summary: StudySummary, path: str | os.PathLike) -> Path:
    """The study in long form: one row per configuration and x value (atomic write).

    Arguments:
      summary (StudySummary): from :func:`summarise`.
      path (str | PathLike): the CSV file.
    Returns:
      Path: ``path``. Columns: configuration, test set, x key, runs, mean, std, values
      (``;``-joined, in the metric's table unit).
    """
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["configuration", "test set", summary.x_key, "runs", "mean", "std", "values"])
    for label, row in summary.cells.items():
        for x, cell in sorted(row.items()):
            values = ";".join(f"{v:.4f}" for v in cell.values)
            writer.writerow(
                [
                    label,
                    summary.test_sets[label],
                    f"{x:g}",
                    len(cell.values),
                    f"{cell.mean:.4f}",
                    f"{cell.std:.4f}",
                    values,
                ]
            )
    atomic_write_bytes(path, text.getvalue().encode("utf-8"), what="study table")
    return Path(path)


def study_figure(summary: StudySummary) -> Any:
    """Metric against x, one line per configuration with ± one standard deviation as error bars
    (log x axis when the x values span more than a decade).

    Arguments:
      summary (StudySummary): from :func:`summarise`.
    Returns:
      matplotlib Figure.
    Raises:
      MissingExtraError: matplotlib is not installed (the ``plots`` extra).
    """
    plt = agg_pyplot()
    if plt is None:
        raise missing_extra("the study plot", "plots")
    figure, axis = plt.subplots(figsize=(6, 4))
    for label, row in summary.cells.items():
        xs = sorted(row)
        means = [row[x].mean for x in xs]
        stds = [0.0 if math.isnan(row[x].std) else row[x].std for x in xs]
        axis.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=label)
    xs = summary.x_values
    if xs and min(xs) > 0 and max(xs) / min(xs) > 10:
        axis.set_xscale("log")
    axis.set_xticks(xs, [f"{x:g}" for x in xs])
    axis.minorticks_off()
    axis.set_xlabel(summary.x_key)
    axis.set_ylabel(f"{summary.metric} ({summary.unit})")
    axis.set_title(" | ".join(sorted(set(summary.test_sets.values()))), fontsize=9)
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=7)
    return figure


def write_study(summary: StudySummary, out_dir: str | os.PathLike, plot: bool = True) -> list[Path]:
    """Write ``study.md``, ``study.csv`` and (with matplotlib) ``study.png`` atomically.

    Arguments:
      summary (StudySummary): from :func:`summarise`.
      out_dir (str | PathLike): the folder (normally the sweep folder).
      plot (bool): also draw the plot; it needs the ``plots`` extra.
    Returns:
      list[Path]: the files written.
    Raises:
      MissingExtraError: ``plot`` and matplotlib is not installed.
    """
    folder = Path(out_dir)
    markdown = folder / "study.md"
    atomic_write_bytes(markdown, study_markdown(summary).encode("utf-8"), what="study table")
    written = [markdown, write_study_csv(summary, folder / "study.csv")]
    if plot:
        written.append(save_figure(agg_pyplot(), study_figure(summary), folder / "study.png"))
    return written


__all__ = [
    "SEED_KEYS",
    "StudyCell",
    "StudyRun",
    "StudySummary",
    "collect_runs",
    "study_figure",
    "study_markdown",
    "summarise",
    "write_study",
    "write_study_csv",
]
