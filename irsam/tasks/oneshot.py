# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""One-shot task: the logic behind ``python oneshot.py ...`` (Hydra config ``conf/oneshot.yaml``).

Modes:

* ``sequence=<folder>``: one sequence; the reference is ``reference`` (a frame name) or the
  frame at ``reference_index``; it is annotated by ``annotation=<mask file>``,
  ``point=[x,y]`` or ``box=[x1,y1,x2,y2]`` (or none of them, to take the ground-truth mask of
  the reference from ``gt``). ``annotation=x,y`` or ``point=x,y`` typed in a shell would reach
  Hydra as a sweep, and ``point=[x, y]`` unquoted as two arguments;
  :func:`rewrite_annotation_argv` turns them into ``point=[x,y]`` before Hydra parses them.
* ``sequences=<root>``: every sub-folder of ``root`` is a sequence, scored against
  ``gt/<same sub-folder>``; writes per-sequence metrics and their macro average.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from irsam.data.io import list_images
from irsam.oneshot.annotations import (
    Annotation,
    BoxAnnotation,
    PointAnnotation,
    parse_annotation,
)
from irsam.oneshot.backbone import build_backbone
from irsam.oneshot.config import OneShotConfig
from irsam.oneshot.segmenter import OneShotSegmenter
from irsam.oneshot.sequence import SequenceResult, macro_average, run_sequence, write_metrics
from irsam.utils import ConfigError, ensure_writable_dir, get_logger

log = get_logger(__name__)


def build_segmenter(cfg: DictConfig) -> OneShotSegmenter:
    """Build the backbone (``cfg.backbone``) and the segmenter (``cfg.oneshot``).

    Arguments:
      cfg (DictConfig): the composed ``oneshot.yaml`` config.
    Returns:
      OneShotSegmenter: ready for ``fit_reference``.
    """
    backbone = build_backbone(**OmegaConf.to_container(cfg.backbone, resolve=True))
    params = OneShotConfig.from_mapping(OmegaConf.to_container(cfg.oneshot, resolve=True))
    return OneShotSegmenter(backbone, params)


_NUMBER = r"\s*[-+]?(?:\d+(?:\.\d*)?|\.\d+)\s*"
_COORDS = re.compile(
    rf"^(annotation|point|box)=[\"']?\[?({_NUMBER}(?:,{_NUMBER}){{1,3}})\]?[\"']?$"
)
_OPEN_LIST = re.compile(r"^(annotation|point|box)=\[[^\]]*$")
QUOTE_HINT = "quote it as printed in docs/oneshot.md: 'point=[x,y]' or 'box=[x1,y1,x2,y2]'"
"""How to type a point or box reference so that no shell changes it."""


def _join_open_lists(argv: list[str]) -> list[str]:
    """Join ``point=[120,`` ``64]`` (a list with spaces the shell split) into one argument."""
    out: list[str] = []
    for arg in argv:
        if out and _OPEN_LIST.match(out[-1]) and "=" not in arg:
            out[-1] = f"{out[-1]} {arg}"
        else:
            out.append(arg)
    return out


def rewrite_annotation_argv(argv: list[str]) -> list[str]:
    """Turn the coordinate forms of a reference into ``point=[x,y]`` / ``box=[x1,y1,x2,y2]``.

    ``annotation=x,y``, ``annotation=x1,y1,x2,y2``, ``point=x,y`` and ``box=x1,y1,x2,y2``:
    Hydra reads a bare comma list as a sweep and stops with "Ambiguous value", and a shell
    strips the quotes of ``annotation="x,y"``. ``point=[120, 64]`` typed without quotes reaches
    the program as two arguments, joined again here. The point or box is named by the key
    (``point=``, ``box=``; a wrong count of numbers is then refused with the quoting hint) or,
    for ``annotation=``, by the count of numbers. Other arguments are unchanged.

    Arguments:
      argv (list[str]): command-line arguments (without the program name).
    Returns:
      list[str]: the arguments, coordinate references rewritten.
    """
    out = []
    for arg in _join_open_lists(argv):
        match = _COORDS.match(arg)
        if match is None:
            out.append(arg)
            continue
        values = match.group(2).replace(" ", "").split(",")
        key = match.group(1)
        if key == "annotation":
            key = {2: "point", 4: "box"}.get(len(values))
        out.append(arg if key is None else f"{key}=[{','.join(values)}]")
    return out


def _coordinates(cfg: DictConfig, key: str, count: int, form: str) -> list[float]:
    """The ``count`` numbers of ``point`` / ``box``, else a ConfigError saying how to quote them."""
    value = cfg.get(key)
    items = list(value) if OmegaConf.is_list(value) or isinstance(value, (list, tuple)) else None
    if items is None or len(items) != count:
        shown = items if items is not None else repr(value)
        raise ConfigError(f"{key}={shown} must be {form}; {QUOTE_HINT}.")
    try:
        return [float(v) for v in items]
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{key}={items} must be {form}; {QUOTE_HINT}.") from error


