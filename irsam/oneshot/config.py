# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Parameters of the one-shot segmenter (LFM + PPCF + TLE).

The Hydra group ``conf/oneshot/`` has exactly these fields (docs/oneshot.md, "Modes"):
``code.yaml`` (the default) holds the authors' parameters (D-IceIce/one-shot-IRSTS) with their
quirks fixed, ``faithful.yaml`` reproduces the authors' code quirk for quirk, ``paper.yaml`` the
paper text (arXiv 2408.04823) and ``fast.yaml`` our reduced-size encoder [ours].
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin, get_type_hints

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
    """All parameters of :class:`irsam.oneshot.OneShotSegmenter`.

    Arguments:
      window_divisors (tuple[int, ...]): TLE window sizes are ``even(base // d)`` for each ``d``;
        (6, 5, 4) is the authors' code, (2, 3, 4) the paper text.
      window_from (str): ``height`` (code: both sides from the frame height) or ``min_side``.
      overlap (float): tile overlap fraction in [0, 1); the stride is ``int((1 - overlap) * L)``.
      ref_component (str): ``first`` centres the reference window on the first connected
        component of the mask (raster order, code); ``all`` gives every component its own window
        and prototype, combined like few-shot shots [ours].
      ref_connectivity (int): 4 (the authors' labelling) or 8: connectivity of the components
        of the reference mask whose centre places the reference window.
      ref_mask_downsample (str): mask → feature grid rule. ``bicubic`` (code) and ``bilinear``
        (PerSAM) normalise the resized 0–255 mask with SAM's channel-0 mean/std, downsample it
        and keep cells > 0; ``area`` weights cells by their target coverage [ours].
      ref_mask_padding (str): how the mask is padded to S×S before the downsample.
        ``zero_after_norm`` (authors): zeros after the mean/std normalisation, so the pad reads
        as a value between background and target and bicubic ringing marks cells at the pad
        edge as target; ``background`` [ours]: the pad carries the background value.
      resize_backend (str): resize of tiles, crops and the reference mask to the encoder input:
        ``pil`` (authors: 8-bit images through PIL's bilinear filter, values rounded to
        integers) or ``torch`` (float bilinear, antialiased when shrinking).
      peak_mode (str): ``multi`` (code: ``peak_local_max``) or ``argmax`` (paper).
      peak_rel_threshold (float): ``multi`` keeps peaks > rel · max(C).
      peak_min_distance (int): ``multi`` minimum distance between peaks, px.
      peak_exclude_border (int | bool): border band (px) with no peaks; ``True`` = the min
        distance (skimage's default), ``False``/0 disables. Applies to both peak modes.
      ppcf (bool): crop an L×L window around each peak before prompting SAM (PPCF). ``False``
        prompts SAM on the full frame at the peak (Table II ablation).
      faithful_point_order (bool): ``True`` reproduces the authors' bug of passing the local
        prompt as (row, col) where SAM reads (x, y); only differs for crops clipped at a border.
        ``False`` (default) passes the correct (x, y).
      max_area_ratio (float | None): TLE drops candidate masks with area ≥ ratio · H · W; None
        disables the filter.
      min_votes (int): TLE keeps pixels covered by at least this many candidate masks.
      point_annotation_window (str): point/box reference → mask on the ``smallest`` TLE window or
        on all windows with the TLE ``vote`` [ours].
      annotation_area_fallback (bool): when the SAM mask of a point/box reference is empty or
        fails the area filter, use a 3×3 disk at the point (the box itself for a box) [ours].
      shots_reduce (str): few-shot: ``mean`` of the per-shot prototypes or ``max`` over shots of
        the similarity maps.
      chunk_size (int): images per encoder call.
      lfm_encoder_size (int | None): [ours, fast mode] encoder input side S' used for the LFM
        tiles and the reference prototypes (a multiple of 16; the grid is S'/16); None = the
        backbone's own input (1024 for MobileSAM). PPCF always uses the backbone's input.
      ppcf_encoder_size (int | None): [ours, fast mode] encoder input side of the PPCF crops
        (a multiple of 16; SAM's decoder then runs on the (s/16)² grid); None = the backbone's.
      lfm_source (str): ``tiles`` (the method: every L×L tile encoded on its own) or ``frame``
        [ours, ablation]: the whole frame is encoded once (longest side to ``lfm_encoder_size``)
        and matched on its features with one prototype from the whole reference frame.
    """

    window_divisors: tuple[int, ...] = (6, 5, 4)
    window_from: WindowFrom = "height"
    overlap: float = 0.1
    ref_component: RefComponent = "first"
    ref_connectivity: int = 4
    ref_mask_downsample: MaskDownsample = "bicubic"
    ref_mask_padding: MaskPadding = "background"
    resize_backend: ResizeBackend = "torch"
    peak_mode: PeakMode = "multi"
    peak_rel_threshold: float = 0.9
    peak_min_distance: int = 20
    peak_exclude_border: int | bool = True
    ppcf: bool = True
    faithful_point_order: bool = False
    max_area_ratio: float | None = 1.5e-4
    min_votes: int = 2
    point_annotation_window: PointWindow = "smallest"
    annotation_area_fallback: bool = True
    shots_reduce: ShotsReduce = "mean"
    chunk_size: int = 32
    lfm_encoder_size: int | None = None
    ppcf_encoder_size: int | None = None
    lfm_source: LfmSource = "tiles"

    def __post_init__(self) -> None:
        self.window_divisors = tuple(int(d) for d in self.window_divisors)
        for name, allowed in _CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"oneshot.{name}={value!r} is not one of {allowed}.")
        if not self.window_divisors or min(self.window_divisors) < 1:
            raise ValueError(
                f"oneshot.window_divisors={self.window_divisors} must be a non-empty list of "
                "integers ≥ 1, e.g. [6, 5, 4] (code) or [2, 3, 4] (paper)."
            )
        if not 0.0 <= self.overlap < 1.0:
            raise ValueError(f"oneshot.overlap={self.overlap} must be in [0, 1).")
        if self.min_votes < 1:
            raise ValueError(f"oneshot.min_votes={self.min_votes} must be ≥ 1.")
        if self.max_area_ratio is not None and self.max_area_ratio <= 0:
            raise ValueError(
                f"oneshot.max_area_ratio={self.max_area_ratio} must be > 0, or null to disable."
            )
        if self.chunk_size < 1:
            raise ValueError(f"oneshot.chunk_size={self.chunk_size} must be ≥ 1.")
        if self.ref_connectivity not in (4, 8):
            raise ValueError(f"oneshot.ref_connectivity={self.ref_connectivity} must be 4 or 8.")
        for name in ("lfm_encoder_size", "ppcf_encoder_size"):
            value = getattr(self, name)
            if value is not None and (value < 16 or value % 16):
                raise ValueError(
                    f"oneshot.{name}={value} must be a multiple of 16 (e.g. 256), or null for "
                    "the backbone's own input size."
                )
        if self.peak_min_distance < 1:
            raise ValueError(f"oneshot.peak_min_distance={self.peak_min_distance} must be ≥ 1.")

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
            raise ValueError(f"unknown oneshot parameters {unknown}; known: {sorted(known)}.")
        return cls(**dict(values))


_CHOICES: dict[str, tuple[str, ...]] = {
    name: get_args(hint)
    for name, hint in get_type_hints(OneShotConfig).items()
    if get_origin(hint) is Literal
}
"""The allowed values of every string option, read from its ``Literal`` type."""
