# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""The ``irsam-synthetic-sequence`` command: write a synthetic demo sequence
(:mod:`irsam.oneshot.synthetic_sequence`) or the real-background benchmark set
(:mod:`irsam.oneshot.real_sequence`)."""

from __future__ import annotations

import argparse
import os

from irsam.oneshot.real_sequence import write_real_benchmark
from irsam.oneshot.synthetic_sequence import make_synthetic_sequence, write_synthetic_sequence


def main(argv: list[str] | None = None) -> int:
    """``irsam-synthetic-sequence --out demo_seq`` (installed command): write a demo sequence, or
    with ``--mode real`` the real-background benchmark set (docs/oneshot.md, "Real-background
    benchmark").

    Arguments:
      argv (list[str] | None): command-line arguments (None: ``sys.argv``).
    Returns:
      int: the process exit status, 0 (``synthetic``: the folder holds ``frames/`` and
      ``masks/``; ``real``: ``images/<seq>/`` and ``masks/<seq>/``).
    """
    parser = argparse.ArgumentParser(
        description="Write a synthetic IR sequence, or the real-background benchmark set."
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--mode",
        choices=("synthetic", "real"),
        default="synthetic",
        help="synthetic: one sequence of Gaussian targets on smooth clutter; real: a set of "
        "sequences from NUAA-SIRST / NUDT-SIRST backgrounds and target crops",
    )
    parser.add_argument(
        "--data-root",
        default=os.environ.get("IRSAM_SHARED_DATA"),
        help="real: folder with NUAA-SIRST/ and NUDT-SIRST/ (default: $IRSAM_SHARED_DATA)",
    )
    parser.add_argument("--sequences", type=int, default=10, help="real: number of sequences")
    parser.add_argument("--frames", type=int, default=30, help="frames per sequence")
    parser.add_argument("--size", type=int, default=256, help="frame height and width in pixels")
    parser.add_argument("--targets", type=int, default=2, help="targets per frame (real: at most)")
    parser.add_argument("--sigma", type=float, default=1.2, help="target Gaussian sigma in pixels")
    parser.add_argument("--contrast", type=float, default=90.0, help="target peak over clutter")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same files)")
    args = parser.parse_args(argv)
    if args.mode == "real":
        if args.data_root is None:
            parser.error("--mode real needs --data-root (or IRSAM_SHARED_DATA) set.")
        root = write_real_benchmark(
            args.data_root,
            args.out,
            num_sequences=args.sequences,
            num_frames=args.frames,
            size=args.size,
            max_targets=args.targets,
            seed=args.seed,
        )
        print(
            f"wrote {args.sequences} sequences x {args.frames} frames to {root / 'images'} and "
            f"masks to {root / 'masks'}"
        )
        return 0
    sequence = make_synthetic_sequence(
        num_frames=args.frames,
        height=args.size,
        width=args.size,
        num_targets=args.targets,
        target_sigma=args.sigma,
        target_contrast=args.contrast,
        seed=args.seed,
    )
    root = write_synthetic_sequence(sequence, args.out)
    print(f"wrote {len(sequence.names)} frames to {root / 'frames'} and masks to {root / 'masks'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
