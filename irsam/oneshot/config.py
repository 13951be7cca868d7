# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Parameters of the one-shot segmenter (LFM + PPCF + TLE), documented field by field below.

The defaults of :class:`OneShotConfig` are the ``code`` preset: the authors' parameters
(D-IceIce/one-shot-IRSTS) with their two quirks fixed. :func:`register_presets` stores them in
Hydra's ConfigStore as ``oneshot/code``, the base of the other presets of ``conf/oneshot/``, which
list only what they change: ``faithful.yaml`` (the authors' code quirk for quirk), ``paper.yaml``
(the paper text, arXiv 2408.04823) and ``fast.yaml`` (reduced-size encoder inputs) [ours]; see
docs/oneshot.md, "Modes". "[ours]" marks choices that are neither the paper nor the authors' code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin, get_type_hints

from hydra.core.config_store import ConfigStore

from irsam.utils.errors import ConfigError

WindowFrom = Literal["height", "min_side"]
PeakMode = Literal["multi", "argmax"]
MaskDownsample = Literal["bicubic", "bilinear", "area"]
RefComponent = Literal["first", "all"]
PointWindow = Literal["smallest", "vote"]
ShotsReduce = Literal["mean", "max"]
ResizeBackend = Literal["torch", "pil"]
MaskPadding = Literal["background", "zero_after_norm"]
LfmSource = Literal["tiles", "frame"]


@dataclass
class OneShotConfig:
    """All parameters of :class:`irsam.oneshot.OneShotSegmenter` (the ``oneshot:`` config node).

    Each field is described by the comment above it. Invalid values raise a ValueError naming
    ``oneshot.<field>``.
    """

    # TLE window sides are even(base // d) for each divisor d: (6, 5, 4) is the authors' code
    # (80, 96, 120 px at H = 480), (2, 3, 4) the paper text.
    window_divisors: tuple[int, ...] = (6, 5, 4)
    # base of the window sides: "height" (code: both sides from the frame height) | "min_side".
    window_from: WindowFrom = "height"
    # tile overlap fraction in [0, 1); the tile stride is int((1 - overlap) * L).
    overlap: float = 0.1
    # "first": the reference window is centred on the first connected component of the mask
    # (raster order, code) | "all": every component gets its own window and prototype, combined
    # like few-shot shots [ours].
    ref_component: RefComponent = "first"
    # connectivity of the reference-mask components that place the reference window: 4 (the
    # authors' labelling) | 8.
    ref_connectivity: int = 4
    # mask -> embedding grid: "bicubic" (code) or "bilinear" (PerSAM) downsample the resized 0-255
    # mask normalised with SAM's channel-0 mean/std and keep cells > 0 | "area" weights cells by
    # their target coverage [ours].
    ref_mask_downsample: MaskDownsample = "bicubic"
    # padding of the mask to S x S before the downsample: "background" [ours] (the pad carries the
    # background value) | "zero_after_norm" (authors: zeros after the normalisation, so bicubic
    # ringing marks cells at the pad edge as target).
    ref_mask_padding: MaskPadding = "background"
    # resize of tiles, crops and the reference mask to the encoder input: "torch" (float bilinear,
    # antialiased when shrinking) | "pil" (authors: 8-bit images through PIL's bilinear filter).
    resize_backend: ResizeBackend = "torch"
    # "multi" (code: skimage peak_local_max, every local maximum) | "argmax" (paper: the single
    # highest point of the confidence map).
    peak_mode: PeakMode = "multi"
    # multi: peaks must exceed this fraction of the map maximum.
    peak_rel_threshold: float = 0.9
    # multi: minimum distance between peaks, px.
    peak_min_distance: int = 20
    # border band (px) without peaks, both peak modes: True = peak_min_distance (skimage's
    # default), False / 0 = none.
    peak_exclude_border: int | bool = True
    # PPCF: segment an L x L crop around each peak; False prompts SAM on the full frame at the peak
    # (Table II ablation).
    ppcf: bool = True
    # True reproduces the authors' local prompt passed as (row, col) where SAM reads (x, y); it
    # differs only for crops clipped at a border. False passes the correct (x, y).
    faithful_point_order: bool = False
    # TLE drops candidate masks with area >= ratio * H * W (51.8 px at 480 x 720); None disables
    # the filter.
    max_area_ratio: float | None = 1.5e-4
    # TLE: a pixel is target when at least this many candidate masks cover it.
    min_votes: int = 2
    # point / box reference -> mask on the "smallest" TLE window | on all windows with the TLE
    # "vote" [ours].
    point_annotation_window: PointWindow = "smallest"
    # an empty or oversized point / box reference mask falls back to a 3 x 3 patch at the point
    # (the box itself for a box) [ours].
    annotation_area_fallback: bool = True
    # few-shot or several components: "mean" of the per-shot prototypes | "max" over shots of the
    # similarity maps.
    shots_reduce: ShotsReduce = "mean"
    # images per encoder call (all tiles of all windows share batches).
    chunk_size: int = 32
    # [ours, fast mode] encoder input side S' of the LFM tiles and the reference prototypes (a
    # multiple of 16; grid S'/16); None = the backbone's own (1024 for MobileSAM).
    lfm_encoder_size: int | None = None
    # [ours, fast mode] encoder input side of the PPCF crops (a multiple of 16; SAM's decoder then
    # runs on the (s/16)^2 grid); None = the backbone's own.
    ppcf_encoder_size: int | None = None
    # "tiles" (the method: every L x L tile encoded on its own) | "frame" [ours, ablation]: the
    # whole frame encoded once (longest side to lfm_encoder_size) and matched with one prototype
    # from the whole reference frame.
    lfm_source: LfmSource = "tiles"

    def __post_init__(self) -> None:
        self.window_divisors = tuple(int(d) for d in self.window_divisors)
        for name, allowed in _CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ConfigError(f"oneshot.{name}={value!r} is not one of {allowed}.")
        if not self.window_divisors or min(self.window_divisors) < 1:
            raise ConfigError(
                f"oneshot.window_divisors={self.window_divisors} must be a non-empty list of "
                "integers ≥ 1, e.g. [6, 5, 4] (code) or [2, 3, 4] (paper)."
            )
        if not 0.0 <= self.overlap < 1.0:
            raise ConfigError(f"oneshot.overlap={self.overlap} must be in [0, 1).")
        if self.min_votes < 1:
            raise ConfigError(f"oneshot.min_votes={self.min_votes} must be ≥ 1.")
        if self.max_area_ratio is not None and self.max_area_ratio <= 0:
            raise ConfigError(
                f"oneshot.max_area_ratio={self.max_area_ratio} must be > 0, or null to disable."
            )
        if self.chunk_size < 1:
            raise ConfigError(f"oneshot.chunk_size={self.chunk_size} must be ≥ 1.")
        if self.ref_connectivity not in (4, 8):
            raise ConfigError(f"oneshot.ref_connectivity={self.ref_connectivity} must be 4 or 8.")
        for name in ("lfm_encoder_size", "ppcf_encoder_size"):
            value = getattr(self, name)
            if value is not None and (value < 16 or value % 16):
                raise ConfigError(
                    f"oneshot.{name}={value} must be a multiple of 16 (e.g. 256), or null for "
                    "the backbone's own input size."
                )
        if self.peak_min_distance < 1:
            raise ConfigError(f"oneshot.peak_min_distance={self.peak_min_distance} must be ≥ 1.")

    @property
    def border_band(self) -> int:
        """The border band in pixels where no peak is taken (0 when disabled)."""
        if isinstance(self.peak_exclude_border, bool):
            return self.peak_min_distance if self.peak_exclude_border else 0
        return int(self.peak_exclude_border)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> OneShotConfig:
        """Build from a plain mapping (e.g. ``OmegaConf.to_container(cfg.oneshot)``).

        Arguments:
          values (Mapping[str, Any]): field names → values; unknown names raise.
        Returns:
          OneShotConfig: the validated configuration.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown oneshot parameters {unknown}; known: {sorted(known)}.")
        return cls(**dict(values))


_CHOICES: dict[str, tuple[str, ...]] = {
    name: get_args(hint)
    for name, hint in get_type_hints(OneShotConfig).items()
    if get_origin(hint) is Literal
}
"""The allowed values of every string option, read from its ``Literal`` type."""


def register_presets() -> None:
    """Store the defaults of :class:`OneShotConfig` in Hydra's ConfigStore as ``oneshot/code``.

    The other presets of ``conf/oneshot/`` start from it (``defaults: [code, _self_]``), and
    ``conf/oneshot.yaml`` selects it by default. The node is plain (values, no types): the
    ``Literal`` choices are checked when :meth:`OneShotConfig.from_mapping` builds the config.
    """
    ConfigStore.instance().store(
        group="oneshot", name="code", node=dataclasses.asdict(OneShotConfig())
    )


register_presets()
