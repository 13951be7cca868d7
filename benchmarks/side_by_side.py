# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""irsam against the authors' IRSAM code, side by side in one process on CPU.

Ours is built through the project's configs (``conf/train.yaml`` with ``model=<name>``) and
trained with the LightningModule's own ``training_step`` and ``configure_optimizers``. Theirs is
``build_sam_IRSAM`` from a local copy of IPIC-Lab/IRSAM given with ``--authors-code`` (imported at
run time; it needs ``timm``), trained with the same loss and optimiser settings. Both see the same
random batch; the repeats of the two models alternate (A B A B ...) so that drift in machine
load hits both alike. Writes ``side_by_side.json`` and ``side_by_side.md``::

    python benchmarks/side_by_side.py --authors-code /path/to/IRSAM --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.benchmark import build_module, compose, environment, make_train_step


def build_ours(args: argparse.Namespace) -> tuple[Any, Any]:
    """The irsam LightningModule (seed 0, training mode) and the composed config.

    Arguments:
      args (argparse.Namespace): ``model``, ``input_size``, ``image_size``.
    Returns:
      tuple: (IRSAMLitModule built by ``benchmarks.benchmark.build_module``, cfg).
    """
    size = [f"model.net.encoder_size={args.image_size}", f"dataset.loader_size={args.input_size}"]
    cfg = compose([f"model={args.model}", *size])
    return build_module(cfg, "cpu"), cfg


def build_theirs(authors_code: Path, cfg: Any) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """The authors' ``build_sam_IRSAM`` model (random init) and an optimiser like ours.

    Arguments:
      authors_code (Path): root of a local IPIC-Lab/IRSAM copy (holds
        ``segment_anything_training/build_IRSAM.py``).
      cfg (Any): our composed config; its ``optimizer`` node builds the same AdamW.
    Returns:
      tuple: (model in training mode, AdamW over its parameters).
    """
    builder = authors_code / "segment_anything_training" / "build_IRSAM.py"
    if not builder.is_file():
        raise SystemExit(f"--authors-code {authors_code}: no {builder.name} under it")
    sys.path.insert(0, str(authors_code))
    from segment_anything_training.build_IRSAM import build_sam_IRSAM

    torch.manual_seed(0)
    model = build_sam_IRSAM(checkpoint=None).train()
    factory = hydra.utils.instantiate(cfg.optimizer)
    params = [p for p in model.parameters() if p.requires_grad]
    return model, factory(params=params)


def synthetic_batch(batch_size: int, size: int) -> dict[str, torch.Tensor]:
    """Random grey images repeated to RGB (0-255) with sparse masks and edges in {0, 1}."""
    generator = torch.Generator().manual_seed(0)
    grey = torch.rand(batch_size, 1, size, size, generator=generator) * 255.0
    mask = (torch.rand(batch_size, 1, size, size, generator=generator) < 0.005).float()
    edge = (torch.rand(batch_size, 1, size, size, generator=generator) < 0.005).float()
    return {"image": grey.repeat(1, 3, 1, 1), "mask": mask, "edge": edge}


