# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Segment folders of frames and score them (IRDST protocol, docs/oneshot.md, "Evaluation").

One sequence = one folder of frames. The reference is one frame of it (the first by default) or
an image from elsewhere (cross-sequence, Table VI). Every frame is segmented, the reference
included; with ground truth the reference is excluded from the scores unless
``include_reference``. Per sequence, IoU / nIoU / Pd / Fa are accumulated over its frames with
:class:`irsam.metrics.IRSTDMetrics`; over several sequences the unweighted (macro) mean is
reported.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from irsam.data.io import ImageReadError, read_image, read_mask, write_png
from irsam.data.layouts import collect_samples
from irsam.oneshot.annotations import Annotation, mask_to_annotation
from irsam.oneshot.segmenter import OneShotSegmenter, ReferenceState
from irsam.outputs import write_prediction
from irsam.utils import get_logger
from irsam.utils.atomic import atomic_write_bytes
from irsam.utils.errors import ConfigError

log = get_logger(__name__)

METRIC_KEYS = ("IoU", "nIoU", "Pd", "Fa")


@dataclass
class SequenceResult:
    """Outcome of one sequence.

    Attributes:
      name (str): sequence name (folder name).
      frames (int): frames segmented.
      scored (int): frames scored against ground truth (0 without ground truth).
      seconds (float): time spent in the segmenter (reference fit excluded).
      metrics (dict[str, float]): IoU, nIoU, Pd, Fa (fractions; Fa a raw ratio), empty without
        ground truth.
      skipped (list[str]): names of frames that could not be read (``on_error=skip``).
    """

    name: str
    frames: int
    scored: int
    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        """Frames per second of the segmenter."""
        return self.frames / max(self.seconds, 1e-9)


def resolve_reference(frames: list[Path], reference: str | None, index: int) -> Path:
    """Pick the reference frame.

    Arguments:
      frames (list[Path]): the sequence's frames, sorted.
      reference (str | None): a frame name or stem in the sequence, or a path to an image file;
        None selects ``frames[index]``.
      index (int): 0-based index used when ``reference`` is None.
    Returns:
      Path: the reference image file.
    """
    if reference is None:
        if not -len(frames) <= index < len(frames):
            raise ConfigError(f"reference_index={index} is outside the {len(frames)} frames.")
        return frames[index]
    for path in frames:
        if reference in (path.name, path.stem):
            return path
    if Path(reference).is_file():
        return Path(reference)
    raise ConfigError(
        f"reference={reference!r} is neither a frame of the sequence ({frames[0].parent}) nor an "
        "image file."
    )


def macro_average(rows: list[dict[str, float]]) -> dict[str, float]:
    """Unweighted mean over sequences of each metric (NaN entries, e.g. Pd of a sequence
    without targets, are skipped with a warning).

    Arguments:
      rows (list[dict[str, float]]): per-sequence metric dicts.
    Returns:
      dict[str, float]: metric → macro average (NaN when no sequence has a value).
    """
    result = {}
    for key in METRIC_KEYS:
        values = [float(r[key]) for r in rows if key in r]
        finite = [v for v in values if not math.isnan(v)]
        if len(finite) < len(values):
            log.warning(
                "%s is NaN for %d sequence(s); macro average over the others",
                key,
                len(values) - len(finite),
            )
        result[key] = float(np.mean(finite)) if finite else float("nan")
    return result


def write_metrics(
    output: Path, results: list[SequenceResult], macro: dict[str, float] | None
) -> None:
    """Write ``metrics.json`` and ``metrics.csv`` (one row per sequence, plus ``macro``).

    Arguments:
      output (Path): output folder.
      results (list[SequenceResult]): scored sequences.
      macro (dict[str, float] | None): macro average (written when not None).
    """
    payload: dict[str, Any] = {
        "units": "IoU, nIoU, Pd: fractions; Fa: false-alarm pixels / pixels (raw ratio)",
        "sequences": {
            r.name: {
                **r.metrics,
                "frames": r.frames,
                "scored_frames": r.scored,
                "fps": r.fps,
                "skipped_frames": r.skipped,
            }
            for r in results
        },
    }
    if macro is not None:
        payload["macro"] = macro
    atomic_write_bytes(output / "metrics.json", json.dumps(payload, indent=2).encode())
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["sequence", *METRIC_KEYS, "frames", "scored_frames"])
    for r in results:
        writer.writerow([r.name, *(r.metrics.get(k, "") for k in METRIC_KEYS), r.frames, r.scored])
    if macro is not None:
        writer.writerow(["macro", *(macro[k] for k in METRIC_KEYS), "", ""])
    atomic_write_bytes(output / "metrics.csv", buffer.getvalue().encode())


