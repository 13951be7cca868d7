# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""IRSAM benchmarks: training step, inference, data pipeline and metric throughput.

Writes ``benchmark.json`` + ``benchmark.md`` (and with ``--compare`` the before/after pairs, with
``--memory-estimate`` the 1024² max-batch ESTIMATE) to ``--out``, with hardware, software
versions and settings. Timings are medians of ``--repeats`` after ``--warmup``.

Usage::

    python benchmarks/run.py --input-size 128 --batch-sizes 1,4 --compare
    python benchmarks/run.py --device cuda --precision bf16 --input-size 512 \\
        --model-image-size 512 --batch-sizes 1,8,32,64,128 --sections train,infer
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    PRECISIONS,
    Settings,
    environment,
    markdown_table,
    torch_threads,
    write_report,
)

SECTIONS = ("train", "infer", "data", "metrics")


def _ints(text: str) -> list[int]:
    """Parse a comma-separated list of non-negative integers, e.g. ``"1,4"``."""
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected non-negative integers like 1,4; got {text!r}")
    return values


def _sections(text: str) -> list[str]:
    """Parse a comma-separated list of section names."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(names) - set(SECTIONS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown section(s) {unknown}; choose from {SECTIONS}")
    return names


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags.

    Arguments:
      argv (list[str] | None): arguments (None = ``sys.argv[1:]``).
    Returns:
      argparse.Namespace: the parsed flags.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="irsam_tiny", help="model_registry key")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS, help="autocast dtype")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--channels-last", action="store_true", help="channels-last format")
    parser.add_argument("--grad-checkpointing", action="store_true", help="activation ckpt")
    parser.add_argument("--fused-adamw", action="store_true", help="AdamW(fused=True)")
    parser.add_argument("--batch-sizes", type=_ints, default=[1, 4], help="e.g. 1,4")
    parser.add_argument("--input-size", type=int, default=128, help="input side in pixels")
    parser.add_argument(
        "--model-image-size", type=int, default=None, help="internal resolution (= input size)"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions (median)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed repetitions first")
    parser.add_argument("--workers", type=_ints, default=[0, 2], help="DataLoader workers")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    parser.add_argument("--data-images", type=int, default=32, help="synthetic dataset size")
    parser.add_argument("--metric-images", type=int, default=200, help="predictions scored")
    parser.add_argument(
        "--sections", type=_sections, default=list(SECTIONS), help="train,infer,data,metrics"
    )
    parser.add_argument("--compare", action="store_true", help="run the before/after pairs")
    parser.add_argument(
        "--compile-timeout", type=float, default=240.0, help="seconds for the compile child"
    )
    parser.add_argument(
        "--memory-estimate", action="store_true", help="1024² max-batch ESTIMATE (tiny, vit_b)"
    )
    parser.add_argument(
        "--memory-sizes",
        default="irsam_tiny=128,irsam_vit_b=224",
        help="model=internal size measured on CPU for the estimate",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"), help="output folder")
    args = parser.parse_args(argv)
    if args.model_image_size is None:
        args.model_image_size = args.input_size
    return args


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Build :class:`Settings` from the parsed flags.

    Arguments:
      args (argparse.Namespace): from :func:`parse_args`.
    Returns:
      Settings: the settings.
    """
    return Settings(
        model=args.model,
        device=args.device,
        precision=args.precision,
        compile=args.compile,
        channels_last=args.channels_last,
        grad_checkpointing=args.grad_checkpointing,
        fused_adamw=args.fused_adamw,
        batch_sizes=sorted(set(args.batch_sizes)),
        input_size=args.input_size,
        model_image_size=args.model_image_size,
        repeats=args.repeats,
        warmup=args.warmup,
        workers=args.workers,
        threads=args.threads,
        data_images=args.data_images,
        metric_images=args.metric_images,
    )


