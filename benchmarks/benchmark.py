# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""IRSAM benchmark: training step, inference, data loader and metric throughput, peak memory.

Everything is built the way ``train.py`` builds it: ``conf/train.yaml`` is composed with the
flags turned into Hydra overrides (plus any ``--override``), ``hydra.utils.instantiate(cfg.model)``
gives the LightningModule, and a training step is ``module.training_step(batch, 0)`` + backward +
the optimiser of ``module.configure_optimizers()``, under the autocast Lightning's
``bf16-mixed`` uses. Batches come from the DataModule of ``cfg.dataset``.

Timings are medians of ``--repeats`` calls after ``--warmup`` untimed calls. Writes
``benchmark.json`` and ``benchmark.md`` (hardware, versions, settings, one table per section) to
``--out`` after every section, so an interrupted run keeps what it measured.

Usage::

    python benchmarks/benchmark.py --input-size 64 --batch-sizes 1,2 --repeats 1 --warmup 0
    python benchmarks/benchmark.py --device cuda --input-size 512 --image-size 1024 \\
        --precision fp32,bf16 --compile off,on --batch-sizes 1,16,64 --max-batch
    python benchmarks/benchmark.py --model irsam_vit_b --peft lora --image-size 224 \\
        --sections train --batch-sizes 1,2
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SECTIONS = ("train", "infer", "data", "metrics")
PRECISIONS = ("fp32", "bf16")


