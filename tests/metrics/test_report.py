# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""The curve pictures of irsam.metrics.report: every axis carries readable tick labels."""

from __future__ import annotations

import pytest

from irsam.metrics.report import curve_figure, pd_fa_figure

plt = pytest.importorskip("matplotlib.pyplot", reason="curve pictures need irsam[plots]")


def _visible_labels(axis) -> list[str]:
    """The x tick labels drawn inside the axis limits."""
    axis.figure.canvas.draw()
    low, high = sorted(axis.get_xlim())
    return [
        t.get_text()
        for t in axis.get_xticklabels()
        if low <= t.get_position()[0] <= high and t.get_text()
    ]


@pytest.mark.parametrize(
    "fa",
    [
        [3e-6, 5e-6, 8e-6],  # within one decade: the default symlog axis showed no label at all
        [20e-6, 40e-6, 80e-6],
        [0.0, 0.5e-6, 2e-6],
        [0.0, 0.0],
        [1e-6, 1e-3],
    ],
)
def test_pd_fa_curve_has_labelled_fa_ticks(fa: list[float]) -> None:
    """At least two plain-number Fa (1e-6) labels, whatever the range of the curve."""
    figure = pd_fa_figure({"threshold": list(range(len(fa))), "Pd": [0.5] * len(fa), "Fa": fa})
    labels = _visible_labels(figure.axes[0])
    plt.close(figure)
    assert len(labels) >= 2, labels
    assert all(float(label) >= 0 for label in labels), labels


def test_pr_and_roc_curves_have_labelled_ticks() -> None:
    curves = {key: [0.2, 0.5, 0.9] for key in ("recall", "precision", "fpr", "tpr", "threshold")}
    curves.update({f"mean_{k}": [0.2, 0.5, 0.9] for k in ("recall", "precision", "fpr", "tpr")})
    for kind in ("pr", "roc"):
        figure = curve_figure(curves, kind)
        assert len(_visible_labels(figure.axes[0])) >= 2
        plt.close(figure)
