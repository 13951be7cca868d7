# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Speed and agreement of the one-shot modes, side by side in one run (docs/oneshot.md,
"Fast mode").

Every mode segments the same sequences with the same backbone (a MobileSAM-layout TinyViT with
seeded random weights unless ``--checkpoint`` is given). Reported per mode: frames/s, the mask
IoU against ``oneshot=faithful`` (pixels of both masks over pixels of either, over all frames),
the fraction of frames whose mask equals faithful's, the correlation of the confidence maps and
the share of faithful's peaks found again, and IoU / Pd / Fa against the ground truth
(:class:`irsam.metrics.IRSTDMetrics`, macro average over sequences)::

    python benchmarks/oneshot_speed.py --image-size 256 --size 128 --sequences 2 --frames 4

``--image-size`` is the backbone's own encoder input S (1024 for real MobileSAM); the fast modes
encode at S/4 (``--fast-size``). On a CPU, S = 1024 costs seconds per encoder pass, so smaller S
keep the faithful mode measurable; the ratio of fast to faithful work per pass is the same.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from irsam.data.io import list_images, read_image, read_mask
from irsam.oneshot import OneShotConfig, OneShotSegmenter, build_backbone
from irsam.oneshot.sequence import macro_average

MODES = ("faithful", "code", "fast", "fast_frame")
"""Modes compared: the three presets of ``conf/oneshot/`` and the whole-frame fast ablation."""


def seeded_mobile_sam_state(seed: int = 0, encoder_size: int = 1024) -> dict[str, torch.Tensor]:
    """A state dict in the layout of ``mobile_sam.pt`` with seeded random values.

    Weights are drawn N(0, 0.05) (vectors N(0, 0.2)), BatchNorm variances U(0.5, 1.5); the
    ImageNet head the real file carries (``image_encoder.norm_head`` / ``head``) is included,
    so loading it exercises the same path as the real file.

    Arguments:
      seed (int): random seed.
      encoder_size (int): encoder input side the model is built for (the layout does not depend
        on it).
    Returns:
      dict[str, torch.Tensor]: parameter name → tensor.
    """
    from irsam.models import build_prompt_sam

    generator = torch.Generator().manual_seed(seed)
    state = build_prompt_sam(encoder="tiny", encoder_size=encoder_size).state_dict()
    for name, tensor in state.items():
        if not tensor.is_floating_point():
            continue
        if name.endswith("running_var"):
            tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
        else:
            std = 0.05 if tensor.ndim > 1 else 0.2
            tensor.copy_(torch.randn(tensor.shape, generator=generator) * std)
    state["image_encoder.norm_head.weight"] = torch.ones(320)
    state["image_encoder.norm_head.bias"] = torch.zeros(320)
    state["image_encoder.head.weight"] = torch.zeros(1000, 320)
    state["image_encoder.head.bias"] = torch.zeros(1000)
    return state


def mode_config(mode: str, fast_size: int, **overrides: Any) -> OneShotConfig:
    """The ``OneShotConfig`` of a mode, read from ``conf/oneshot/<preset>.yaml``.

    Arguments:
      mode (str): one of :data:`MODES`.
      fast_size (int): encoder input side of the fast modes (replaces the preset's 256).
      **overrides (Any): further field values (e.g. ``peak_min_distance`` for small frames).
    Returns:
      OneShotConfig: the configuration.
    """
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    preset = "fast" if mode == "fast_frame" else mode
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="oneshot", overrides=[f"oneshot={preset}"])
    values = OmegaConf.to_container(cfg.oneshot, resolve=True)
    if preset == "fast":
        values.update(lfm_encoder_size=fast_size, ppcf_encoder_size=fast_size)
    if mode == "fast_frame":
        values["lfm_source"] = "frame"
    values.update(overrides)
    return OneShotConfig.from_mapping(values)