def render_markdown(report: dict[str, Any]) -> str:
    """The Markdown report: environment, settings and one table per section.

    Arguments:
      report (dict[str, Any]): the JSON report.
    Returns:
      str: Markdown text.
    """
    env, settings = report["environment"], report["settings"]
    load = env["load_average_1_5_15"]
    parts = [
        f"# IRSAM benchmark ({report['date']})\n",
        f"- command: `{report['command']}`",
        (
            f"- CPU: {env['cpu_model']}, {env['cpu_cores']} logical cores "
            f"({env['cpu_cores_usable']} usable, {env['torch_threads']} torch threads), "
            f"load average {load} at start"
        ),
        f"- GPU: {env['gpu'] or 'none'}",
        f"- software: Python {env['python']}, torch {env['torch']}, lightning {env['lightning']}",
        "- settings: " + ", ".join(f"{key}={value}" for key, value in settings.items()) + "\n",
    ]
    sections = report["sections"]
    if "train" in sections:
        train = sections["train"]
        static = train["static"]
        parts.append(
            f"## Training step (forward + IRSAM loss + backward + AdamW)\n\n"
            f"{static['params'] / 1e6:.2f} M parameters ({static['trainable'] / 1e6:.2f} M "
            f"trainable): weights {static['weights_mib']} MiB, AdamW state "
            f"{static['adamw_state_mib']} MiB (not in the peak below).\n"
        )
        parts.append(
            markdown_table(
                ["batch", "step ms", "images/s", "peak memory growth MiB", "memory method"],
                [
                    [
                        r["batch_size"],
                        r["step_ms"],
                        r["images_per_s"],
                        r["peak_mib"],
                        r["memory_method"],
                    ]
                    for r in train["rows"]
                ],
            )
        )
        if train["error"]:
            parts.append(f"\nError: {train['error']}\n")
    if "infer" in sections:
        infer = sections["infer"]
        parts.append("\n## Inference (eval, inference_mode)\n")
        parts.append(
            markdown_table(
                ["batch", "batch ms", "images/s", "latency ms/image"],
                [
                    [r["batch_size"], r["batch_ms"], r["images_per_s"], r["latency_ms_per_image"]]
                    for r in infer["rows"]
                ],
            )
        )
        if infer["best"]:
            parts.append(
                f"\nBatch 1: {infer['batch1']['images_per_s']} images/s "
                f"({infer['batch1']['latency_ms_per_image']} ms/image); best batch "
                f"{infer['best']['batch_size']}: {infer['best']['images_per_s']} images/s "
                f"({infer['best']['latency_ms_per_image']} ms/image).\n"
            )
        if infer["error"]:
            parts.append(f"\nError: {infer['error']}\n")
    if "data" in sections:
        data = sections["data"]
        parts.append(
            f"\n## Data pipeline (PNG decode + IRSAM augmentation + collate, "
            f"{data['dataset']['images']} images of {data['dataset']['side']}², epochs ≥ 2)\n"
        )
        parts.append(
            markdown_table(
                ["workers", "cache_images", "persistent_workers", "epoch ms", "images/s"],
                [
                    [
                        r["workers"],
                        r["cache_images"],
                        r["persistent_workers"],
                        r["epoch_ms"],
                        r["images_per_s"],
                    ]
                    for r in data["rows"]
                ],
            )
        )
    if "metrics" in sections:
        metrics = sections["metrics"]
        parts.append("\n## Metrics (IRSTDMetrics update + compute, bench_metrics data)\n")
        parts.append(
            markdown_table(
                ["images", "side", "batch", "images/s", "ms/image"],
                [
                    [
                        metrics["images"],
                        metrics["side"],
                        metrics["batch_size"],
                        metrics["images_per_s"],
                        metrics["ms_per_image"],
                    ]
                ],
            )
        )
    if report.get("compare"):
        parts.append("\n## Optimisations: before / after\n")
        parts.append(
            markdown_table(
                ["optimisation", "metric", "before", "after", "after/before", "note"],
                [
                    [
                        r["optimisation"],
                        r["metric"],
                        f"{r['before']}: {r['before_value']}",
                        f"{r['after']}: {r['after_value']}",
                        r["after_over_before"],
                        r["note"],
                    ]
                    for r in report["compare"]
                ],
            )
        )
    if report.get("memory_estimate"):
        parts.append(
            "\n## ESTIMATE: max training batch at 1024² internal resolution (fp32)\n\n"
            "Not measured on a GPU. Per-image memory = CPU peak-RSS slope at a small size × "
            "(1024/S)² (linear-in-tokens assumption) + an analytic N² term for explicit "
            "global attention (ViT); static = 16 B/trainable parameter; 10 % of the card "
            "reserved. See benchmarks/memory.py.\n"
        )
        parts.append(
            markdown_table(
                [
                    "model",
                    "measured S",
                    "per-image MiB at S",
                    "×(1024/S)²",
                    "global-attn MiB/image",
                    "per-image MiB at 1024",
                    "static MiB",
                    "24 GB max batch (est.)",
                    "80 GB max batch (est.)",
                ],
                [
                    [
                        r["model"],
                        r["measured_size"],
                        r["per_image_mib_at_measured"],
                        round(r["token_ratio"], 1),
                        r["global_attention_mib_per_image"],
                        r["per_image_mib_at_1024"],
                        r["static_mib"],
                        r["max_batch_estimate"]["24 GB"],
                        r["max_batch_estimate"]["80 GB"],
                    ]
                    for r in report["memory_estimate"]
                ],
            )
        )
    parts.append(f"\nTotal benchmark wall time: {report['wall_s']} s.\n")
    return "\n".join(parts)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the selected sections (and comparisons) and write the reports.

    Arguments:
      args (argparse.Namespace): from :func:`parse_args`.
    Returns:
      dict[str, Any]: the JSON report.
    """
    from benchmarks.compare import run_comparisons
    from benchmarks.memory import estimate_all
    from benchmarks.sections import bench_data, bench_infer, bench_metrics_section, bench_train

    settings = settings_from_args(args)
    start = time.perf_counter()
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "command": "python " + " ".join(sys.argv),
        "settings": settings.as_dict(),
        "sections": {},
    }
    runners = {
        "train": bench_train,
        "infer": bench_infer,
        "data": bench_data,
        "metrics": bench_metrics_section,
    }
    with torch_threads(settings.threads):
        report["environment"] = environment(settings.device)
        for name in args.sections:
            report["sections"][name] = runners[name](settings)
        if args.compare:
            report["compare"] = run_comparisons(settings, compile_timeout_s=args.compile_timeout)
        if args.memory_estimate:
            sizes = dict(item.split("=") for item in args.memory_sizes.split(","))
            report["memory_estimate"] = estimate_all(
                {name: int(size) for name, size in sizes.items()}, (1, 2)
            )
    report["wall_s"] = round(time.perf_counter() - start, 1)
    write_report(args.out, "benchmark", report, render_markdown(report))
    return report


def main(argv: list[str] | None = None) -> None:
    """Entry point: parse the flags, run, print where the reports went.

    Arguments:
      argv (list[str] | None): arguments (None = ``sys.argv[1:]``).
    """
    args = parse_args(argv)
    report = run(args)
    print(
        f"wrote {args.out / 'benchmark.json'} and {args.out / 'benchmark.md'} "
        f"in {report['wall_s']} s"
    )


if __name__ == "__main__":
    main()
