# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Training memory of full fine-tuning vs PEFT (LoRA by default) for a SAM-ViT IRSAM on CPU.

For each mode (``full``: everything trains; ``<method>``: ``conf/peft/<method>.yaml``; and the
same with activation checkpointing of the encoder blocks) at a small internal size S:

* trainable parameters, and the optimiser-state bytes of AdamW after a step (summed over the
  tensors in ``optimizer.state``; gradients add 4 B per trainable parameter on top);
* the peak RSS growth of one fp32 training step (forward + IRSAM loss + backward + AdamW, after
  a warm-up step) at batch sizes 1 and 2; the difference is the per-image step memory at S
  (noisy: allocator caching, other processes);
* the exact bytes autograd saves for backward per image (``saved_tensors_hooks``, counted once
  per storage, parameters excluded) at S, 2·S and 3·S. With N tokens, the per-image saved bytes
  are fitted exactly as c + a·N + b·N² (resized position tables are constant, windowed blocks,
  MLPs and convolutions linear in N, the global attention matrices quadratic) and evaluated at
  1024² (N = 64² = 4096; the linear term with the 70² = 4900 tokens that 14×14 windows pad 64²
  to, an upper bound). The default S = 224 makes S, 2·S and 3·S window-aligned (grids 14, 28,
  42), so the fit sees no padding. With
  checkpointing, the block inputs kept for recomputation are not counted (N·C·4 B per block).

The 1024² per-image figure is an EXTRAPOLATION of saved activations (the transient peak inside
backward comes on top: compare the measured step peak with the saved bytes at S). Static memory
at 1024 is weights (4 B/parameter) + gradients (4 B/trainable) + optimiser state.

