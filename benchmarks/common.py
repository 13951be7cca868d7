# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Shared benchmark helpers: settings, environment report, timing, peak memory, model/loss/batch
builders, one training step, and Markdown/JSON output."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from typing_extensions import Self

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from irsam.losses import CompositeLoss
from irsam.models import model_registry
from irsam.utils import atomic_write_bytes

PRECISIONS = ("fp32", "bf16")


@dataclass
class Settings:
    """Benchmark settings shared by every section (the command-line flags of ``run.py``).

    Arguments:
      model (str): ``irsam.models.model_registry`` key.
      device (str): ``cpu`` or ``cuda``.
      precision (str): ``fp32`` or ``bf16`` (autocast).
      compile (bool): wrap the model in ``torch.compile``.
      channels_last (bool): channels-last weights and encoder inputs.
      grad_checkpointing (bool): activation checkpointing in the encoder (training).
      fused_adamw (bool): ``AdamW(fused=True)`` instead of the foreach implementation.
      batch_sizes (list[int]): batch sizes tried by the train and inference sections.
      input_size (int): side of the square input images (loader resolution).
      model_image_size (int): internal encoder resolution S.
      repeats (int): timed repetitions (the median is reported).
      warmup (int): untimed repetitions before timing.
      workers (list[int]): DataLoader worker counts of the data section.
      threads (int): torch intra-op CPU threads (0 = PyTorch's default).
      data_images (int): images in the synthetic on-disk dataset of the data section.
      metric_images (int): predictions scored by the metrics section.
    """

    model: str = "irsam_tiny"
    device: str = "cpu"
    precision: str = "fp32"
    compile: bool = False
    channels_last: bool = False
    grad_checkpointing: bool = False
    fused_adamw: bool = False
    batch_sizes: list[int] = field(default_factory=lambda: [1, 4])
    input_size: int = 128
    model_image_size: int = 128
    repeats: int = 5
    warmup: int = 2
    workers: list[int] = field(default_factory=lambda: [0, 2])
    threads: int = 0
    data_images: int = 32
    metric_images: int = 200

    def as_dict(self) -> dict[str, Any]:
        """Plain-dict view for the JSON report.

        Returns:
          dict[str, Any]: field name → value.
        """
        return asdict(self)


def environment(device: str) -> dict[str, Any]:
    """Hardware and software description for the report.

    Arguments:
      device (str): ``cpu`` or ``cuda``; the GPU name is read only for ``cuda``.
    Returns:
      dict[str, Any]: CPU model, logical cores (total and usable), load average at call time,
      GPU name (or None), and the Python, torch, torchvision (if installed) and lightning versions.
    """
    cpu_model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = torch.cuda.get_device_name(0) if device == "cuda" and torch.cuda.is_available() else None
    try:
        import lightning

        lightning_version = lightning.__version__
    except ImportError:
        lightning_version = None
    return {
        "cpu_model": cpu_model,
        "cpu_cores": os.cpu_count(),
        "cpu_cores_usable": usable,
        "torch_threads": torch.get_num_threads(),
        "load_average_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "gpu": gpu,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning_version,
        "platform": platform.platform(),
    }


def synchronize(device: str) -> None:
    """Wait for queued GPU work (no-op on CPU), so wall-clock timings are complete.

    Arguments:
      device (str): ``cpu`` or ``cuda``.
    """
    if device == "cuda":
        torch.cuda.synchronize()


