# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Every result table and file of an evaluation, in the units of published IRSTD tables.

* :func:`metrics_table` and :func:`write_results`: the main one-row table (IoU, nIoU, Pd in %,
  Fa × 10⁶) and ``results.json`` / ``results.md``;
* :func:`protocol_line`: the sentence stating the split a results file was measured on;
* :func:`metric_rules`: the metric options in force, for results.json (docs/metrics.md §13);
* :func:`write_curves`: PR and ROC curves as CSV and PNG (docs/metrics.md §10);
* :func:`write_pd_fa_curve`: the Pd–Fa curve of ``evaluate.py`` as CSV and PNG;
* :func:`write_per_image`: every image's scores as CSV (docs/metrics.md §11);
* :func:`report_markdown`: the extra metrics, the size-bin table and the worst images as
  Markdown; :func:`write_report` does the curves, the per-image CSV and this Markdown at once.

A metric's table unit comes from its name (:func:`table_unit`). Every file is written atomically
(:mod:`irsam.utils.atomic`), and every point of a plotted curve whose threshold is labelled
carries that threshold as text next to it (at most :data:`MAX_THRESHOLD_LABELS` labels per
curve, evenly spread, so the plot stays readable).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from irsam.metrics.functional import MATCH_DISTANCE
from irsam.metrics.irstd import IRSTDMetrics
from irsam.utils import atomic_write_bytes, get_logger
from irsam.utils.extras import missing_extra

log = get_logger(__name__)

TABLE_METRICS: tuple[str, ...] = ("IoU", "nIoU", "Pd", "Fa")
"""Columns of the main results table (:func:`metrics_table`), in order."""


def table_unit(name: str) -> tuple[float, str]:
    """Scale and unit of a metric in every table: false-alarm rates (``Fa*``) × 10⁶, all other
    metrics (fractions) × 100.

    Arguments:
      name (str): a metric key without its ``split/`` prefix, e.g. ``"Fa_OPDC"``.
    Returns:
      tuple[float, str]: ``(1e6, "1e-6")`` or ``(100.0, "%")``.
    """
    return (1e6, "1e-6") if name.startswith("Fa") else (100.0, "%")


def _as_float(value: Any) -> float:
    """A tensor or number as a Python float."""
    return float(value.item() if hasattr(value, "item") else value)


def metrics_table(
    metrics: Mapping[str, Any], prefix: str = "test/", extra: Mapping[str, Any] | None = None
) -> str:
    """Format metrics as a one-row Markdown table (columns :data:`TABLE_METRICS`).

    Arguments:
      metrics (Mapping): ``<prefix>IoU`` etc. as fractions / raw ratios (tensors or floats).
      prefix (str): key prefix, e.g. ``test/``.
      extra (Mapping | None): more columns appended as given (e.g. params, images/s).
    Returns:
      str: Markdown with a header, a separator and one row.
    """
    headers, cells = [], []
    for key in TABLE_METRICS:
        scale, unit = table_unit(key)
        value = _as_float(metrics[f"{prefix}{key}"]) * scale
        headers.append(f"{key} ({unit})")
        cells.append("nan" if math.isnan(value) else f"{value:.2f}")
    for key, value in (extra or {}).items():
        headers.append(key)
        cells.append(f"{value:.4g}" if isinstance(value, float) else str(value))
    return "\n".join(
        [
            "| " + " | ".join(headers) + " |",
            "|" + "---|" * len(headers),
            "| " + " | ".join(cells) + " |",
        ]
    )


def write_results(output_dir: str | Path, results: Mapping[str, Any], table: str) -> None:
    """Write ``results.json`` and ``results.md`` atomically.

    Arguments:
      output_dir (str | Path): destination folder.
      results (Mapping): JSON-serialisable results.
      table (str): the Markdown of results.md.
    """
    output_dir = Path(output_dir)
    atomic_write_bytes(
        output_dir / "results.json", json.dumps(results, indent=2, sort_keys=True).encode()
    )
    atomic_write_bytes(output_dir / "results.md", (table + "\n").encode())