Usage: ``python benchmarks/peft_memory.py --model irsam_vit_b --size 256 --method lora``
(``--out DIR`` also writes ``peft_memory.json`` / ``.md``).
"""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.common import (
    PeakMemory,
    build_loss,
    build_model,
    build_optimizer,
    markdown_table,
    mib,
    synthetic_batch,
    train_step,
    write_report,
)
from irsam.models.peft import apply_peft

TARGET_SIZE = 1024


def _build(
    model_name: str, size: int, peft_cfg: dict[str, Any] | None, checkpointing: bool
) -> torch.nn.Module:
    model = build_model(model_name, image_size=size, device="cpu", grad_checkpointing=checkpointing)
    if peft_cfg is not None:
        apply_peft(model, peft_cfg)
    return model.train()


def saved_bytes_per_image(model: torch.nn.Module, size: int) -> int:
    """Bytes autograd keeps for backward in one batch-1 forward + loss at internal size ``size``.

    Arguments:
      model (nn.Module): the model (training mode).
      size (int): input and internal size S.
    Returns:
      int: the bytes of the distinct storages saved for backward, parameters excluded.
    """
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}
    kept: list[torch.Tensor] = []

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params:
            storages[storage.data_ptr()] = storage.nbytes()
        kept.append(tensor)  # keep storages alive so their addresses stay unique
        return tensor

    batch = synthetic_batch(1, size, "cpu")
    loss_fn = build_loss()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss, _ = loss_fn(model(batch["image"]), batch)
    total = sum(storages.values())
    kept.clear()
    del loss
    gc.collect()
    return total


def measure(
    model_name: str, size: int, peft_cfg: dict[str, Any] | None, checkpointing: bool
) -> dict[str, Any]:
    """All figures of one mode (see the module docstring).

    Arguments:
      model_name (str): ``model_registry`` key (a SAM-ViT model).
      size (int): small internal size S (multiple of 16).
      peft_cfg (dict | None): a ``conf/peft`` mapping, or None for full fine-tuning.
      checkpointing (bool): activation checkpointing of the encoder blocks.
    Returns:
      dict[str, Any]: counts, bytes and the 1024² extrapolation.
    """
    model = _build(model_name, size, peft_cfg, checkpointing)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    loss_fn = build_loss()
    optimizer = build_optimizer(model, fused=False)
    peaks = {}
    for batch_size in (1, 2):
        batch = synthetic_batch(batch_size, size, "cpu")
        train_step(model, loss_fn, optimizer, batch, device="cpu", precision="fp32")
        with PeakMemory("cpu") as memory:
            train_step(model, loss_fn, optimizer, batch, device="cpu", precision="fp32")
        peaks[batch_size] = memory.peak_bytes
    optimizer_state = sum(
        value.numel() * value.element_size()
        for state in optimizer.state.values()
        for value in state.values()
        if torch.is_tensor(value)
    )
    del optimizer
    gc.collect()
    saved = {}
    for factor in (1, 2, 3):
        s = factor * size
        model.image_encoder.img_size = s  # internal resolution follows the input (s×s)
        saved[s] = saved_bytes_per_image(model, s)
    tokens = torch.tensor([(s // 16) ** 2 for s in saved], dtype=torch.float64)
    design = torch.stack([torch.ones_like(tokens), tokens, tokens**2], dim=1)
    const, lin, quad = torch.linalg.solve(
        design, torch.tensor(list(saved.values()), dtype=torch.float64)
    ).tolist()
    grid = TARGET_SIZE // 16
    window = model.image_encoder.blocks[0].window_size or grid
    padded = (-(-grid // window) * window) ** 2
    per_image_1024 = const + lin * padded + quad * grid**4
    static_1024 = 4 * total + 4 * trainable + optimizer_state
    del model
    gc.collect()
    return {
        "params_total": total,
        "params_trainable": trainable,
        "optimizer_state_bytes": optimizer_state,
        "grad_bytes": 4 * trainable,
        "step_peak_rss_bytes": {str(b): v for b, v in peaks.items()},
        "step_per_image_bytes": peaks[2] - peaks[1],
        "saved_per_image_bytes": {str(s): v for s, v in saved.items()},
        "saved_per_image_bytes_1024": int(per_image_1024),
        "static_bytes_1024": static_1024,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run both modes and print (and optionally write) the Markdown table.

    Arguments:
      argv (list[str] | None): command-line arguments.
    Returns:
      dict[str, Any]: the JSON payload.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="irsam_vit_b", help="model_registry key (SAM ViT)")
    parser.add_argument("--size", type=int, default=224, help="small internal size S")
    parser.add_argument("--method", default="lora", help="conf/peft/<method>.yaml")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--out", type=Path, default=None, help="folder for .json/.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    peft_cfg = OmegaConf.to_container(
        OmegaConf.load(REPO_ROOT / "conf" / "peft" / f"{args.method}.yaml"), resolve=True
    )
    results = {
        "full": measure(args.model, args.size, None, False),
        args.method: measure(args.model, args.size, peft_cfg, False),
        f"{args.method} + grad checkpointing": measure(args.model, args.size, peft_cfg, True),
    }
    s = args.size
    rows = []
    for mode, r in results.items():
        rows.append(
            [
                mode,
                f"{r['params_trainable'] / 1e6:.2f} M / {r['params_total'] / 1e6:.2f} M",
                mib(r["optimizer_state_bytes"]),
                mib(r["grad_bytes"]),
                f"{mib(r['step_peak_rss_bytes']['1'])} / {mib(r['step_peak_rss_bytes']['2'])}",
                mib(r["step_per_image_bytes"]),
                " / ".join(str(mib(v)) for v in r["saved_per_image_bytes"].values()),
                mib(r["saved_per_image_bytes_1024"]),
                mib(r["static_bytes_1024"]),
            ]
        )
    headers = [
        "mode",
        "trainable / total params",
        "AdamW state (MiB)",
        "grads (MiB)",
        f"step peak RSS growth at {s}², batch 1 / 2 (MiB)",
        f"per-image step memory at {s}² (MiB)",
        f"saved activations per image at {s}² / {2 * s}² / {3 * s}² (MiB)",
        "saved activations per image at 1024², extrapolated (MiB)",
        "static at 1024: weights + grads + AdamW (MiB)",
    ]
    table = markdown_table(headers, rows)
    payload = {
        "model": args.model,
        "size": args.size,
        "method": args.method,
        "threads": args.threads,
        "results": results,
    }
    sys.stdout.write(table)
    if args.out is not None:
        write_report(args.out, "peft_memory", payload, table)
    return payload


if __name__ == "__main__":
    main()
