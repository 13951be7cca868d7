# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""``irsam-compare``: several ``results.json`` side by side as one Markdown table
(:func:`irsam.metrics.compare.compare_markdown`), or as the train × test matrix
(:func:`irsam.metrics.compare.matrix_markdown`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from irsam.metrics.compare import compare_markdown, load_results, matrix_markdown
from irsam.metrics.report import TABLE_METRICS
from irsam.utils.errors import EXIT_CODE, UserError


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``irsam-compare RESULTS [RESULTS ...] [--labels ...] [--metrics ...]
    [--allow-mixed]`` writes the comparison table to stdout; ``--matrix [--metric IoU]`` writes
    the train × test matrix instead (rows: checkpoints and their training sets; columns: test
    sets).

    Arguments:
      argv (Sequence[str] | None): arguments (None: ``sys.argv[1:]``).
    Returns:
      int: 0 on success; 2, with one line ``irsam-compare: error: <message>`` on stderr, when a
      file is missing or is not a results file, or runs of different rules would share a column.
    """
    parser = argparse.ArgumentParser(
        prog="irsam-compare", description="Print evaluation results side by side (Markdown)."
    )
    parser.add_argument("results", nargs="+", help="results.json files or run folders")
    parser.add_argument("--labels", nargs="+", default=None, help="row label of each results file")
    parser.add_argument("--metrics", nargs="+", default=list(TABLE_METRICS))
    parser.add_argument(
        "--matrix",
        action="store_true",
        help="train x test matrix: a row per results file, a column per test set",
    )
    parser.add_argument(
        "--metric", default="IoU", help="the metric of the matrix cells (IoU, nIoU, Pd, Fa ...)"
    )
    parser.add_argument(
        "--allow-mixed", action="store_true", help="print mixed rules/test sets, marked with †"
    )
    args = parser.parse_args(argv)
    try:
        runs = load_results(args.results, args.labels)
        if args.matrix:
            table = matrix_markdown(runs, args.metric, args.allow_mixed)
        else:
            table = compare_markdown(runs, None, args.metrics, args.allow_mixed)
    except UserError as error:
        sys.stderr.write(f"irsam-compare: error: {error}\n")
        return EXIT_CODE
    sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
