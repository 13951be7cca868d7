# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Writers for the extra-metric report of :meth:`irsam.metrics.IRSTDMetrics.report`.

* :func:`metric_rules`: the metric options in force, for results.json (docs/metrics.md §13);
* :func:`write_curves`: PR and ROC curves as CSV and PNG (docs/metrics.md §10);
* :func:`write_per_image`: every image's scores as CSV (docs/metrics.md §11);
* :func:`report_markdown`: the extra metrics, the size-bin table and the worst images as
  Markdown.

The evaluation task calls :func:`write_report`, which does all of it.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from irsam.metrics import MATCH_DISTANCE, IRSTDMetrics
from irsam.utils import get_logger

log = get_logger(__name__)

PR_COLUMNS: tuple[str, ...] = (
    "threshold",
    "precision",
    "recall",
    "f1",
    "mean_precision",
    "mean_recall",
)
ROC_COLUMNS: tuple[str, ...] = ("threshold", "fpr", "tpr", "mean_fpr", "mean_tpr")
IMAGE_COLUMNS: tuple[str, ...] = ("name", "IoU", "targets", "missed", "fa_pixels", "Fa")


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
    """Write columns of equal length as CSV with a header row."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(zip(*(data[c] for c in columns), strict=True))
    return path


def write_curves(curves: Mapping[str, Sequence[float]], out_dir: str | Path) -> list[Path]:
    """Write the PR and ROC curves of a report as CSV and, when matplotlib imports, PNG.

    Arguments:
      curves (Mapping[str, Sequence[float]]): ``report()["curves"]``.
      out_dir (str | Path): folder (created).
    Returns:
      list[Path]: the files written: ``pr_curve.csv``, ``roc_curve.csv`` and, with matplotlib,
      ``pr_curve.png`` and ``roc_curve.png``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = [
        _write_csv(out / "pr_curve.csv", PR_COLUMNS, curves),
        _write_csv(out / "roc_curve.csv", ROC_COLUMNS, curves),
    ]
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed: PR/ROC curves written as CSV only")
        return files
    for name, x, y, xlabel, ylabel in (
        ("pr_curve", "recall", "precision", "recall", "precision"),
        ("roc_curve", "fpr", "tpr", "false-positive rate", "true-positive rate"),
    ):
        figure, axis = plt.subplots(figsize=(4.5, 4.0), dpi=120)
        axis.plot(curves[x], curves[y], label="pooled")
        axis.plot(curves[f"mean_{x}"], curves[f"mean_{y}"], "--", label="mean of images")
        axis.set_xlabel(xlabel)
        axis.set_ylabel(ylabel)
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1.02)
        axis.grid(alpha=0.3)
        axis.legend()
        figure.tight_layout()
        figure.savefig(out / f"{name}.png")
        plt.close(figure)
        files.append(out / f"{name}.png")
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
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = {c: [row[c] for row in images] for c in IMAGE_COLUMNS}
    return _write_csv(path, IMAGE_COLUMNS, columns)


EXTRA_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Pixel (at the threshold)", ("Precision", "Recall", "F1")),
    ("OPDC and hIoU", ("Pd_OPDC", "Fa_OPDC", "hIoU", "seg_IoU", "loc_IoU")),
    ("hIoU segmentation errors", ("seg_mrg_err", "seg_itf_err", "seg_pcp_err")),
    ("hIoU localisation errors", ("loc_s2m_err", "loc_m2s_err", "loc_itf_err", "loc_pcp_err")),
    ("Shooting rule", ("Pd_shoot", "Fa_shoot")),
)
"""Tables of :func:`report_markdown`: (title, scalar names); Fa* in 10⁻⁶, the rest in %."""


def _cell(name: str, value: float) -> str:
    """A scalar in table units: Fa* × 10⁶, the others in %."""
    if math.isnan(value):
        return "-"
    return f"{value * 1e6:.2f}" if name.startswith("Fa") else f"{100 * value:.2f}"


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
        units = [f"{n} ({'1e-6' if n.startswith('Fa') else '%'})" for n in present]
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
    "PR_COLUMNS",
    "ROC_COLUMNS",
    "metric_rules",
    "report_markdown",
    "write_curves",
    "write_per_image",
    "write_report",
]