def run_sequence(
    segmenter: OneShotSegmenter,
    frames_dir: str | os.PathLike,
    output: str | os.PathLike,
    *,
    annotation: Annotation | None = None,
    reference: str | None = None,
    reference_index: int = 0,
    reference_state: str | os.PathLike | None = None,
    annotation_kind: str = "mask",
    gt_dir: str | os.PathLike | None = None,
    include_reference: bool = False,
    fa_rule: str = "component",
    save_overlays: bool = True,
    save_conf_maps: bool = False,
    progress: bool = True,
    on_error: str = "skip",
) -> SequenceResult:
    """Fit the reference, segment every frame of a folder, write masks and optionally score.

    Outputs under ``output``: ``masks/<stem>.png`` (0/255), ``overlays/<stem>.png``,
    ``conf_maps/<stem>.png`` (mean LFM map, [-1, 1] → 0–255), ``reference_state.pt``.

    Arguments:
      segmenter (OneShotSegmenter): the segmenter.
      frames_dir (str | PathLike): folder of frames, sorted by name.
      output (str | PathLike): output folder.
      annotation (Annotation | None): reference annotation; None takes the ground-truth mask of
        the reference frame (needs ``gt_dir``), converted by ``annotation_kind``.
      reference (str | None): reference frame name/stem, or an image path (cross-sequence).
      reference_index (int): reference frame index when ``reference`` is None.
      reference_state (str | PathLike | None): a saved :class:`ReferenceState` to use instead of
        fitting (then every frame is scored: the reference frame is unknown).
      annotation_kind (str): ``mask``, ``point`` or ``box`` derived from the ground truth.
      gt_dir (str | PathLike | None): folder of ground-truth masks (same stems) for scoring.
      include_reference (bool): also score the reference frame.
      fa_rule (str): ``component`` or ``legacy_area`` (see :mod:`irsam.metrics`).
      save_overlays (bool): write colour overlays.
      save_conf_maps (bool): write confidence maps.
      progress (bool): show a progress bar.
      on_error (str): a frame that cannot be decoded: ``skip`` (warning, listed in
        ``SequenceResult.skipped``) or ``stop`` (raise). A bad reference frame always raises.
    Returns:
      SequenceResult: counts, timing and metrics.
    """
    if on_error not in ("skip", "stop"):
        raise ConfigError(f"on_error={on_error!r} is not one of skip, stop.")
    frames_dir, output = Path(frames_dir), Path(output)
    gt_dir = Path(gt_dir) if gt_dir is not None else None
    samples = collect_samples(frames_dir, gt_dir, require_masks=False)
    frames = [sample.image_path for sample in samples]
    gt_of = {sample.image_path: sample.mask_path for sample in samples}
    if reference_state is not None:
        segmenter.load_reference(ReferenceState.load(reference_state))
        ref_path = None
    else:
        ref_path = resolve_reference(frames, reference, reference_index)
        if annotation is None:
            ref_gt = gt_of.get(ref_path)
            if ref_gt is None:
                raise ConfigError(
                    f"no annotation given and no ground-truth mask for {ref_path.name}: pass "
                    "annotation=<mask file | x,y | x1,y1,x2,y2> or gt=<mask folder>."
                )
            annotation = mask_to_annotation(read_mask(ref_gt), annotation_kind)
        segmenter.fit_reference(read_image(ref_path), annotation)
        segmenter.reference.save(output / "reference_state.pt")
    metrics = None
    if gt_dir is not None:
        from irsam.metrics import IRSTDMetrics

        metrics = IRSTDMetrics(fa_rule=fa_rule)
    seconds, scored, skipped = 0.0, 0, []
    bar = tqdm(frames, desc=frames_dir.name, disable=not progress, unit="frame")
    for path in bar:
        try:
            image = read_image(path)
        except ImageReadError as err:
            if on_error == "stop":
                raise
            log.warning("skipping frame %s: %s", path.name, err)
            skipped.append(path.name)
            continue
        start = time.perf_counter()
        out = segmenter.predict(image)
        seconds += time.perf_counter() - start
        mask = out.mask.cpu().numpy()
        gt = None
        if gt_dir is not None:
            gt_path = gt_of[path]
            if gt_path is None:
                log.warning("%s: no ground-truth mask in %s; frame not scored", path.name, gt_dir)
            else:
                gt = read_mask(gt_path).astype(bool)
                is_ref = ref_path is not None and path.resolve() == ref_path.resolve()
                if include_reference or not is_ref:
                    logits = torch.from_numpy(mask.astype(np.float32) * 2 - 1)[None, None]
                    metrics.update(logits, torch.from_numpy(gt.astype(np.uint8))[None, None])
                    scored += 1
        write_prediction(output, path.stem, image, mask, gt=gt, overlays=save_overlays)
        if save_conf_maps:
            conf = ((out.conf_maps.mean(0).clamp(-1, 1) + 1) * 127.5).round().byte().numpy()
            write_png(output / "conf_maps" / f"{path.stem}.png", conf)
    result = SequenceResult(frames_dir.name, len(frames) - len(skipped), scored, seconds)
    result.skipped = skipped
    if metrics is not None and scored:
        result.metrics = {k: float(v) for k, v in metrics.compute().items()}
    log.info(
        "%s: %d frames, %.3f frames/s%s%s",
        result.name,
        result.frames,
        result.fps,
        "".join(f", {k} {v:.4g}" for k, v in result.metrics.items()),
        f", {len(skipped)} unreadable frame(s) skipped: {skipped}" if skipped else "",
    )
    return result