@dataclass
class ModeResult:
    """Outcome of one mode over all sequences.

    Attributes:
      mode (str): the mode.
      frames (int): frames segmented (references excluded).
      seconds (float): segmentation time of those frames.
      masks (dict[str, list[np.ndarray]]): per sequence, the H×W bool masks in frame order.
      metrics (dict[str, float]): macro IoU / nIoU / Pd / Fa against the ground truth.
      passes (dict[int, int]): encoder input side → images encoded while segmenting the frames.
      outputs (list[tuple[torch.Tensor, list[torch.Tensor]]]): per frame, the K×H×W confidence
        maps and the per-window P×2 peaks.
    """

    mode: str
    frames: int
    seconds: float
    masks: dict[str, list[np.ndarray]]
    metrics: dict[str, float]
    passes: dict[int, int]
    outputs: list[tuple[torch.Tensor, list[torch.Tensor]]]

    @property
    def fps(self) -> float:
        """Frames per second."""
        return self.frames / max(self.seconds, 1e-9)


def run_mode(
    segmenter: OneShotSegmenter, sequences: dict[str, tuple[list[Path], list[Path]]]
) -> tuple[int, float, dict[str, list[np.ndarray]], dict[str, float], dict[int, int], list]:
    """Fit on frame 0's ground truth, segment the other frames, score them.

    Arguments:
      segmenter (OneShotSegmenter): the configured segmenter.
      sequences (dict[str, tuple[list[Path], list[Path]]]): name → (frames, masks).
    Returns:
      tuple: frames segmented, seconds, masks per sequence, macro metrics, the images
      encoded per input side while segmenting (reference fits excluded), and per frame the
      confidence maps and peaks.
    """
    from irsam.metrics import IRSTDMetrics

    backbone, passes, counting = segmenter.backbone, {}, [False]
    encode = backbone.encode

    def counted(x: torch.Tensor) -> torch.Tensor:
        if counting[0]:
            passes[int(x.shape[-1])] = passes.get(int(x.shape[-1]), 0) + int(x.shape[0])
        return encode(x)

    backbone.encode = counted  # instance attribute, removed below
    frames_done, seconds, masks, rows, outputs = 0, 0.0, {}, [], []
    for name, (frames, gts) in sequences.items():
        counting[0] = False
        segmenter.fit_reference(read_image(frames[0]), read_mask(gts[0]))
        counting[0] = True
        metric, masks[name] = IRSTDMetrics(), []
        for frame, gt in zip(frames[1:], gts[1:]):
            image = read_image(frame)
            start = time.perf_counter()
            out = segmenter.predict(image)
            seconds += time.perf_counter() - start
            mask = out.mask.numpy()
            outputs.append((out.conf_maps, out.peaks))
            frames_done += 1
            masks[name].append(mask)
            logits = torch.from_numpy(mask.astype(np.float32) * 2 - 1)[None, None]
            metric.update(logits, torch.from_numpy(read_mask(gt))[None, None])
        rows.append({k: float(v) for k, v in metric.compute().items()})
    del backbone.encode
    return frames_done, seconds, masks, macro_average(rows), passes, outputs


def map_agreement(a: ModeResult, b: ModeResult, radius: float = 3.0) -> tuple[float, float]:
    """Agreement of the LFM stage: mean Pearson correlation of the confidence maps, and the
    fraction of ``b``'s peaks with a peak of ``a`` (same window) within ``radius`` px.

    Arguments:
      a (ModeResult): one mode.
      b (ModeResult): the reference mode (same frames).
      radius (float): peak match distance in pixels.
    Returns:
      tuple[float, float]: (correlation, matched peak fraction; 1 when ``b`` has no peak).
    """
    correlations, matched, total = [], 0, 0
    for (conf_a, peaks_a), (conf_b, peaks_b) in zip(a.outputs, b.outputs):
        for k in range(conf_b.shape[0]):
            x, y = conf_a[k].flatten().double(), conf_b[k].flatten().double()
            x, y = x - x.mean(), y - y.mean()
            correlations.append(float((x * y).sum() / (x.norm() * y.norm()).clamp_min(1e-12)))
            for peak in peaks_b[k].float():
                total += 1
                if len(peaks_a[k]) and (peaks_a[k].float() - peak).norm(dim=1).min() <= radius:
                    matched += 1
    return float(np.mean(correlations)), (matched / total if total else 1.0)


