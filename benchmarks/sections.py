# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""The four measured sections of ``run.py``: training step, inference, data pipeline, metrics.

Every section returns a JSON-serialisable dict; timings are medians of ``repeats`` calls after
``warmup`` untimed calls.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchmarks.bench_metrics import make_data, time_metrics
from benchmarks.common import (
    PeakMemory,
    Settings,
    autocast,
    build_loss,
    build_model,
    build_optimizer,
    median,
    mib,
    synthetic_batch,
    time_repeats,
    train_step,
)
from irsam.data import IRSTDDataModule, write_synthetic_dataset

BENCH_SPLITS = {
    "bench": {
        "trainval": "IRSAM_split/trainval.txt",
        "val": "IRSAM_split/test.txt",
        "test": None,
    }
}


def maybe_compile(model: nn.Module, enabled: bool) -> tuple[nn.Module, str | None]:
    """Wrap ``model`` in ``torch.compile`` when ``enabled``; a failure leaves it eager.

    Compilation is lazy, so most failures surface on the first call; callers catch those too.

    Arguments:
      model (nn.Module): the model.
      enabled (bool): compile or not.
    Returns:
      tuple[nn.Module, str | None]: the (possibly compiled) model and an error text or None.
    """
    if not enabled:
        return model, None
    try:
        return torch.compile(model), None
    except Exception as error:  # noqa: BLE001 - reported, not hidden
        return model, f"{type(error).__name__}: {error}"


def static_memory(model: nn.Module) -> dict[str, float]:
    """Weight and AdamW-state sizes (fp32), which do not grow with the batch.

    Arguments:
      model (nn.Module): the model.
    Returns:
      dict[str, float]: ``params`` (count), ``trainable``, ``weights_mib`` and ``adamw_state_mib``
      (two moments per trainable parameter); gradients are part of the measured step peak.
    """
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "params": total,
        "trainable": trainable,
        "weights_mib": mib(4 * total),
        "adamw_state_mib": mib(8 * trainable),
    }


def bench_train(settings: Settings) -> dict[str, Any]:
    """Training-step throughput and peak memory per batch size.

    One step = forward + IRSAM loss + backward + AdamW step, on a random batch of
    ``input_size``² images. Peak memory is the growth during the timed steps (after warm-up, so
    AdamW states already exist): activations, gradients and temporaries.

    Arguments:
      settings (Settings): the benchmark settings.
    Returns:
      dict[str, Any]: ``static`` sizes, one row per batch size (``images_per_s``,
      ``step_ms``, ``peak_mib``, ``memory_method``) and ``error`` (compile failures).
    """
    model = build_model(
        settings.model,
        image_size=settings.model_image_size,
        device=settings.device,
        channels_last=settings.channels_last,
        grad_checkpointing=settings.grad_checkpointing,
    )
    model.train()
    result: dict[str, Any] = {"static": static_memory(model), "rows": [], "error": None}
    loss_fn = build_loss()
    optimizer = build_optimizer(model, fused=settings.fused_adamw)
    runner, result["error"] = maybe_compile(model, settings.compile)
    for batch_size in settings.batch_sizes:
        batch = synthetic_batch(batch_size, settings.input_size, settings.device)

        def step(batch: dict[str, Any] = batch) -> float:
            """One training step on the fixed batch."""
            return train_step(
                runner,
                loss_fn,
                optimizer,
                batch,
                device=settings.device,
                precision=settings.precision,
            )

        try:
            time_repeats(step, warmup=max(settings.warmup, 1), repeats=1, device=settings.device)
            with PeakMemory(settings.device) as memory:
                times = time_repeats(
                    step, warmup=0, repeats=settings.repeats, device=settings.device
                )
        except Exception as error:  # noqa: BLE001 - compile/backend failures are reported
            result["error"] = f"{type(error).__name__}: {error}"
            break
        seconds = median(times)
        result["rows"].append(
            {
                "batch_size": batch_size,
                "step_ms": round(1e3 * seconds, 2),
                "images_per_s": round(batch_size / seconds, 2),
                "peak_mib": mib(memory.peak_bytes),
                "memory_method": memory.method,
            }
        )
    return result


def bench_infer(settings: Settings) -> dict[str, Any]:
    """Inference throughput per batch size (eval mode, ``torch.inference_mode``).

    Arguments:
      settings (Settings): the benchmark settings.
    Returns:
      dict[str, Any]: one row per batch size (``images_per_s``, ``latency_ms_per_image``), the
      ``batch1`` row, the ``best`` row (highest throughput) and ``error``.
    """
    model = build_model(
        settings.model,
        image_size=settings.model_image_size,
        device=settings.device,
        channels_last=settings.channels_last,
    )
    model.eval()
    runner, error = maybe_compile(model, settings.compile)
    rows: list[dict[str, Any]] = []
    for batch_size in sorted({1, *settings.batch_sizes}):
        images = synthetic_batch(batch_size, settings.input_size, settings.device)["image"]

        def forward(images: torch.Tensor = images) -> None:
            """One inference forward pass on the fixed images."""
            with torch.inference_mode(), autocast(settings.device, settings.precision):
                runner(images)

        try:
            times = time_repeats(
                forward, warmup=settings.warmup, repeats=settings.repeats, device=settings.device
            )
        except Exception as failure:  # noqa: BLE001 - compile/backend failures are reported
            error = f"{type(failure).__name__}: {failure}"
            break
        seconds = median(times)
        rows.append(
            {
                "batch_size": batch_size,
                "batch_ms": round(1e3 * seconds, 2),
                "images_per_s": round(batch_size / seconds, 2),
                "latency_ms_per_image": round(1e3 * seconds / batch_size, 2),
            }
        )
    batch1 = next((row for row in rows if row["batch_size"] == 1), None)
    best = max(rows, key=lambda row: row["images_per_s"]) if rows else None
    return {"rows": rows, "batch1": batch1, "best": best, "error": error}