def compose(overrides: list[str]) -> Any:
    """Compose ``conf/train.yaml`` with command-line style overrides, as ``train.py`` would.

    Arguments:
      overrides (list[str]): Hydra overrides, e.g. ``["model=irsam_tiny", "compile=true"]``.
    Returns:
      DictConfig: the composed config (``paths.root_dir`` is the repository root).
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "conf")):
        cfg = hydra_compose(
            config_name="train.yaml", overrides=[*overrides, f"paths.root_dir={ROOT}"]
        )
    GlobalHydra.instance().clear()
    return cfg


def model_overrides(
    model: str, input_size: int, image_size: int, options: dict[str, Any]
) -> list[str]:
    """Hydra overrides of one benchmarked configuration (model, sizes, switches).

    Arguments:
      model (str): a ``conf/model/`` name, e.g. ``irsam_tiny``.
      input_size (int): loader resolution (``dataset.loader_size``) in pixels.
      image_size (int): internal encoder resolution (``model.net.encoder_size``) in pixels.
      options (dict[str, Any]): ``compile`` (bool), ``channels_last`` (bool), ``peft`` (str).
    Returns:
      list[str]: the overrides.
    """
    overrides = [
        f"model={model}",
        f"model.net.encoder_size={image_size}",
        f"dataset.loader_size={input_size}",
        f"dataset.synthetic.native_size={input_size}",
        f"compile={str(bool(options.get('compile'))).lower()}",
        f"peft={options.get('peft') or 'none'}",
    ]
    if options.get("channels_last"):  # only models whose net has the switch accept it
        overrides.append("model.net.channels_last=true")
    return overrides


def build_module(cfg: Any, device: str, seed: int = 0) -> Any:
    """The LightningModule of ``cfg.model``, seeded, on ``device``, set up for fitting.

    Arguments:
      cfg (DictConfig): a composed ``train.yaml`` config.
      device (str): ``cpu`` or ``cuda``.
      seed (int): ``torch.manual_seed`` before building (the random initial weights).
    Returns:
      IRSAMLitModule: in training mode; ``setup("fit")`` applied (``compile=true`` compiles).
    """
    import hydra

    torch.manual_seed(seed)
    module = hydra.utils.instantiate(cfg.model).to(device)
    module.setup("fit")
    return module.train()


def loader_batch(cfg: Any, batch_size: int, device: str, *, sample: int = 4) -> dict[str, Any]:
    """A training batch of ``batch_size`` from the DataModule of ``cfg.dataset``.

    The first ``min(batch_size, sample)`` images come from the training loader (decoded,
    augmented and collated by the project's code); they are repeated up to ``batch_size``.

    Arguments:
      cfg (DictConfig): a composed ``train.yaml`` config.
      batch_size (int): B.
      device (str): where the tensors go.
      sample (int): distinct images drawn from the loader.
    Returns:
      dict[str, Any]: the batch contract of ``irsam.data.collate`` (``image`` B×3×h×w 0–255,
      ``mask``/``edge`` B×1×h×w in [0, 1], ...).
    """
    import hydra

    torch.manual_seed(0)
    datamodule = hydra.utils.instantiate(
        cfg.dataset, batch_size=min(batch_size, sample), num_workers=0, pin_memory=False
    )
    datamodule.setup("fit")
    first = next(iter(datamodule.train_dataloader()))
    repeats = -(-batch_size // first["image"].shape[0])
    batch: dict[str, Any] = {}
    for key, value in first.items():
        if isinstance(value, torch.Tensor):
            tiled = value.repeat(repeats, *([1] * (value.dim() - 1)))[:batch_size]
            batch[key] = tiled.to(device)
        elif isinstance(value, list):
            batch[key] = (value * repeats)[:batch_size]
        else:
            batch[key] = value
    return batch


def autocast(device: str, precision: str) -> contextlib.AbstractContextManager:
    """The autocast of Lightning's ``bf16-mixed`` (``bf16``), or none (``fp32``).

    Arguments:
      device (str): ``cpu`` or ``cuda``.
      precision (str): ``fp32`` or ``bf16``.
    Returns:
      contextlib.AbstractContextManager: the context.
    """
    return torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=precision == "bf16")


def make_train_step(
    module: Any, batch: dict[str, Any], device: str, precision: str
) -> tuple[Callable[[], torch.Tensor], torch.optim.Optimizer]:
    """One optimisation step as the Trainer runs it, on a fixed batch.

    Arguments:
      module (IRSAMLitModule): from :func:`build_module`.
      batch (dict[str, Any]): from :func:`loader_batch`.
      device (str): ``cpu`` or ``cuda``.
      precision (str): ``fp32`` or ``bf16`` (autocast over ``training_step``, as bf16-mixed).
    Returns:
      tuple[Callable[[], Tensor], Optimizer]: ``step()`` (zero grads, ``training_step``,
      backward, optimiser step; returns the detached loss) and the optimiser of
      ``module.configure_optimizers()``.
    """
    optimizer = module.configure_optimizers()["optimizer"]

    def step() -> torch.Tensor:
        """Zero grads, ``module.training_step(batch, 0)``, backward, ``optimizer.step()``."""
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, precision):
            loss = module.training_step(batch, 0)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step, optimizer


def synchronize(device: str) -> None:
    """Wait for queued GPU work (no-op on CPU)."""
    if device == "cuda":
        torch.cuda.synchronize()


def time_calls(fn: Callable[[], Any], warmup: int, repeats: int, device: str) -> dict[str, float]:
    """Median wall time of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones.

    Arguments:
      fn (Callable[[], Any]): the work.
      warmup (int): untimed calls (the first call's time is reported on its own).
      repeats (int): timed calls (≥ 1).
      device (str): GPU work is synchronised before each clock read.
    Returns:
      dict[str, float]: ``first_s`` (first call, compilation included), ``median_s``.
    """
    times = []
    for index in range(max(warmup, 0) + max(repeats, 1)):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
        if index == 0:
            first = times[0]
    return {"first_s": first, "median_s": statistics.median(times[max(warmup, 0) :] or times)}


def _rss_peak_bytes() -> int | None:
    """Peak resident set size (``VmHWM``) of this process in bytes; None off Linux."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


@contextlib.contextmanager
def peak_memory(device: str) -> Iterator[dict[str, Any]]:
    """Measure the peak memory of the block: CUDA max allocated, or the CPU peak RSS.

    Arguments:
      device (str): ``cpu`` or ``cuda``.
    Returns:
      Iterator[dict]: filled on exit with ``peak_mib`` (absolute: weights, optimiser state,
      activations) and ``method``.
    """
    result: dict[str, Any] = {"peak_mib": None, "method": None}
    gc.collect()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        yield result
        torch.cuda.synchronize()
        result.update(peak_mib=mib(torch.cuda.max_memory_allocated()), method="cuda max allocated")
        return
    reset = False
    with contextlib.suppress(OSError):  # Linux: "5" resets VmHWM to the current RSS
        Path("/proc/self/clear_refs").write_text("5")
        reset = True
    yield result
    peak = _rss_peak_bytes()
    method = "process peak RSS" + ("" if reset else " (since start: high-water mark not reset)")
    result.update(peak_mib=None if peak is None else mib(peak), method=method)


def saved_activation_bytes(fn: Callable[[], Any], module: torch.nn.Module) -> int:
    """Bytes of the tensors autograd saves for backward during one call of a training step.

    Counts each storage once (views of one buffer share it) and leaves out the module's
    parameters and buffers (and their views), so it is the activation memory of the step, not the
    transient buffers inside backward.

    Arguments:
      fn (Callable[[], Any]): one training step (forward + backward + optimiser step).
      module (torch.nn.Module): the module whose weights the step uses.
    Returns:
      int: saved bytes.
    """
    weights = {t.untyped_storage().data_ptr() for t in (*module.parameters(), *module.buffers())}
    seen: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights:
            seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        fn()
    return sum(seen.values())


def mib(num_bytes: float) -> float:
    """Bytes to MiB, rounded to 0.1."""
    return round(num_bytes / 2**20, 1)


def is_oom(error: BaseException) -> bool:
    """True for CUDA or host out-of-memory errors (the project's own test)."""
    from irsam.tasks.runner import is_out_of_memory

    return is_out_of_memory(error)


def release(device: str) -> None:
    """Free cached memory after an out-of-memory error or a finished configuration."""
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


def bench_model(args: argparse.Namespace, sizes: tuple[int, int], options: dict[str, Any]) -> dict:
    """Training and/or inference rows of one configuration over the batch sizes.

    Arguments:
      args (argparse.Namespace): the flags.
      sizes (tuple[int, int]): (loader input size, internal image size).
      options (dict[str, Any]): ``precision``, ``compile``, ``channels_last``, ``peft``.
    Returns:
      dict: ``params`` (total / trainable), ``optimizer_state_mib`` and ``rows`` (one per
      section and batch size: images/s, ms per batch, latency, peak memory, first-call s, error).
    """
    from irsam.models import count_parameters

    cfg = compose(model_overrides(args.model, *sizes, options) + args.override)
    module = build_module(cfg, args.device)
    counts = count_parameters(module.net)
    result: dict[str, Any] = {
        "params": {"total": counts["total"], "trainable": counts["trainable"]},
        "optimizer_state_mib": None,
        "rows": [],
    }
    base = {"input_size": sizes[0], "image_size": sizes[1], **options}
    for section in ("train", "infer"):
        if section not in args.sections:
            continue
        for batch_size in args.batch_sizes:
            row = {"section": section, "batch_size": batch_size, **base, "error": None}
            try:
                batch = loader_batch(cfg, batch_size, args.device)
                if section == "train":
                    module.train()
                    fn, optimizer = make_train_step(
                        module, batch, args.device, options["precision"]
                    )
                else:
                    module.eval()
                    fn = _infer_fn(module, batch["image"], args.device, options["precision"])
                with peak_memory(args.device) as memory:
                    timing = time_calls(fn, args.warmup, args.repeats, args.device)
                seconds = timing["median_s"]
                row.update(
                    images_per_s=round(batch_size / seconds, 2),
                    batch_ms=round(1e3 * seconds, 2),
                    latency_ms_per_image=round(1e3 * seconds / batch_size, 3),
                    first_call_s=round(timing["first_s"], 2),
                    peak_mib=memory["peak_mib"],
                    memory_method=memory["method"],
                )
                if section == "train":
                    saved = saved_activation_bytes(fn, module)
                    row["saved_mib_per_image"] = round(saved / 2**20 / batch_size, 1)
                    state = [t for s in optimizer.state.values() for t in s.values()]
                    tensors = [t for t in state if isinstance(t, torch.Tensor)]
                    result["optimizer_state_mib"] = mib(sum(t.nbytes for t in tensors))
                    del optimizer
            except Exception as error:  # noqa: BLE001 - recorded in the row (OOM, compile)
                row["error"] = (
                    "out of memory" if is_oom(error) else f"{type(error).__name__}: {error}"
                )
            fn = batch = None
            release(args.device)
            result["rows"].append(row)
    return result


def _infer_fn(module: Any, images: torch.Tensor, device: str, precision: str) -> Callable[[], Any]:
    """Inference forward of the module (``forward`` = the compiled runner when compiling)."""

    def forward() -> Any:
        """One eval forward pass under ``inference_mode``."""
        with torch.inference_mode(), autocast(device, precision):
            return module(images)

    return forward


def largest_batch(args: argparse.Namespace, sizes: tuple[int, int], precision: str) -> dict:
    """Largest training batch that fits: doubling, then bisection, catching out-of-memory.

    Eager (no compile). On CPU the search stops at ``--max-batch-limit`` (default 4), since
    host memory swaps before it raises.

    Arguments:
      args (argparse.Namespace): the flags.
      sizes (tuple[int, int]): (loader input size, internal image size).
      precision (str): ``fp32`` or ``bf16``.
    Returns:
      dict: ``largest`` (int or None when batch 1 fails), ``limit``, ``bounded_by_limit``,
      ``peak_mib`` of the largest, ``tries`` (batch → ok).
    """
    limit = args.max_batch_limit or (4096 if args.device == "cuda" else 4)
    options = {
        "compile": False,
        "channels_last": args.channels_last[0],
        "peft": args.peft or "none",
    }
    cfg = compose(model_overrides(args.model, *sizes, options) + args.override)
    module = build_module(cfg, args.device)
    sample = loader_batch(cfg, 1, args.device)
    tries: dict[int, bool] = {}
    peaks: dict[int, float | None] = {}

    def fits(batch_size: int) -> bool:
        """One training step at ``batch_size``; False on out-of-memory."""
        batch = {
            k: v.repeat(batch_size, *([1] * (v.dim() - 1))) if isinstance(v, torch.Tensor) else v
            for k, v in sample.items()
        }
        step = None
        try:
            step, _ = make_train_step(module, batch, args.device, precision)
            with peak_memory(args.device) as memory:
                step()
                synchronize(args.device)
            peaks[batch_size] = memory["peak_mib"]
            ok = True
            print(f"max-batch {args.model}: batch {batch_size} fits ({memory['peak_mib']} MiB)")
        except Exception as error:
            if not is_oom(error):
                raise
            ok = False
            print(f"max-batch {args.model}: batch {batch_size} is out of memory")
        del batch, step
        module.zero_grad(set_to_none=True)
        release(args.device)
        tries[batch_size] = ok
        return ok

    good, bad = 0, None
    size = 1
    while size <= limit and fits(size):
        good, size = size, size * 2
    if size <= limit:
        bad = size
    while bad is not None and bad - good > 1:
        middle = (good + bad) // 2
        good, bad = (middle, bad) if fits(middle) else (good, middle)
    return {
        "model": args.model,
        "input_size": sizes[0],
        "image_size": sizes[1],
        "precision": precision,
        "largest": good or None,
        "limit": limit,
        "bounded_by_limit": bad is None,
        "peak_mib": peaks.get(good),
        "tries": {str(k): v for k, v in tries.items()},
    }


def bench_data(args: argparse.Namespace, input_size: int) -> dict:
    """Decoded + augmented + collated training images/s of the DataModule's loader.

    Images come from ``--data-root`` (a folder in the NUDT-SIRST layout, read with
    ``dataset=nudt_sirst``) or from a synthetic PNG dataset written to a temporary folder. The
    same loader runs one untimed epoch (which fills the cache), then ``--data-epochs`` (default
    ``--repeats``) timed epochs; with workers, the cached variant keeps them alive
    (``persistent_workers``).

    Arguments:
      args (argparse.Namespace): the flags.
      input_size (int): loader resolution.
    Returns:
      dict: ``root``, ``images`` and ``rows`` (workers, cache, images/s, epoch ms).
    """
    import hydra

    from irsam.data import write_synthetic_dataset

    batch_size = args.data_batch_size or max(args.batch_sizes)
    rows = []
    with tempfile.TemporaryDirectory(prefix="irsam-bench-data-") as tmp:
        root = args.data_root
        if root is None:
            root = write_synthetic_dataset(
                Path(tmp), num_trainval=args.data_images, num_test=2, native_size=input_size
            )
        for workers, cache in itertools.product(args.workers, args.cache):
            cfg = compose(
                [
                    "dataset=nudt_sirst",
                    f"dataset.root={root}",
                    f"dataset.loader_size={input_size}",
                    f"dataset.batch_size={batch_size}",
                    f"dataset.num_workers={workers}",
                    f"dataset.cache_images={str(cache).lower()}",
                    f"dataset.persistent_workers={str(cache and workers > 0).lower()}",
                    f"dataset.pin_memory={str(args.device == 'cuda').lower()}",
                    *args.override,
                ]
            )
            datamodule = hydra.utils.instantiate(cfg.dataset)
            datamodule.setup("fit")
            loader = datamodule.train_dataloader()
            count = len(datamodule.train_dataset)

            def epoch(loader: Any = loader) -> None:
                """Iterate one training epoch."""
                for _ in loader:
                    pass

            timing = time_calls(epoch, 1, args.data_epochs or args.repeats, "cpu")
            rows.append(
                {
                    "workers": workers,
                    "cache_images": cache,
                    "persistent_workers": cache and workers > 0,
                    "batch_size": batch_size,
                    "epoch_ms": round(1e3 * timing["median_s"], 1),
                    "images_per_s": round(count / timing["median_s"], 1),
                }
            )
            del loader, datamodule, epoch
    return {
        "root": str(args.data_root or "synthetic PNG (temporary)"),
        "images": count,
        "rows": rows,
    }


def metric_data(count: int, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Sparse IRSTD-like logits and targets: 1–3 small discs per image, most detected with a
    shifted disc, 0–2 false-alarm discs.

    Arguments:
      count (int): N images.
      size (int): side S.
      seed (int): NumPy seed.
    Returns:
      tuple[Tensor, Tensor]: N×1×S×S float32 logits (−8 / +8) and N×1×S×S uint8 targets {0, 255}.
    """
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:size, 0:size]
    logits = np.full((count, 1, size, size), -8.0, dtype=np.float32)
    targets = np.zeros((count, 1, size, size), dtype=np.uint8)
    for k in range(count):
        for _ in range(rng.integers(1, 4)):
            row, col = rng.uniform(4, size - 4, 2)
            radius = rng.uniform(0.5, 4.0)
            targets[k, 0][(rows - row) ** 2 + (cols - col) ** 2 <= radius**2] = 255
            if rng.random() < 0.9:
                row, col = (row, col) + rng.normal(0, 1.0, 2)
                logits[k, 0][(rows - row) ** 2 + (cols - col) ** 2 <= radius**2] = 8.0
        for _ in range(rng.integers(0, 3)):
            row, col = rng.uniform(2, size - 2, 2)
            logits[k, 0][(rows - row) ** 2 + (cols - col) ** 2 <= rng.uniform(0.5, 2.5) ** 2] = 8.0
    return torch.from_numpy(logits), torch.from_numpy(targets)


def bench_metrics(args: argparse.Namespace, input_size: int) -> dict:
    """``IRSTDMetrics`` (built by ``build_metrics(cfg.metrics)``: ``--override metrics.extra=[...]``
    adds extras) update + compute images/s; with ``--metrics-reference PY`` also PyIRSTDMetrics.

    Arguments:
      args (argparse.Namespace): the flags.
      input_size (int): side of the predictions.
    Returns:
      dict: ``images``, ``side``, ``batch_size``, ``extra``, ``images_per_s``, ``values`` and,
      with a reference, ``reference_images_per_s`` and ``largest_difference``.
    """
    from irsam.metrics import build_metrics

    cfg = compose(args.override)
    logits, targets = metric_data(args.metric_images, input_size)
    batch = max(args.batch_sizes)
    values: dict[str, float] = {}

    def run() -> None:
        """Score every prediction in batches, then compute (or report, with extras)."""
        metric = build_metrics(cfg.metrics)
        for start in range(0, logits.shape[0], batch):
            metric.update(logits[start : start + batch], targets[start : start + batch])
        scalars = metric.report()["scalars"] if metric.extra else metric.compute()
        values.update({key: float(value) for key, value in scalars.items()})

    seconds = time_calls(run, args.warmup, args.repeats, "cpu")["median_s"]
    result = {
        "images": args.metric_images,
        "side": input_size,
        "batch_size": batch,
        "extra": list(cfg.metrics.extra),
        "images_per_s": round(args.metric_images / seconds, 1),
        "values": values,
    }
    if args.metrics_reference:
        bins = int(cfg.metrics.get("curve_bins", 256))
        ref_seconds, ref = _reference_metrics(logits, targets, args.metrics_reference, bins)
        common = [key for key in ref if key in values]
        result["reference_images_per_s"] = round(args.metric_images / ref_seconds, 2)
        result["largest_difference"] = max((abs(values[k] - ref[k]) for k in common), default=None)
    return result


REFERENCE_KEYS = {
    **{k: k for k in ("seg_mrg_err", "seg_itf_err", "seg_pcp_err", "loc_s2m_err", "loc_m2s_err")},
    "loc_itf_err": "loc_itf_err",
    "loc_pcp_err": "loc_pcp_err",
    "seg_iou": "seg_IoU",
    "loc_iou": "loc_IoU",
    "pd_opdc": "Pd_OPDC",
    "fa_opdc": "Fa_OPDC",
    "iou": "IoU",
    "niou": "nIoU",
    "f1": "F1",
    "pd_dist": "Pd",
    "fa_dist": "Fa",
    "hiou_opdc": "hIoU",
    "pd_shoot": "Pd_shoot",
    "fa_shoot": "Fa_shoot",
}
"""PyIRSTDMetrics output key (tests/metrics/reference/pyirstd_reference.py) → our scalar name."""


def _reference_metrics(
    logits: torch.Tensor, targets: torch.Tensor, python: str, bins: int
) -> tuple[float, dict]:
    """PyIRSTDMetrics 1.0.2 on the same images, one thread, in the interpreter ``python``.

    Returns:
      tuple[float, dict]: seconds in its ``update`` calls, and its values under our names.
    """
    script = ROOT / "tests" / "metrics" / "reference" / "pyirstd_reference.py"
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cases.npz"
        arrays = {}
        for k in range(logits.shape[0]):
            arrays[f"prob_{k}"] = torch.sigmoid(logits[k, 0].double()).numpy()
            arrays[f"mask_{k}"] = targets[k, 0].numpy() > 127
        np.savez(path, **arrays)
        done = subprocess.run(
            [python, str(script), str(path), "--bins", str(bins), "--time"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"--metrics-reference {python} failed: {done.stderr[-1000:]}")
    out = json.loads(done.stdout)
    return out["seconds"], {ours: out[key] for key, ours in REFERENCE_KEYS.items() if key in out}


def environment(device: str) -> dict[str, Any]:
    """Hardware and library versions."""
    import hydra
    import lightning

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    env = {
        "cpu": cpu,
        "cpu_cores": os.cpu_count(),
        "cpu_cores_usable": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else None,
        "torch_threads": torch.get_num_threads(),
        "load_average": [round(x, 2) for x in os.getloadavg()]
        if hasattr(os, "getloadavg")
        else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "hydra": hydra.__version__,
        "platform": platform.platform(),
        "gpu": None,
    }
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        env.update(
            gpu=props.name,
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
        )
    return env


def table(columns: str, records: list[dict[str, Any]]) -> str:
    """A Markdown table of ``records``; ``columns`` is ``"key:title key:title ..."`` (``_`` in a
    title is a space)."""
    pairs = [item.split(":") for item in columns.split()]
    lines = [
        "| " + " | ".join(t.replace("_", " ") for _, t in pairs) + " |",
        "|---" * len(pairs) + "|",
    ]
    for record in records:
        cells = ["" if record.get(k) is None else str(record.get(k)) for k, _ in pairs]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


MODEL_COLUMNS = (
    "section:section input_size:input image_size:internal precision:precision compile:compile "
    "channels_last:channels-last peft:peft batch_size:batch images_per_s:images/s "
    "batch_ms:ms/batch latency_ms_per_image:ms/image first_call_s:first_call_s "
    "peak_mib:peak_MiB saved_mib_per_image:saved_activations_MiB/image error:error"
)
MAX_BATCH_COLUMNS = (
    "model:model input_size:input image_size:internal precision:precision largest:largest "
    "peak_mib:peak_MiB limit:search_limit bounded_by_limit:limit_reached"
)
DATA_COLUMNS = (
    "workers:workers cache_images:cache persistent_workers:persistent batch_size:batch "
    "epoch_ms:epoch_ms images_per_s:images/s"
)


def summary(report: dict) -> dict[str, Any]:
    """Best training / inference rows, and whether the loader keeps up with the training step."""
    rows = [r for config in report["configs"] for r in config["rows"] if not r["error"]]
    out: dict[str, Any] = {}
    for section in ("train", "infer"):
        chosen = [r for r in rows if r["section"] == section]
        if chosen:
            out[f"best_{section}"] = max(chosen, key=lambda r: r["images_per_s"])
    data = report["sections"].get("data")
    if data and "best_train" in out:
        loader = max(r["images_per_s"] for r in data["rows"])
        train = out["best_train"]["images_per_s"]
        out["loader_vs_train"] = {
            "loader_images_per_s": loader,
            "train_images_per_s": train,
            "keeps_up": loader >= train,
        }
    return out


def render_markdown(report: dict) -> str:
    """The Markdown report."""
    env = report["environment"]
    parts = [
        f"# IRSAM benchmark ({report['date']})\n",
        f"- command: `{report['command']}`",
        (
            f"- CPU: {env['cpu']}, {env['cpu_cores']} cores ({env['cpu_cores_usable']} usable), "
            f"{env['torch_threads']} torch threads, load average {env['load_average']} at start"
        ),
        f"- GPU: {env['gpu'] or 'none'}"
        + (f" ({env['gpu_memory_gib']} GiB, CUDA {env['cuda']})" if env["gpu"] else ""),
        (
            f"- software: Python {env['python']}, torch {env['torch']}, "
            f"lightning {env['lightning']}, hydra {env['hydra']}"
        ),
        (
            f"- model `{report['settings']['model']}`, random init; timings: median of "
            f"{report['settings']['repeats']} after {report['settings']['warmup']} warm-up\n"
        ),
    ]
    if report["configs"]:
        parts.append("## Training step and inference\n")
        parts.append(
            "train = `training_step` + backward + `configure_optimizers()` step; infer = eval "
            "forward under `inference_mode`. Peak memory is absolute (weights, optimiser state, "
            "activations).\n"
        )
        parts.append(table(MODEL_COLUMNS, [r for c in report["configs"] for r in c["rows"]]))
        first = report["configs"][0]
        parts.append(
            f"\nParameters: {first['params']['total'] / 1e6:.2f} M total, "
            f"{first['params']['trainable'] / 1e6:.2f} M trainable; optimiser state "
            f"{first['optimizer_state_mib']} MiB.\n"
        )
    sections = report["sections"]
    if sections.get("max_batch"):
        parts.append("\n## Largest training batch (eager, doubling then bisection)\n")
        parts.append(table(MAX_BATCH_COLUMNS, sections["max_batch"]))
    if sections.get("data"):
        data = sections["data"]
        parts.append(f"\n## Data loader ({data['images']} training images, {data['root']})\n")
        parts.append(table(DATA_COLUMNS, data["rows"]))
    if sections.get("metrics"):
        m = sections["metrics"]
        ref = (
            f", PyIRSTDMetrics {m['reference_images_per_s']} images/s (largest difference "
            f"{m['largest_difference']})"
            if "reference_images_per_s" in m
            else ""
        )
        parts.append(
            f"\n## Metrics\n\n`IRSTDMetrics` (extra {m['extra']}): {m['images_per_s']} images/s "
            f"on {m['images']} predictions of {m['side']}², batch {m['batch_size']}{ref}.\n"
        )
    keep = report["summary"].get("loader_vs_train")
    if keep:
        parts.append(
            f"\n## Does the loader keep up?\n\nBest loader {keep['loader_images_per_s']} images/s "
            f"vs best training step {keep['train_images_per_s']} images/s: "
            f"{'yes' if keep['keeps_up'] else 'no'}.\n"
        )
    parts.append(f"\nWall time: {report['wall_s']} s.\n")
    return "\n".join(parts)


def write(report: dict, out: Path) -> None:
    """Write ``benchmark.json`` and ``benchmark.md`` atomically."""
    from irsam.utils import atomic_write_bytes

    report["summary"] = summary(report)
    report["wall_s"] = round(time.perf_counter() - report.pop("_start"), 1)
    atomic_write_bytes(out / "benchmark.json", (json.dumps(report, indent=2) + "\n").encode())
    atomic_write_bytes(out / "benchmark.md", render_markdown(report).encode())
    report["_start"] = time.perf_counter() - report["wall_s"]


def _list(kind: Callable[[str], Any], choices: tuple[str, ...] | None = None) -> Callable:
    """An argparse type for comma-separated values."""

    def parse(text: str) -> list[Any]:
        items = [part.strip() for part in text.split(",") if part.strip()]
        if not items or (choices and set(items) - set(choices)):
            raise argparse.ArgumentTypeError(f"expected a comma list of {choices or kind.__name__}")
        return [kind(item) for item in items]

    return parse


def _switch(text: str) -> bool:
    """``on``/``off`` (also true/false, 1/0)."""
    if text.lower() not in ("on", "off", "true", "false", "1", "0"):
        raise argparse.ArgumentTypeError(f"expected on or off, got {text!r}")
    return text.lower() in ("on", "true", "1")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command-line flags (lists are comma-separated; sizes pair up, one value broadcasts)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="irsam_tiny", help="conf/model/ name")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--input-size", type=_list(int), default=[128], help="loader sides, e.g. 512")
    p.add_argument("--image-size", type=_list(int), default=None, help="internal sides (= input)")
    p.add_argument("--batch-sizes", type=_list(int), default=[1, 4], help="e.g. 1,8,64")
    p.add_argument("--precision", type=_list(str, PRECISIONS), default=["fp32"], help="fp32,bf16")
    p.add_argument("--compile", type=_list(_switch), default=[False], help="off,on")
    p.add_argument("--channels-last", type=_list(_switch), default=[False], help="off,on")
    p.add_argument("--peft", default=None, help="conf/peft/ name, e.g. lora (trainable params)")
    p.add_argument("--sections", type=_list(str, SECTIONS), default=list(SECTIONS))
    p.add_argument("--max-batch", action="store_true", help="search the largest training batch")
    p.add_argument(
        "--max-batch-limit", type=int, default=0, help="search bound (0: cuda 4096, cpu 4)"
    )
    p.add_argument("--repeats", type=int, default=3, help="timed calls (median)")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls first")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    p.add_argument("--workers", type=_list(int), default=[0, 2], help="data loader workers")
    p.add_argument("--cache", type=_list(_switch), default=[False, True], help="image cache off,on")
    p.add_argument("--data-root", type=Path, default=None, help="NUDT-SIRST layout folder")
    p.add_argument("--data-images", type=int, default=16, help="synthetic PNG images (no root)")
    p.add_argument("--data-epochs", type=int, default=0, help="timed epochs (0 = repeats)")
    p.add_argument("--data-batch-size", type=int, default=0, help="loader batch (0 = largest)")
    p.add_argument("--metric-images", type=int, default=100, help="predictions scored")
    p.add_argument("--metrics-reference", default=None, help="Python with pyirstdmetrics")
    p.add_argument("--override", action="append", default=[], help="Hydra override (repeatable)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out", help="output folder")
    args = p.parse_args(argv)
    images = args.image_size or args.input_size
    if len(images) != len(args.input_size) and 1 not in (len(images), len(args.input_size)):
        p.error("--input-size and --image-size need the same number of values (or one)")
    count = max(len(images), len(args.input_size))
    inputs = args.input_size * (count // len(args.input_size))
    args.sizes = list(zip(inputs, images * (count // len(images)), strict=True))
    return args


def main(argv: list[str] | None = None) -> dict:
    """Run the selected sections and write the reports.

    Arguments:
      argv (list[str] | None): flags (None = ``sys.argv[1:]``).
    Returns:
      dict: the JSON report.
    """
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=".*self.trainer.* reference is not registered.*")
    report: dict[str, Any] = {
        "_start": time.perf_counter(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": " ".join(["python", *sys.argv]) if argv is None else " ".join(argv),
        "settings": {k: v for k, v in vars(args).items() if k != "sizes"} | {"sizes": args.sizes},
        "environment": environment(args.device),
        "configs": [],
        "sections": {},
    }
    report["settings"] = json.loads(json.dumps(report["settings"], default=str))
    if {"train", "infer"} & set(args.sections):
        for sizes, precision, compiled, channels_last in itertools.product(
            args.sizes, args.precision, args.compile, args.channels_last
        ):
            options = {
                "precision": precision,
                "compile": compiled,
                "channels_last": channels_last,
                "peft": args.peft or "none",
            }
            report["configs"].append(bench_model(args, sizes, options))
            release(args.device)
            write(report, args.out)
    if args.max_batch:
        report["sections"]["max_batch"] = []
        for sizes, precision in itertools.product(args.sizes, args.precision):
            report["sections"]["max_batch"].append(largest_batch(args, sizes, precision))
            release(args.device)
            write(report, args.out)
    if "data" in args.sections:
        report["sections"]["data"] = bench_data(args, args.sizes[0][0])
        write(report, args.out)
    if "metrics" in args.sections:
        report["sections"]["metrics"] = bench_metrics(args, args.sizes[0][0])
    write(report, args.out)
    report.pop("_start")
    print(f"wrote {args.out}/benchmark.json and benchmark.md in {report['wall_s']} s")
    return report


if __name__ == "__main__":
    main()
