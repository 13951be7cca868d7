# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Before/after measurements of each optimisation switch (``run.py --compare``).

Pairs: batched decoder vs a per-image decoder loop, bf16 autocast vs fp32, ``torch.compile``
on/off (in a child process with a time limit, since Inductor can be slow or fail on CPU),
channels-last on/off, fused vs foreach AdamW, cached vs uncached decoded images, persistent vs
per-epoch DataLoader workers, and activation checkpointing (speed vs memory).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import queue
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchmarks.common import (
    Settings,
    build_model,
    build_optimizer,
    median,
    synthetic_batch,
    time_repeats,
    torch_threads,
)
from benchmarks.sections import bench_infer, bench_train, time_epochs, write_bench_dataset


def decoder_inputs(model: nn.Module, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """The keyword arguments ``IRSAM.forward`` passes to its decoder, for ``images``.

    Arguments:
      model (nn.Module): an :class:`irsam.models.IRSAM`.
      images (torch.Tensor): B×3×H×W float RGB, 0–255 scale.
    Returns:
      dict[str, torch.Tensor]: ``image_embeddings`` B×256×g×g, ``image_pe`` 1×256×g×g,
      ``dense_prompt_embeddings`` 1×256×1×1 and ``shallow_embeddings`` B×C_s×g×g.
    """
    deep, shallow = model.encode(images)
    grid = (deep.shape[-2], deep.shape[-1])
    return {
        "image_embeddings": deep,
        "image_pe": model.pe_layer(grid).unsqueeze(0).to(deep.dtype),
        "dense_prompt_embeddings": model.no_mask_embed.weight.reshape(1, -1, 1, 1),
        "shallow_embeddings": shallow,
    }


def decode_per_image(
    decoder: nn.Module, inputs: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Reference path: call the decoder once per image (batch 1) and concatenate the outputs.

    Arguments:
      decoder (nn.Module): the :class:`irsam.models.GranularityAwareDecoder`.
      inputs (dict[str, torch.Tensor]): from :func:`decoder_inputs`.
    Returns:
      dict[str, torch.Tensor]: the decoder outputs (B×1×4g×4g logits) stacked over the batch.
    """
    batch = inputs["image_embeddings"].shape[0]
    per_image = [
        decoder(
            image_embeddings=inputs["image_embeddings"][i : i + 1],
            image_pe=inputs["image_pe"],
            dense_prompt_embeddings=inputs["dense_prompt_embeddings"],
            shallow_embeddings=inputs["shallow_embeddings"][i : i + 1],
        )
        for i in range(batch)
    ]
    return {key: torch.cat([out[key] for out in per_image]) for key in per_image[0]}


def _row(
    name: str,
    metric: str,
    before: tuple[str, float | None],
    after: tuple[str, float | None],
    note: str = "",
) -> dict[str, Any]:
    """One comparison row with the after/before ratio (None when a side is missing).

    Arguments:
      name (str): the optimisation.
      metric (str): what was measured, with its unit.
      before (tuple[str, float | None]): baseline label and value.
      after (tuple[str, float | None]): variant label and value.
      note (str): caveats, errors or correctness checks.
    Returns:
      dict[str, Any]: the row.
    """
    ratio = None
    if before[1] and after[1] is not None:
        ratio = round(after[1] / before[1], 3)
    return {
        "optimisation": name,
        "metric": metric,
        "before": before[0],
        "before_value": before[1],
        "after": after[0],
        "after_value": after[1],
        "after_over_before": ratio,
        "note": note,
    }


def _variant(settings: Settings, **changes: Any) -> Settings:
    """A copy of ``settings`` at the largest batch size only, with ``changes`` applied."""
    return dataclasses.replace(settings, batch_sizes=[max(settings.batch_sizes)], **changes)


def _train_rate(settings: Settings) -> tuple[float | None, float | None, str]:
    """Training images/s, peak MiB and an error text for one setting."""
    result = bench_train(settings)
    if not result["rows"]:
        return None, None, result["error"] or "no result"
    row = result["rows"][0]
    return row["images_per_s"], row["peak_mib"], result["error"] or ""


def _infer_rate(settings: Settings) -> tuple[float | None, str]:
    """Inference images/s at the largest batch size and an error text for one setting."""
    result = bench_infer(settings)
    rows = [row for row in result["rows"] if row["batch_size"] == max(settings.batch_sizes)]
    return (rows[0]["images_per_s"] if rows else None), result["error"] or ""


def compare_decoder(settings: Settings) -> dict[str, Any]:
    """Batched GAD decoder vs a per-image loop: decoder images/s and the max output difference.

    Arguments:
      settings (Settings): the benchmark settings (largest batch size used).
    Returns:
      dict[str, Any]: the comparison row.
    """
    model = build_model(
        settings.model, image_size=settings.model_image_size, device=settings.device
    )
    model.eval()
    batch = max(settings.batch_sizes)
    images = synthetic_batch(batch, settings.input_size, settings.device)["image"]
    with torch.inference_mode():
        inputs = decoder_inputs(model, images)
        batched = model.mask_decoder(**inputs)
        looped = decode_per_image(model.mask_decoder, inputs)
        diff = max(float((batched[key] - looped[key]).abs().max()) for key in batched)
        rates = []
        for fn in (
            lambda: decode_per_image(model.mask_decoder, inputs),
            lambda: model.mask_decoder(**inputs),
        ):
            times = time_repeats(
                fn, warmup=settings.warmup, repeats=settings.repeats, device=settings.device
            )
            rates.append(round(batch / median(times), 1))
    return _row(
        "batched decoder",
        f"decoder images/s (batch {batch}, eval)",
        ("per-image loop", rates[0]),
        ("batched", rates[1]),
        f"max |batched − loop| = {diff:.2e}",
    )


def compare_precision(settings: Settings) -> list[dict[str, Any]]:
    """bf16 autocast vs fp32: training and inference images/s.

    Arguments:
      settings (Settings): the benchmark settings.
    Returns:
      list[dict[str, Any]]: the training and inference rows.
    """
    fp32_train, _, fp32_err = _train_rate(_variant(settings, precision="fp32"))
    bf16_train, _, bf16_err = _train_rate(_variant(settings, precision="bf16"))
    fp32_infer, fp32_ierr = _infer_rate(_variant(settings, precision="fp32"))
    bf16_infer, bf16_ierr = _infer_rate(_variant(settings, precision="bf16"))
    batch = max(settings.batch_sizes)
    return [
        _row(
            "bf16 autocast",
            f"train images/s (batch {batch})",
            ("fp32", fp32_train),
            ("bf16", bf16_train),
            "; ".join(filter(None, (fp32_err, bf16_err))),
        ),
        _row(
            "bf16 autocast",
            f"inference images/s (batch {batch})",
            ("fp32", fp32_infer),
            ("bf16", bf16_infer),
            "; ".join(filter(None, (fp32_ierr, bf16_ierr))),
        ),
    ]


def compare_channels_last(settings: Settings) -> list[dict[str, Any]]:
    """Channels-last weights/inputs vs contiguous: training and inference images/s.

    Arguments:
      settings (Settings): the benchmark settings.
    Returns:
      list[dict[str, Any]]: the training and inference rows.
    """
    batch = max(settings.batch_sizes)
    off_train, _, off_err = _train_rate(_variant(settings, channels_last=False))
    on_train, _, on_err = _train_rate(_variant(settings, channels_last=True))
    off_infer, _ = _infer_rate(_variant(settings, channels_last=False))
    on_infer, _ = _infer_rate(_variant(settings, channels_last=True))
    return [
        _row(
            "channels-last",
            f"train images/s (batch {batch})",
            ("contiguous", off_train),
            ("channels-last", on_train),
            "; ".join(filter(None, (off_err, on_err))),
        ),
        _row(
            "channels-last",
            f"inference images/s (batch {batch})",
            ("contiguous", off_infer),
            ("channels-last", on_infer),
        ),
    ]


def compare_checkpointing(settings: Settings) -> list[dict[str, Any]]:
    """Activation checkpointing: training images/s and peak step memory.

    Arguments:
      settings (Settings): the benchmark settings.
    Returns:
      list[dict[str, Any]]: the speed and memory rows.
    """
    batch = max(settings.batch_sizes)
    off_rate, off_mem, off_err = _train_rate(_variant(settings, grad_checkpointing=False))
    on_rate, on_mem, on_err = _train_rate(_variant(settings, grad_checkpointing=True))
    note = "; ".join(filter(None, (off_err, on_err)))
    return [
        _row(
            "activation checkpointing",
            f"train images/s (batch {batch})",
            ("off", off_rate),
            ("on", on_rate),
            note,
        ),
        _row(
            "activation checkpointing",
            f"train step peak memory growth, MiB (batch {batch})",
            ("off", off_mem),
            ("on", on_mem),
            "CPU: peak RSS growth during the timed steps",
        ),
    ]


def compare_adamw(settings: Settings) -> dict[str, Any]:
    """Fused vs foreach AdamW: time of ``optimizer.step()`` alone over the model's parameters.

    Arguments:
      settings (Settings): the benchmark settings.
    Returns:
      dict[str, Any]: the comparison row (steps/s; ``fused=True`` failures are reported).
    """
    model = build_model(
        settings.model, image_size=settings.model_image_size, device=settings.device
    )
    for param in model.parameters():
        if param.requires_grad:
            param.grad = torch.randn_like(param) * 1e-3
    rates: list[float | None] = []
    notes = []
    for fused in (False, True):
        try:
            optimizer = build_optimizer(model, fused=fused)
            times = time_repeats(
                optimizer.step,
                warmup=max(settings.warmup, 1),
                repeats=max(settings.repeats, 3),
                device=settings.device,
            )
            rates.append(round(1.0 / median(times), 1))
        except (RuntimeError, TypeError, ValueError) as error:
            rates.append(None)
            notes.append(f"fused=True failed: {type(error).__name__}: {error}")
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    notes.append(f"{trainable / 1e6:.2f} M trainable parameters")
    return _row(
        "fused AdamW",
        "optimizer steps/s",
        ("foreach", rates[0]),
        ("fused", rates[1]),
        "; ".join(notes),
    )


def compare_data(settings: Settings) -> list[dict[str, Any]]:
    """Cached vs uncached decoded images (0 workers) and persistent vs per-epoch workers.

    Arguments:
      settings (Settings): the benchmark settings (``data_images`` images, ``workers``).
    Returns:
      list[dict[str, Any]]: the two data rows.
    """
    workers = max(max(settings.workers), 1)
    with tempfile.TemporaryDirectory(prefix="irsam-bench-") as tmp:
        root = write_bench_dataset(Path(tmp), settings)
        uncached = time_epochs(
            root, settings, num_workers=0, cache_images=False, persistent_workers=False
        )
        cached = time_epochs(
            root, settings, num_workers=0, cache_images=True, persistent_workers=False
        )
        fresh = time_epochs(
            root, settings, num_workers=workers, cache_images=True, persistent_workers=False
        )
        persistent = time_epochs(
            root, settings, num_workers=workers, cache_images=True, persistent_workers=True
        )
    return [
        _row(
            "image cache",
            "loader images/s, 0 workers, epochs ≥ 2",
            ("uncached", uncached["images_per_s"]),
            ("cached", cached["images_per_s"]),
            f"{settings.data_images} PNG images of {settings.input_size}², decode + augment",
        ),
        _row(
            "persistent workers",
            f"loader images/s, {workers} workers, cache on, epochs ≥ 2",
            ("per-epoch workers", fresh["images_per_s"]),
            ("persistent", persistent["images_per_s"]),
            "per-epoch workers restart and lose their caches every epoch",
        ),
    ]


def _compile_child(config: dict[str, Any], results: multiprocessing.Queue) -> None:
    """Child process: eager vs ``torch.compile`` inference images/s; puts a dict on ``results``.

    Arguments:
      config (dict[str, Any]): ``Settings`` fields.
      results (multiprocessing.Queue): receives ``{"eager", "compiled", "compile_s", "error"}``.
    """
    import time

    settings = Settings(**config)
    out: dict[str, Any] = {"eager": None, "compiled": None, "compile_s": None, "error": None}
    with torch_threads(settings.threads):
        model = build_model(
            settings.model, image_size=settings.model_image_size, device=settings.device
        )
        model.eval()
        batch = max(settings.batch_sizes)
        images = synthetic_batch(batch, settings.input_size, settings.device)["image"]
        with torch.inference_mode():
            times = time_repeats(
                lambda: model(images),
                warmup=settings.warmup,
                repeats=settings.repeats,
                device=settings.device,
            )
            out["eager"] = round(batch / median(times), 2)
            results.put(dict(out))
            try:
                compiled = torch.compile(model)
                start = time.perf_counter()
                compiled(images)
                out["compile_s"] = round(time.perf_counter() - start, 1)
                times = time_repeats(
                    lambda: compiled(images),
                    warmup=settings.warmup,
                    repeats=settings.repeats,
                    device=settings.device,
                )
                out["compiled"] = round(batch / median(times), 2)
            except Exception as error:  # noqa: BLE001 - reported in the table
                out["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
    results.put(out)


def compare_compile(settings: Settings, timeout_s: float) -> dict[str, Any]:
    """``torch.compile`` on/off for inference, in a spawned child killed after ``timeout_s``.

    Arguments:
      settings (Settings): the benchmark settings.
      timeout_s (float): wall-clock limit of the child (compilation included).
    Returns:
      dict[str, Any]: the comparison row; a timeout or compile error is stated in the note.
    """
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue = context.Queue()
    previous = os.environ.get("TORCHINDUCTOR_COMPILE_THREADS")
    os.environ["TORCHINDUCTOR_COMPILE_THREADS"] = "1"
    child = context.Process(target=_compile_child, args=(dataclasses.asdict(settings), results))
    child.start()
    if previous is None:
        del os.environ["TORCHINDUCTOR_COMPILE_THREADS"]
    else:
        os.environ["TORCHINDUCTOR_COMPILE_THREADS"] = previous
    child.join(timeout_s)
    timed_out = child.is_alive()
    if timed_out:
        child.kill()
        child.join()
    out: dict[str, Any] = {"eager": None, "compiled": None, "compile_s": None, "error": None}
    while True:
        try:
            out = results.get(timeout=1.0)
        except queue.Empty:
            break
    note = f"first call (compilation) {out['compile_s']} s" if out["compile_s"] else ""
    if timed_out:
        note = f"compilation did not finish within {timeout_s:.0f} s (child killed)"
    elif out["error"]:
        note = f"compile failed: {out['error']}"
    elif child.exitcode:
        note = f"child exited with code {child.exitcode}"
    return _row(
        "torch.compile",
        f"inference images/s (batch {max(settings.batch_sizes)})",
        ("eager", out["eager"]),
        ("compiled", out["compiled"]),
        note,
    )


def run_comparisons(settings: Settings, *, compile_timeout_s: float) -> list[dict[str, Any]]:
    """Run every before/after pair.

    Arguments:
      settings (Settings): the benchmark settings (the largest batch size is used).
      compile_timeout_s (float): time limit of the ``torch.compile`` child.
    Returns:
      list[dict[str, Any]]: the comparison rows.
    """
    rows = [compare_decoder(settings)]
    rows += compare_precision(settings)
    rows.append(compare_compile(settings, compile_timeout_s))
    rows += compare_channels_last(settings)
    rows.append(compare_adamw(settings))
    rows += compare_data(settings)
    rows += compare_checkpointing(settings)
    return rows