def annotation_from_config(cfg: DictConfig) -> Annotation | None:
    """The reference annotation from ``annotation`` (mask file), ``point`` or ``box``.

    Arguments:
      cfg (DictConfig): the composed ``oneshot.yaml`` config.
    Returns:
      Annotation | None: the annotation, or None when none is set (the gt mask is used).
    """
    given = [k for k in ("annotation", "point", "box") if cfg.get(k) is not None]
    if len(given) > 1:
        raise ConfigError(
            f"set only one of annotation=<mask file>, point=[x,y], box=[x1,y1,x2,y2]; got {given}."
        )
    if cfg.get("point") is not None:
        return PointAnnotation(*_coordinates(cfg, "point", 2, "[x, y] (two numbers, pixels)"))
    if cfg.get("box") is not None:
        return BoxAnnotation(*_coordinates(cfg, "box", 4, "[x1, y1, x2, y2] (four numbers)"))
    return None if cfg.annotation is None else parse_annotation(cfg.annotation)


def _format(result: SequenceResult) -> str:
    """One log line with the metrics of a sequence (IoU, Pd in 1e-2; Fa in 1e-6)."""
    m = result.metrics
    return (
        f"{result.name}: IoU {100 * m['IoU']:.2f}  nIoU {100 * m['nIoU']:.2f}  "
        f"Pd {100 * m['Pd']:.2f}  Fa {1e6 * m['Fa']:.2f} (1e-6)  [{result.scored} frames]"
    )


def run_oneshot(cfg: DictConfig) -> dict[str, Any]:
    """Run the one-shot task: segment the sequence(s) and, with ground truth, score them.

    Arguments:
      cfg (DictConfig): the composed ``oneshot.yaml`` config.
    Returns:
      dict[str, Any]: ``{"sequences": {name: metrics}, "macro": metrics | None,
      "fps": frames per second, "skipped": {name: unreadable frame names}}``.
    """
    if (cfg.sequence is None) == (cfg.sequences is None):
        raise ConfigError(
            "set exactly one of sequence=<folder of frames> or "
            "sequences=<root with one sub-folder per sequence>."
        )
    annotation = annotation_from_config(cfg)
    output = ensure_writable_dir(cfg.output, "one-shot output folder (output=)")
    segmenter = build_segmenter(cfg)
    common: dict[str, Any] = {
        "annotation": annotation,
        "reference": None if cfg.reference is None else str(cfg.reference),
        "reference_index": int(cfg.reference_index),
        "annotation_kind": cfg.annotation_kind,
        "include_reference": bool(cfg.include_reference),
        "fa_rule": cfg.metrics.fa_rule,
        "save_overlays": bool(cfg.save_overlays),
        "save_conf_maps": bool(cfg.save_conf_maps),
        "progress": bool(cfg.progress),
        "on_error": str(cfg.get("on_error", "skip")),
    }
    if cfg.sequence is not None:
        runs = [(Path(cfg.sequence), output, None if cfg.gt is None else Path(cfg.gt))]
        common["reference_state"] = cfg.reference_state
    else:
        root = Path(cfg.sequences)
        names = sorted(p.name for p in root.iterdir() if p.is_dir() and list_images(p))
        if not names:
            raise ConfigError(f"sequences={root}: no sub-folder with images.")
        gt_root = None if cfg.gt is None else Path(cfg.gt)
        runs = [(root / n, output / n, None if gt_root is None else gt_root / n) for n in names]
    results = [
        run_sequence(segmenter, frames, out, gt_dir=gt, **common) for frames, out, gt in runs
    ]
    scored = [r for r in results if r.metrics]
    macro = macro_average([r.metrics for r in scored]) if cfg.sequences is not None else None
    if scored:
        for r in scored:
            log.info(_format(r))
        if macro is not None:
            log.info(_format(SequenceResult("macro", 0, sum(r.scored for r in scored), 0.0, macro)))
        write_metrics(output, scored, macro)
    skipped = {r.name: r.skipped for r in results if r.skipped}
    if skipped:
        log.warning("unreadable frames skipped (on_error=skip): %s", skipped)
    frames, seconds = sum(r.frames for r in results), sum(r.seconds for r in results)
    fps = frames / max(seconds, 1e-9)
    log.info(
        "%d frames in %.2f s of segmentation: %.3f frames/s (outputs in %s)",
        frames,
        seconds,
        fps,
        output,
    )
    return {
        "sequences": {r.name: r.metrics for r in results},
        "macro": macro,
        "fps": fps,
        "skipped": skipped,
    }