def protocol_line(record: Mapping[str, Any]) -> str:
    """One Markdown line stating the protocol of a results file.

    Arguments:
      record (Mapping[str, Any]): output of :func:`irsam.data.protocols.protocol_record`.
    Returns:
      str: e.g. ``**Protocol:** nudt_sirst / standard (663 trainval = 597 train + 66 val,
      664 test; DNANet ...)``; a label budget adds ``label budget: trained on 30 of the 597
      train images (seed 0)``.
    """
    sizes = record["sizes"]
    alias = f", selected as {record['split']!r}" if record["split"] != record["protocol"] else ""
    source = f"; {record['source']}" if record.get("source") else ""
    dropped = f"; excluded {', '.join(record['exclude'])}" if record.get("exclude") else ""
    subset = record.get("train_subset")
    budget = (
        f"; label budget: trained on {subset['count']} of the {sizes['train']} train images "
        f"(seed {subset['seed']})"
        if subset
        else ""
    )
    return (
        f"**Protocol:** {record['dataset']} / {record['protocol']}{alias} "
        f"({sizes['trainval']} trainval = {sizes['train']} train + {sizes['val']} val, "
        f"{sizes['test']} test{dropped}{budget}{source})"
    )


PR_COLUMNS: tuple[str, ...] = (
    "threshold",
    "precision",
    "recall",
    "f1",
    "mean_precision",
    "mean_recall",
)
"""Columns of ``pr_curve.csv``."""

ROC_COLUMNS: tuple[str, ...] = ("threshold", "fpr", "tpr", "mean_fpr", "mean_tpr")
"""Columns of ``roc_curve.csv``."""

IMAGE_COLUMNS: tuple[str, ...] = ("name", "IoU", "targets", "missed", "fa_pixels", "Fa")
"""Columns of ``per_image.csv``."""

PD_FA_COLUMNS: tuple[str, ...] = ("threshold", "Pd", "Fa", "IoU")
"""Columns of ``pd_fa_curve.csv``."""

MAX_THRESHOLD_LABELS = 8
"""At most this many points of a plotted curve are labelled with their threshold."""


def metric_rules(metric: IRSTDMetrics) -> dict[str, Any]:
    """The rules and thresholds behind a metric's numbers, for results files.

    Arguments:
      metric (IRSTDMetrics): the metric that produced the numbers.
    Returns:
      dict[str, Any]: JSON-ready options (threshold, matching and Fa rules, extras and their
      parameters, the definitions document).
    """
    rules: dict[str, Any] = {
        "definitions": "docs/metrics.md",
        "threshold": f"logit > {metric.threshold}",
        "pd_matching": f"greedy one-to-one, centroid distance < {MATCH_DISTANCE} px",
        "fa_rule": metric.fa_rule,
        "fa_normaliser": "true_pixels" if metric.fa_normaliser is None else metric.fa_normaliser,
        "niou_empty_policy": metric.empty_policy,
        "resolution": "native (logits resized to each image's original size)",
        "extra": list(metric.extra),
    }
    if "opdc" in metric.extra:
        rules["opdc"] = {
            "overlap_iou": metric.opdc_overlap,
            "distance_px": MATCH_DISTANCE,
            "pad_empty": metric.opdc_pad_empty,
        }
    if "shooting" in metric.extra:
        rules["shooting_radii"] = list(metric.shooting_radii)
    if "size_bins" in metric.extra:
        rules["size_bins"] = list(metric.size_labels)
    if "curves" in metric.extra:
        rules["curve_thresholds"] = (
            f"probability >= linspace(0, 1, {len(metric.curve_thresholds) + 1})[:-1]"
        )
    return rules


def _write_csv(path: Path, columns: Sequence[str], data: Mapping[str, Sequence[Any]]) -> Path:
    """Write columns of equal length as CSV with a header row, atomically."""
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(columns)
    writer.writerows(zip(*(data[c] for c in columns), strict=True))
    atomic_write_bytes(path, text.getvalue().encode("utf-8"), what="report")
    return path