def time_epochs(
    root: Path,
    settings: Settings,
    *,
    num_workers: int,
    cache_images: bool,
    persistent_workers: bool,
) -> dict[str, Any]:
    """Decoded + augmented training images per second through ``IRSTDDataModule``'s loader.

    The same DataLoader runs ``max(warmup, 1)`` untimed epochs (the first fills the image cache)
    and then ``repeats`` timed epochs; each epoch includes worker start-up unless workers persist.

    Arguments:
      root (Path): a dataset written by ``write_synthetic_dataset``.
      settings (Settings): the benchmark settings (input size, batch size, repeats).
      num_workers (int): DataLoader workers.
      cache_images (bool): keep decoded images in RAM.
      persistent_workers (bool): keep workers (and their caches) between epochs.
    Returns:
      dict[str, Any]: ``images_per_s``, ``epoch_ms`` and the loader options.
    """
    datamodule = IRSTDDataModule(
        name="bench",
        root=str(root),
        layout="auto",
        splits=BENCH_SPLITS,
        split="bench",
        image_size=settings.input_size,
        batch_size=max(settings.batch_sizes),
        num_workers=num_workers,
        persistent_workers=persistent_workers,
        cache_images=cache_images,
    )
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    count = len(datamodule.train_dataset)

    def epoch() -> None:
        """Iterate one full training epoch."""
        for _ in loader:
            pass

    times = time_repeats(
        epoch, warmup=max(settings.warmup, 1), repeats=settings.repeats, device="cpu"
    )
    seconds = median(times)
    return {
        "workers": num_workers,
        "cache_images": cache_images,
        "persistent_workers": persistent_workers and num_workers > 0,
        "images": count,
        "epoch_ms": round(1e3 * seconds, 1),
        "images_per_s": round(count / seconds, 1),
    }


def write_bench_dataset(root: Path, settings: Settings) -> Path:
    """Write the synthetic on-disk dataset used by the data benchmarks.

    Arguments:
      root (Path): output folder.
      settings (Settings): ``data_images`` training images of side ``input_size``.
    Returns:
      Path: ``root``.
    """
    return write_synthetic_dataset(
        root, num_trainval=settings.data_images, num_test=2, image_size=settings.input_size
    )


def bench_data(settings: Settings) -> dict[str, Any]:
    """Data-pipeline throughput per worker count, uncached vs cached (second and later epochs).

    With workers, the cached variant keeps the workers alive (``persistent_workers``): without it
    every epoch starts fresh workers whose caches are empty (see ``compare.py``).

    Arguments:
      settings (Settings): the benchmark settings.
    Returns:
      dict[str, Any]: ``rows`` (one per worker count × cache setting) and ``dataset`` details.
    """
    rows = []
    with tempfile.TemporaryDirectory(prefix="irsam-bench-") as tmp:
        root = write_bench_dataset(Path(tmp), settings)
        for workers in settings.workers:
            for cache in (False, True):
                rows.append(
                    time_epochs(
                        root,
                        settings,
                        num_workers=workers,
                        cache_images=cache,
                        persistent_workers=cache,
                    )
                )
    return {
        "rows": rows,
        "dataset": {"images": settings.data_images, "side": settings.input_size, "format": "PNG"},
    }


def bench_metrics_section(settings: Settings) -> dict[str, Any]:
    """``IRSTDMetrics`` throughput via ``benchmarks/bench_metrics.py``.

    Arguments:
      settings (Settings): ``metric_images`` predictions of side ``input_size``, batch = the
        largest of ``batch_sizes``.
    Returns:
      dict[str, Any]: ``images_per_s``, ``ms_per_image`` and the metric values of the data.
    """
    logits, targets = make_data(settings.metric_images, settings.input_size, seed=0)
    batch = max(settings.batch_sizes)
    times, values = [], {}
    for index in range(settings.warmup + settings.repeats):
        elapsed, values = time_metrics(logits, targets, batch)
        if index >= settings.warmup:
            times.append(elapsed)
    seconds = median(times)
    return {
        "images": settings.metric_images,
        "side": settings.input_size,
        "batch_size": batch,
        "images_per_s": round(settings.metric_images / seconds, 1),
        "ms_per_image": round(1e3 * seconds / settings.metric_images, 3),
        "values": values,
    }