def pass_cost(sides: list[int], seed: int = 0, batch: int = 4) -> dict[int, float]:
    """Seconds per image of one TinyViT encoder pass at each input side (median of 3).

    Arguments:
      sides (list[int]): input sides, e.g. [1024, 256].
      seed (int): seed of the random weights (the cost does not depend on them).
      batch (int): images per timed call.
    Returns:
      dict[int, float]: side → seconds per image.
    """
    from irsam.models import build_prompt_sam

    costs = {}
    for side in sides:
        encoder = build_prompt_sam(encoder="tiny", encoder_size=side).image_encoder.eval()
        x = torch.randn(batch, 3, side, side, generator=torch.Generator().manual_seed(seed))
        times = []
        with torch.inference_mode():
            encoder(x[:1])
            for _ in range(3):
                start = time.perf_counter()
                encoder(x)
                times.append((time.perf_counter() - start) / batch)
        costs[side] = sorted(times)[1]
    return costs


def agreement(
    a: dict[str, list[np.ndarray]], b: dict[str, list[np.ndarray]]
) -> tuple[float, float]:
    """Mask IoU (over all frames pooled) and the fraction of identical masks.

    Arguments:
      a (dict[str, list[np.ndarray]]): masks of one mode.
      b (dict[str, list[np.ndarray]]): masks of the reference mode, same layout.
    Returns:
      tuple[float, float]: (IoU, equal fraction); IoU is 1 when both are empty everywhere.
    """
    inter = union = equal = count = 0
    for name, masks in a.items():
        for x, y in zip(masks, b[name]):
            inter += int((x & y).sum())
            union += int((x | y).sum())
            equal += int(np.array_equal(x, y))
            count += 1
    return (inter / union if union else 1.0), equal / max(count, 1)


def load_sequences(root: Path) -> dict[str, tuple[list[Path], list[Path]]]:
    """``root/images/<seq>/`` and ``root/masks/<seq>/`` (as written by the benchmark generator)."""
    out = {}
    for folder in sorted(p for p in (root / "images").iterdir() if p.is_dir()):
        frames = list_images(folder)
        masks = [root / "masks" / folder.name / f.name for f in frames]
        out[folder.name] = (frames, masks)
    return out