def agg_pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (files only, no display).

    Returns:
      module | None: ``matplotlib.pyplot``, or None when matplotlib (the ``plots`` extra) is not
      installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def label_thresholds(
    axis: Any,
    x: Sequence[float],
    y: Sequence[float],
    thresholds: Sequence[float],
    fmt: str = "{:.2f}",
    limit: int = MAX_THRESHOLD_LABELS,
) -> list[Any]:
    """Write each point's threshold next to it (at most ``limit`` points, evenly spread).

    Arguments:
      axis (matplotlib Axes): the plot.
      x (Sequence[float]): x coordinates of the curve's points.
      y (Sequence[float]): y coordinates.
      thresholds (Sequence[float]): the threshold of each point.
      fmt (str): format of a label.
      limit (int): most labels drawn.
    Returns:
      list: the matplotlib ``Text`` objects drawn (their text is ``fmt.format(threshold)``).
    """
    count = len(thresholds)
    if count == 0:
        return []
    step = max(1, math.ceil(count / limit))
    picks = sorted(set(range(0, count, step)) | {count - 1})
    texts = []
    for k in picks:
        if not (math.isfinite(x[k]) and math.isfinite(y[k])):
            continue
        texts.append(
            axis.annotate(
                fmt.format(thresholds[k]),
                (x[k], y[k]),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=7,
                color="0.25",
            )
        )
    return texts


def save_figure(plt: Any, figure: Any, path: Path) -> Path:
    """Render a figure to PNG bytes, write them atomically and close the figure.

    Arguments:
      plt (module): ``matplotlib.pyplot`` (:func:`agg_pyplot`).
      figure (matplotlib Figure): the figure.
      path (Path): the PNG file.
    Returns:
      Path: ``path``.
    """
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue(), what="report")
    return path


def curve_figure(curves: Mapping[str, Sequence[float]], kind: str) -> Any:
    """The PR (``kind="pr"``) or ROC (``kind="roc"``) plot, points labelled with thresholds.

    Arguments:
      curves (Mapping[str, Sequence[float]]): ``report()["curves"]`` (probability thresholds).
      kind (str): ``pr`` or ``roc``.
    Returns:
      matplotlib Figure: the plot (the caller saves and closes it).
    """
    plt = agg_pyplot()
    if plt is None:
        raise missing_extra("plotting the PR/ROC curves", "plots")
    x, y, xlabel, ylabel = {
        "pr": ("recall", "precision", "recall", "precision"),
        "roc": ("fpr", "tpr", "false-positive rate", "true-positive rate"),
    }[kind]
    figure, axis = plt.subplots(figsize=(4.5, 4.0), dpi=120)
    axis.plot(curves[x], curves[y], marker=".", label="pooled")
    axis.plot(curves[f"mean_{x}"], curves[f"mean_{y}"], "--", label="mean of images")
    label_thresholds(axis, list(curves[x]), list(curves[y]), list(curves["threshold"]))
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.set_title(f"{kind.upper()} (labels: probability threshold)", fontsize=9)
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1.02)
    axis.grid(alpha=0.3)
    axis.legend()
    return figure


def write_curves(curves: Mapping[str, Sequence[float]], out_dir: str | Path) -> list[Path]:
    """Write the PR and ROC curves of a report as CSV and, when matplotlib imports, PNG.

    Arguments:
      curves (Mapping[str, Sequence[float]]): ``report()["curves"]``.
      out_dir (str | Path): folder (created).
    Returns:
      list[Path]: the files written: ``pr_curve.csv``, ``roc_curve.csv`` and, with matplotlib,
      ``pr_curve.png`` and ``roc_curve.png`` (points labelled with their thresholds).
    """
    out = Path(out_dir)
    files = [
        _write_csv(out / "pr_curve.csv", PR_COLUMNS, curves),
        _write_csv(out / "roc_curve.csv", ROC_COLUMNS, curves),
    ]
    plt = agg_pyplot()
    if plt is None:
        log.warning("PR/ROC curves written as CSV only: %s", missing_extra("a PNG", "plots"))
        return files
    for kind in ("pr", "roc"):
        files.append(save_figure(plt, curve_figure(curves, kind), out / f"{kind}_curve.png"))
    return files