def time_repeats(fn: Callable[[], Any], *, warmup: int, repeats: int, device: str) -> list[float]:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times timed.

    Arguments:
      fn (Callable[[], Any]): the work to time.
      warmup (int): untimed calls.
      repeats (int): timed calls (≥ 1).
      device (str): ``cpu`` or ``cuda`` (GPU work is synchronised before reading the clock).
    Returns:
      list[float]: seconds per timed call.
    """
    assert repeats >= 1, f"repeats must be ≥ 1, got {repeats}"
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def median(values: Sequence[float]) -> float:
    """Median of a non-empty sequence.

    Arguments:
      values (Sequence[float]): the samples.
    Returns:
      float: the median.
    """
    return float(statistics.median(values))


def _current_rss() -> int | None:
    """Current resident set size in bytes from ``/proc/self/statm`` (None off Linux)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def _peak_rss() -> int:
    """Peak resident set size in bytes: ``VmHWM`` (resettable) on Linux, else ``ru_maxrss``."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _reset_peak_rss() -> bool:
    """Trim freed heap memory back to the OS and reset the peak-RSS high-water mark.

    Returns:
      bool: True when the mark was reset (Linux ≥ 4.0: ``5 > /proc/self/clear_refs``).
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class PeakMemory:
    """Context manager measuring the peak memory growth of the code inside it.

    GPU: ``torch.cuda.max_memory_allocated`` minus the allocation at entry (stats reset on
    entry). CPU: peak RSS minus RSS at entry. On Linux the high-water mark is reset on entry
    (after ``malloc_trim``), so each block is measured on its own; elsewhere the
    ``resource.getrusage`` peak can only grow, and the delta is a lower bound (``method`` says
    which applied). ``peak_bytes`` holds the result after exit.

    Arguments:
      device (str): ``cpu`` or ``cuda``.
    """

    def __init__(self, device: str) -> None:
        self.device = device
        self.peak_bytes = 0
        self.method = ""
        self._start = 0

    def __enter__(self) -> Self:
        """Reset the peak statistics and record the baseline."""
        gc.collect()
        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._start = torch.cuda.memory_allocated()
            self.method = "torch.cuda.max_memory_allocated"
            return self
        reset = _reset_peak_rss()
        current = _current_rss()
        self._start = current if current is not None else _peak_rss()
        self.method = (
            "peak RSS (VmHWM reset via clear_refs)" if reset else "resource.getrusage ru_maxrss"
        )
        return self

    def __exit__(self, *exc: object) -> None:
        """Read the peak and store the growth in ``peak_bytes``."""
        if self.device == "cuda":
            torch.cuda.synchronize()
            self.peak_bytes = torch.cuda.max_memory_allocated() - self._start
        else:
            self.peak_bytes = max(_peak_rss() - self._start, 0)


def build_model(
    name: str,
    *,
    image_size: int,
    device: str,
    channels_last: bool = False,
    grad_checkpointing: bool = False,
) -> nn.Module:
    """Build a registry model with random weights, on ``device``, in training mode.

    Arguments:
      name (str): ``model_registry`` key, e.g. ``irsam_tiny``.
      image_size (int): internal resolution S (multiple of 16).
      device (str): ``cpu`` or ``cuda``.
      channels_last (bool): channels-last weights and encoder inputs.
      grad_checkpointing (bool): activation checkpointing per encoder block.
    Returns:
      nn.Module: the IRSAM model.
    """
    assert name in model_registry, f"unknown model {name!r}; choose from {sorted(model_registry)}"
    torch.manual_seed(0)
    model = model_registry[name](
        image_size=image_size, channels_last=channels_last, grad_checkpointing=grad_checkpointing
    )
    return model.to(device)


def build_loss() -> CompositeLoss:
    """The IRSAM training loss of ``conf/loss/irsam.yaml`` (5·edge BCE + batch SoftIoU).

    Returns:
      CompositeLoss: built from the YAML with Hydra's ``instantiate``.
    """
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    return instantiate(OmegaConf.load(REPO_ROOT / "conf" / "loss" / "irsam.yaml"))


