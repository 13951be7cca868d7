# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""``irsam-study``: a sweep folder as a table and a plot of a metric against one swept value
(:mod:`irsam.metrics.study`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from irsam.metrics.study import SEED_KEYS, collect_runs, study_markdown, summarise, write_study
from irsam.utils.errors import EXIT_CODE, UserError


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``irsam-study SWEEP [SWEEP ...] [--x KEY] [--metric NAME] [--seed-keys ...]
    [--out DIR] [--no-plot]`` prints the table and writes ``study.md``, ``study.csv`` and
    ``study.png`` (into the first sweep folder unless ``--out``).

    Arguments:
      argv (Sequence[str] | None): arguments (None: ``sys.argv[1:]``).
    Returns:
      int: 0 on success; 2, with one line ``irsam-study: error: <message>`` on stderr, when the
      folder holds no finished job, a job lacks the x key or metric, or the runs were scored on
      different test sets or rules.
    """
    parser = argparse.ArgumentParser(
        prog="irsam-study",
        description="Summarise a train.py sweep: metric vs a swept value, mean ± std over seeds.",
    )
    parser.add_argument(
        "sweeps",
        nargs="+",
        help="sweep folders (logs/<task>/multiruns/<time>), summarised together",
    )
    parser.add_argument(
        "--x", default="dataset.train_fraction", help="swept key on the x axis (a number)"
    )
    parser.add_argument("--metric", default="IoU", help="IoU, nIoU, Pd, Fa or any test/ metric")
    parser.add_argument(
        "--seed-keys", nargs="+", default=list(SEED_KEYS), help="overrides averaged over"
    )
    parser.add_argument("--out", default=None, help="folder of the files (default: first sweep)")
    parser.add_argument("--no-plot", action="store_true", help="table and CSV only")
    args = parser.parse_args(argv)
    try:
        summary = summarise(collect_runs(*args.sweeps), args.x, args.metric, args.seed_keys)
        write_study(summary, args.out or args.sweeps[0], plot=not args.no_plot)
    except (UserError, ImportError) as error:
        sys.stderr.write(f"irsam-study: error: {error}\n")
        return EXIT_CODE
    sys.stdout.write(study_markdown(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
