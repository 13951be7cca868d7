# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Result tables in the units of published IRSTD tables (IoU/nIoU/Pd in %, Fa ×1e6)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from irsam.utils.atomic import atomic_write_bytes

TABLE_COLUMNS = (
    ("IoU", 100.0, "IoU (%)"),
    ("nIoU", 100.0, "nIoU (%)"),
    ("Pd", 100.0, "Pd (%)"),
    ("Fa", 1e6, "Fa (1e-6)"),
)
"""(metric key, scale, column header) of the standard table."""


def _as_float(value: Any) -> float:
    return float(value.item() if hasattr(value, "item") else value)


def metrics_table(
    metrics: Mapping[str, Any], prefix: str = "test/", extra: Mapping[str, Any] | None = None
) -> str:
    """Format metrics as a one-row Markdown table.

    Arguments:
      metrics (Mapping): ``<prefix>IoU`` etc. as fractions / raw ratios (tensors or floats).
      prefix (str): key prefix, e.g. ``test/``.
      extra (Mapping | None): more columns appended as given (e.g. params, images/s).
    Returns:
      str: Markdown with a header, a separator and one row.
    """
    headers, cells = [], []
    for key, scale, header in TABLE_COLUMNS:
        value = _as_float(metrics[f"{prefix}{key}"]) * scale
        headers.append(header)
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
      table (str): the Markdown table.
    """
    output_dir = Path(output_dir)
    atomic_write_bytes(
        output_dir / "results.json", json.dumps(results, indent=2, sort_keys=True).encode()
    )
    atomic_write_bytes(output_dir / "results.md", (table + "\n").encode())