def synthetic_batch(batch_size: int, size: int, device: str, seed: int = 0) -> dict[str, Any]:
    """A random training batch in the DataModule's contract.

    Arguments:
      batch_size (int): B.
      size (int): side of the square images.
      device (str): where the tensors live.
      seed (int): generator seed.
    Returns:
      dict[str, Any]: ``"image"`` B×3×S×S float32 0–255 (grey repeated to RGB), ``"mask"`` and
      ``"edge"`` B×1×S×S float32 in {0, 1} (sparse, ≈ 0.5 % positive).
    """
    generator = torch.Generator().manual_seed(seed)
    grey = torch.rand(batch_size, 1, size, size, generator=generator) * 255.0
    mask = (torch.rand(batch_size, 1, size, size, generator=generator) < 0.005).float()
    edge = (torch.rand(batch_size, 1, size, size, generator=generator) < 0.005).float()
    return {
        "image": grey.repeat(1, 3, 1, 1).to(device),
        "mask": mask.to(device),
        "edge": edge.to(device),
    }


def build_optimizer(model: nn.Module, *, fused: bool) -> torch.optim.AdamW:
    """AdamW over the trainable parameters (IRSAM recipe: lr 1e-4, no weight decay).

    Arguments:
      model (nn.Module): the model.
      fused (bool): True = ``fused=True`` kernel; False = ``foreach=True``.
    Returns:
      torch.optim.AdamW: the optimiser.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if fused:
        return torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0, fused=True)
    return torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0, foreach=True)


def autocast(device: str, precision: str) -> contextlib.AbstractContextManager:
    """Autocast context for ``precision`` (``fp32`` = disabled, ``bf16`` = bfloat16 autocast).

    Arguments:
      device (str): ``cpu`` or ``cuda``.
      precision (str): ``fp32`` or ``bf16``.
    Returns:
      contextlib.AbstractContextManager: the context.
    """
    assert precision in PRECISIONS, f"precision must be one of {PRECISIONS}, got {precision!r}"
    return torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=precision == "bf16")


def train_step(
    model: nn.Module,
    loss_fn: CompositeLoss,
    optimizer: torch.optim.Optimizer,
    batch: dict[str, Any],
    *,
    device: str,
    precision: str,
) -> float:
    """One full training step: forward, IRSAM loss, backward, optimiser step.

    Arguments:
      model (nn.Module): the model (training mode).
      loss_fn (CompositeLoss): the loss.
      optimizer (torch.optim.Optimizer): the optimiser.
      batch (dict[str, Any]): from :func:`synthetic_batch`.
      device (str): ``cpu`` or ``cuda``.
      precision (str): ``fp32`` or ``bf16`` autocast for forward and loss.
    Returns:
      float: the loss value.
    """
    optimizer.zero_grad(set_to_none=True)
    with autocast(device, precision):
        outputs = model(batch["image"])
        loss, _ = loss_fn(outputs, batch)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Temporarily set the torch intra-op thread count (0 leaves it unchanged).

    Arguments:
      threads (int): threads to use inside the block.
    Returns:
      Iterator[None]: the context.
    """
    previous = torch.get_num_threads()
    if threads > 0:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def mib(num_bytes: float) -> float:
    """Bytes → MiB, rounded to 0.1.

    Arguments:
      num_bytes (float): a byte count.
    Returns:
      float: the size in MiB.
    """
    return round(num_bytes / 2**20, 1)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub Markdown table.

    Arguments:
      headers (Sequence[str]): column titles.
      rows (Sequence[Sequence[Any]]): cells (formatted with ``str``).
    Returns:
      str: the table, newline-terminated.
    """
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_report(out_dir: Path, stem: str, payload: dict[str, Any], markdown: str) -> list[Path]:
    """Write ``<stem>.json`` and ``<stem>.md`` atomically into ``out_dir``.

    Arguments:
      out_dir (Path): output folder (created).
      stem (str): file name without extension.
      payload (dict[str, Any]): JSON-serialisable results.
      markdown (str): the Markdown report.
    Returns:
      list[Path]: the two written paths.
    """
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    atomic_write_bytes(json_path, (json.dumps(payload, indent=2) + "\n").encode("utf-8"))
    atomic_write_bytes(md_path, markdown.encode("utf-8"))
    return [json_path, md_path]