def _decade_limits(values: Sequence[float]) -> tuple[float, float]:
    """Fa-axis limits on whole decades (0 below 1), so the symlog axis shows labelled ticks."""
    finite = [v for v in values if math.isfinite(v)] or [0.0]
    low, high = min(finite), max(finite)
    lower = 0.0 if low < 1.0 else 10.0 ** (math.ceil(math.log10(low)) - 1)
    upper = 10.0 ** (math.floor(math.log10(high)) + 1) if high >= 1.0 else 1.0
    return lower, upper


def pd_fa_figure(curve: Mapping[str, Sequence[float]]) -> Any:
    """The Pd–Fa plot (Fa × 10⁶ on a symmetric-log axis from a whole decade to a whole decade,
    so its ticks 0, 1, 10, 100 ... are labelled; Pd in %), points labelled with their logit
    thresholds.

    Arguments:
      curve (Mapping[str, Sequence[float]]): ``threshold`` (logits), ``Pd`` and ``Fa``
        (fractions) of equal length, e.g. ``PdFaCurve.compute()`` as lists.
    Returns:
      matplotlib Figure: the plot (the caller saves and closes it).
    """
    plt = agg_pyplot()
    if plt is None:
        raise missing_extra("plotting the Pd-Fa curve", "plots")
    fa = [float(v) * 1e6 for v in curve["Fa"]]
    pd = [float(v) * 100 for v in curve["Pd"]]
    figure, axis = plt.subplots(figsize=(5, 4))
    axis.plot(fa, pd, marker="o")
    label_thresholds(axis, fa, pd, [float(t) for t in curve["threshold"]], fmt="{:g}")
    axis.set_xscale("symlog", linthresh=1.0)
    axis.set_xlim(*_decade_limits(fa))
    axis.xaxis.set_major_formatter(plt.FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_xlabel("Fa (1e-6)")
    axis.set_ylabel("Pd (%)")
    axis.set_title("Pd-Fa over logit thresholds (labels: threshold)")
    axis.grid(True, alpha=0.3)
    return figure


def write_pd_fa_curve(curve: Mapping[str, Any], out_dir: str | Path) -> list[Path]:
    """Write the Pd–Fa curve as ``pd_fa_curve.csv`` and, with matplotlib, ``pd_fa_curve.png``.

    Arguments:
      curve (Mapping[str, Any]): ``threshold``, ``Pd``, ``Fa``, ``IoU``: equal-length sequences or
        1-D tensors (``PdFaCurve.compute()``).
      out_dir (str | Path): folder (created).
    Returns:
      list[Path]: the files written.
    """
    out = Path(out_dir)
    data = {
        key: value.tolist() if hasattr(value, "tolist") else list(value)
        for key, value in curve.items()
        if key in PD_FA_COLUMNS
    }
    files = [_write_csv(out / "pd_fa_curve.csv", PD_FA_COLUMNS, data)]
    plt = agg_pyplot()
    if plt is None:
        log.warning("the Pd-Fa curve is written as CSV only: %s", missing_extra("a PNG", "plots"))
        return files
    files.append(save_figure(plt, pd_fa_figure(data), out / "pd_fa_curve.png"))
    return files


def write_per_image(images: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Write every image's scores, worst first, as CSV.

    Arguments:
      images (Sequence[Mapping]): ``report()["images"]``.
      path (str | Path): the CSV file.
    Returns:
      Path: the file.
    """
    path = Path(path)
    columns = {c: [row[c] for row in images] for c in IMAGE_COLUMNS}
    return _write_csv(path, IMAGE_COLUMNS, columns)


EXTRA_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Pixel (at the threshold)", ("Precision", "Recall", "F1")),
    ("OPDC and hIoU", ("Pd_OPDC", "Fa_OPDC", "hIoU", "seg_IoU", "loc_IoU")),
    ("hIoU segmentation errors", ("seg_mrg_err", "seg_itf_err", "seg_pcp_err")),
    ("hIoU localisation errors", ("loc_s2m_err", "loc_m2s_err", "loc_itf_err", "loc_pcp_err")),
    ("Shooting rule", ("Pd_shoot", "Fa_shoot")),
)
"""Tables of :func:`report_markdown`: (title, scalar names), each in its :func:`table_unit`."""


def _cell(name: str, value: float) -> str:
    """A scalar in its table unit with two decimals ("-" for NaN)."""
    if math.isnan(value):
        return "-"
    return f"{value * table_unit(name)[0]:.2f}"


def _pct(value: float) -> str:
    """A fraction as a percentage with two decimals ("-" for NaN)."""
    return "-" if math.isnan(value) else f"{100 * value:.2f}"


def report_markdown(report: Mapping[str, Any]) -> str:
    """The extra scalars, the size-bin table and the worst-images table of a report as Markdown.

    Arguments:
      report (Mapping[str, Any]): ``IRSTDMetrics.report()``.
    Returns:
      str: Markdown (empty when the report has neither part).
    """
    parts: list[str] = []
    scalars = report.get("scalars") or {}
    for title, names in EXTRA_GROUPS:
        present = [name for name in names if name in scalars]
        if not present:
            continue
        units = [f"{n} ({table_unit(n)[1]})" for n in present]
        parts += [f"### {title}", "", "| " + " | ".join(units) + " |", "|" + "---|" * len(units)]
        parts += ["| " + " | ".join(_cell(n, scalars[n]) for n in present) + " |", ""]
    if report.get("size_bins"):
        parts += ["### Pd and target IoU by target area (px)", ""]
        parts += ["| area | targets | Pd (%) | tIoU (%) |", "|---|---|---|---|"]
        for row in report["size_bins"]:
            label = row["bin"].replace("le", "<= ").replace("gt", "> ").replace("_", "-")
            parts.append(
                f"| {label} | {row['targets']} | {_pct(row['Pd'])} | {_pct(row['tIoU'])} |"
            )
        parts.append("")
    if report.get("worst_images"):
        count = len(report["worst_images"])
        parts += [f"### Worst {count} images (lowest IoU first)", ""]
        parts += [
            "| image | IoU (%) | targets | missed | false-alarm px |",
            "|---|---|---|---|---|",
        ]
        for row in report["worst_images"]:
            parts.append(
                f"| {row['name']} | {_pct(row['IoU'])} | {row['targets']} | {row['missed']} | "
                f"{row['fa_pixels']} |"
            )
        parts.append("")
    return "\n".join(parts)


def write_report(report: Mapping[str, Any], out_dir: str | Path) -> str:
    """Write the curves and per-image CSV of a report; return its Markdown tables.

    Arguments:
      report (Mapping[str, Any]): ``IRSTDMetrics.report()``.
      out_dir (str | Path): folder for ``pr_curve.*``, ``roc_curve.*`` and ``per_image.csv``.
    Returns:
      str: :func:`report_markdown` of the report, to append to results.md.
    """
    if report.get("curves"):
        write_curves(report["curves"], out_dir)
    if report.get("images"):
        write_per_image(report["images"], Path(out_dir) / "per_image.csv")
    return report_markdown(report)


__all__ = [
    "EXTRA_GROUPS",
    "IMAGE_COLUMNS",
    "MAX_THRESHOLD_LABELS",
    "PD_FA_COLUMNS",
    "PR_COLUMNS",
    "ROC_COLUMNS",
    "TABLE_METRICS",
    "agg_pyplot",
    "curve_figure",
    "label_thresholds",
    "metric_rules",
    "metrics_table",
    "pd_fa_figure",
    "protocol_line",
    "report_markdown",
    "save_figure",
    "table_unit",
    "write_curves",
    "write_pd_fa_curve",
    "write_per_image",
    "write_report",
    "write_results",
]