def theirs_forward(model: torch.nn.Module, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """The authors' forward (per-image dicts) in our output names (their edges: probabilities)."""
    size = tuple(images.shape[-2:])
    masks, edges = model([{"image": image, "original_size": size} for image in images])
    return {"mask_logits": masks, "edge_probs": edges}


def make_steps(args: argparse.Namespace) -> dict[str, dict[str, Callable[[], None]]]:
    """The four timed callables: {"train": {"authors": f, "irsam": f}, "inference": {...}}."""
    ours, cfg = build_ours(args)
    theirs, theirs_opt = build_theirs(Path(args.authors_code), cfg)
    batch = synthetic_batch(args.batch, args.input_size)
    loss = ours.loss
    ours_step, _ = make_train_step(ours, batch, "cpu", "fp32")  # the benchmark's training step

    def train_ours() -> None:
        ours.train()
        ours_step()

    def train_theirs() -> None:
        theirs.train()
        theirs_opt.zero_grad(set_to_none=True)
        loss(theirs_forward(theirs, batch["image"]), batch)[0].backward()
        theirs_opt.step()

    def infer_ours() -> None:
        ours.eval()
        with torch.inference_mode():
            ours(batch["image"])

    def infer_theirs() -> None:
        theirs.eval()
        with torch.inference_mode():
            theirs_forward(theirs, batch["image"])

    return {
        "train": {"authors": train_theirs, "irsam": train_ours},
        "inference": {"authors": infer_theirs, "irsam": infer_ours},
    }


def measure(steps: dict[str, dict[str, Callable[[], None]]], args: argparse.Namespace) -> dict:
    """Warm up, then time ``repeats`` interleaved calls per (row, model): wall-clock and process
    CPU seconds (steadier on a shared machine: waiting for a core does not count), median img/s
    of both and the irsam / authors ratios."""
    results: dict[str, dict[str, Any]] = {}
    for row, pair in steps.items():
        for fn in pair.values():
            for _ in range(args.warmup):
                fn()
        wall: dict[str, list[float]] = {name: [] for name in pair}
        cpu: dict[str, list[float]] = {name: [] for name in pair}
        for _ in range(args.repeats):
            for name, fn in pair.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                fn()
                wall[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
        results[row] = {
            name: {
                "seconds": wall[name],
                "cpu_seconds": cpu[name],
                "images_per_s": args.batch / statistics.median(wall[name]),
                "images_per_cpu_s": args.batch / statistics.median(cpu[name]),
            }
            for name in pair
        }
        for key, rate in (("ratio", "images_per_s"), ("ratio_cpu_time", "images_per_cpu_s")):
            results[row][key] = results[row]["irsam"][rate] / results[row]["authors"][rate]
    return results


def profile_tables(steps: dict, rows: int = 12) -> dict[str, str]:
    """``torch.profiler`` tables (top ops by self CPU time) of one call per (row, model)."""
    from torch.profiler import ProfilerActivity, profile

    tables = {}
    for row, pair in steps.items():
        for name, fn in pair.items():
            fn()
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                fn()
            tables[f"{row}/{name}"] = prof.key_averages().table(
                sort_by="self_cpu_time_total", row_limit=rows
            )
    return tables


def markdown(results: dict, meta: dict[str, Any]) -> str:
    """The side-by-side Markdown table with the run's settings underneath."""
    lines = [f"| | authors' IRSAM code | irsam `{meta['model']}` | ratio | ratio (CPU time) |"]
    lines.append("|---|---|---|---|---|")
    labels = {"train": "train step (fwd + bwd + AdamW)", "inference": "inference"}
    for row, r in results.items():
        lines.append(
            f"| {labels[row]} | {r['authors']['images_per_s']:.3f} img/s "
            f"| {r['irsam']['images_per_s']:.3f} img/s | {r['ratio']:.2f} "
            f"| {r['ratio_cpu_time']:.2f} |"
        )
    lines.append("")
    lines.append(
        f"{meta['device']}, {meta['threads']} thread(s), fp32, random init, "
        f"{meta['input_size']} input -> {meta['image_size']} internal, batch {meta['batch']}, "
        f"median of {meta['repeats']} (interleaved), load average {meta['load_average']}, "
        f"torch {meta['torch']}."
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    """Parse the arguments, build both models, measure (and profile), write JSON + Markdown."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--authors-code", required=True, help="local IPIC-Lab/IRSAM copy")
    parser.add_argument("--model", default="irsam_tiny", help="conf/model/<name>.yaml")
    parser.add_argument("--input-size", type=int, default=512, help="loader image side")
    parser.add_argument("--image-size", type=int, default=1024, help="internal resolution")
    parser.add_argument("--batch", type=int, default=2, help="images per step")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per model and row")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls first")
    parser.add_argument("--rows", default="train,inference", help="train and/or inference")
    parser.add_argument("--profile", action="store_true", help="also print profiler tables")
    parser.add_argument("--out", default="benchmark_results", help="output folder")
    args = parser.parse_args(argv)
    if args.image_size != 1024:
        parser.error("--image-size: the authors' encoder is fixed at 1024 (64x64 token grid)")
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=".*self.log.*")
    steps = {row: pair for row, pair in make_steps(args).items() if row in args.rows.split(",")}
    results = measure(steps, args)
    meta = {
        "model": args.model,
        "device": environment("cpu")["cpu"],
        **{
            k: getattr(args, k) for k in ("threads", "input_size", "image_size", "batch", "repeats")
        },
        "load_average": " ".join(f"{value:.2f}" for value in os.getloadavg()),
        "torch": torch.__version__,
    }
    report = markdown(results, meta)
    print(report)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"meta": meta, "results": results}
    if args.profile:
        payload["profile"] = profile_tables(steps)
        for key, table in payload["profile"].items():
            print(f"## {key}\n{table}")
    (out / "side_by_side.json").write_text(json.dumps(payload, indent=2) + "\n")
    (out / "side_by_side.md").write_text(report)
    return payload


if __name__ == "__main__":
    main()