def main(argv: list[str] | None = None) -> int:
    """Print the side-by-side Markdown table.

    Arguments:
      argv (list[str] | None): command-line arguments (None: ``sys.argv``).
    Returns:
      int: 0.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=os.environ.get("IRSAM_SHARED_DATA"))
    parser.add_argument("--bench", default=None, help="an existing benchmark set (images/, masks/)")
    parser.add_argument("--sequences", type=int, default=2, help="sequences generated")
    parser.add_argument("--frames", type=int, default=4, help="frames per sequence")
    parser.add_argument("--size", type=int, default=128, help="frame side")
    parser.add_argument("--image-size", type=int, default=256, help="backbone encoder input S")
    parser.add_argument("--fast-size", type=int, default=0, help="fast encoder input (0: S/4)")
    parser.add_argument("--checkpoint", default=None, help="mobile_sam.pt (default: seeded)")
    parser.add_argument("--modes", default=",".join(MODES), help="comma list of modes")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument(
        "--max-area-px",
        type=float,
        default=51.84,
        help="TLE area cap in pixels (default 51.84: the authors' 1.5e-4 of a 480x720 frame; "
        "the ratio alone would be 2.5 px at 128²); 0 disables",
    )
    parser.add_argument(
        "--project-to",
        type=int,
        default=1024,
        help="also time one encoder pass at this side and at a quarter of it, and project "
        "seconds per frame from the measured pass counts (0: skip)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {
        "max_area_ratio": args.max_area_px / args.size**2 if args.max_area_px else None
    }
    if args.threads:
        torch.set_num_threads(args.threads)
    fast_size = args.fast_size or args.image_size // 4
    with tempfile.TemporaryDirectory() as tmp:
        if args.bench:
            root = Path(args.bench)
        else:
            from irsam.oneshot.real_sequence import write_real_benchmark

            if args.data_root is None:
                parser.error("set --data-root (or IRSAM_SHARED_DATA), or --bench.")
            root = write_real_benchmark(
                args.data_root,
                Path(tmp) / "bench",
                num_sequences=args.sequences,
                num_frames=args.frames,
                size=args.size,
                seed=args.seed,
            )
        checkpoint = args.checkpoint
        if checkpoint is None:
            checkpoint = str(Path(tmp) / "mobile_sam.pt")
            torch.save(seeded_mobile_sam_state(args.seed, args.image_size), checkpoint)
        backbone = build_backbone(
            encoder="tiny", checkpoint=checkpoint, encoder_size=args.image_size, device="cpu"
        )
        sequences = load_sequences(root)
        results: dict[str, ModeResult] = {}
        for mode in args.modes.split(","):
            cfg = mode_config(mode, fast_size, **overrides)
            frames, seconds, masks, metrics, passes, outputs = run_mode(
                OneShotSegmenter(backbone, cfg), sequences
            )
            results[mode] = ModeResult(mode, frames, seconds, masks, metrics, passes, outputs)
            print(f"# {mode}: {frames} frames in {seconds:.1f} s", flush=True)
    base = results.get("faithful")
    weights = "seeded random" if args.checkpoint is None else args.checkpoint
    print(
        f"\nbackbone: TinyViT (MobileSAM layout, {weights}), S = {args.image_size}, fast input "
        f"{fast_size}; frames {args.size}², {len(sequences)} sequences x {args.frames - 1} "
        f"scored frames; torch threads {torch.get_num_threads()}\n"
    )
    costs: dict[int, float] = {}
    if args.project_to:
        costs = pass_cost([args.project_to, args.project_to // 4], args.seed)
    scale = {args.image_size: args.project_to, fast_size: args.project_to // 4}
    header = "| mode | frames/s | x faithful | encoder passes/frame | conf-map corr. vs faithful "
    header += "| peaks matched (3 px) | mask IoU vs faithful "
    header += "| equal masks | IoU | Pd | Fa (1e-6) |"
    if costs:
        header += f" projected s/frame at S = {args.project_to} | projected x faithful |"
    print(header)
    print("|---" * (header.count("|") - 1) + "|")

    def projected(r: ModeResult) -> float:
        return sum(n * costs[scale[side]] for side, n in r.passes.items()) / max(r.frames, 1)

    for mode, r in results.items():
        speedup = r.fps / base.fps if base else float("nan")
        iou, equal = agreement(r.masks, base.masks) if base else (float("nan"),) * 2
        corr, peaks = map_agreement(r, base) if base else (float("nan"),) * 2
        per_frame = ", ".join(
            f"{n / max(r.frames, 1):.0f}@{side}" for side, n in sorted(r.passes.items())
        )
        m = r.metrics
        row = (
            f"| {mode} | {r.fps:.3f} | {speedup:.1f} | {per_frame} | {corr:.3f} | {peaks:.2f} | "
            f"{iou:.3f} | {equal:.2f} | "
            f"{100 * m['IoU']:.2f} | {100 * m['Pd']:.2f} | {1e6 * m['Fa']:.1f} |"
        )
        if costs:
            ratio = projected(base) / projected(r) if base else float("nan")
            row += f" {projected(r):.1f} | {ratio:.1f} |"
        print(row)
    if costs:
        print(
            "\nencoder pass (s/image, TinyViT, batch 4): "
            + ", ".join(f"{side}: {cost:.3f}" for side, cost in costs.items())
            + "; projection = measured passes per frame x these costs (encoder time only)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
