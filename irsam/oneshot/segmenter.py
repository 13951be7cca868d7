# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""The one-shot, training-free sequential segmenter (Dan et al., arXiv 2408.04823).

``fit_reference`` turns one annotated frame (or a few, for few-shot) into per-window
prototypes; ``predict`` runs LFM → PPCF → TLE on a frame:

1. LFM: the frame is tiled at every window size L (stride ``int((1 − overlap) · L)``), all
   tiles of all sizes are encoded as one batch (chunked), cosine similarity with the window's
   prototype gives per-tile maps that are upsampled and stitched (overlap averaged) into a
   confidence map per window; peaks are picked on each map. The fast mode [ours] encodes the
   tiles at a smaller input (``lfm_encoder_size``) or the whole frame once
   (``lfm_source=frame``); see docs/oneshot.md, "Fast mode".
2. PPCF: SAM segments an L×L crop around every peak, prompted at the peak.
3. TLE: candidate masks are area-filtered and fused by a per-pixel vote.

Frames of another size than the reference reuse the reference's window sizes (as the authors'
code does); tiling, peaks and the area filter use the frame's own size.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import nn

from irsam.models.checkpoints import read_checkpoint
from irsam.oneshot.annotations import Annotation, MaskAnnotation, annotation_to_mask
from irsam.oneshot.backbone import SamBackbone, encode_images, unpad_resize
from irsam.oneshot.config import OneShotConfig
from irsam.oneshot.lfm import (
    centroid_cell,
    component_centres,
    cut_tiles,
    find_peaks,
    mask_cell_weights,
    masked_prototype,
    similarity_maps,
    stitch_maps,
    tile_stride,
    upsample_similarity,
    window_box,
    window_sizes,
)
from irsam.oneshot.ppcf import full_frame_masks, ppcf_masks
from irsam.oneshot.tle import tle_vote
from irsam.utils import atomic_save_torch, get_logger
from irsam.utils.errors import ConfigError

log = get_logger(__name__)

Frame = np.ndarray | torch.Tensor


@dataclass
class ReferenceState:
    """What the segmenter keeps from the reference: plain tensors, saved with ``torch.save``.

    Attributes:
      prototypes (torch.Tensor): K×P×C float32 unit vectors: K window sizes, P prototypes per
        window (1 for one shot or ``shots_reduce=mean``; the number of shots/components for
        ``max``), C channels (256).
      window_sizes (torch.Tensor): K int64 window sides L (from the reference frame).
      ref_hw (torch.Tensor): 2 int64, the reference frame size (H, W).
    """

    prototypes: torch.Tensor
    window_sizes: torch.Tensor
    ref_hw: torch.Tensor

    def to_dict(self) -> dict[str, torch.Tensor]:
        """The state as a dict of CPU tensors (``torch.load(weights_only=True)`` compatible)."""
        return {f.name: getattr(self, f.name).detach().cpu().clone() for f in fields(self)}

    def save(self, path: str | os.PathLike) -> None:
        """Write the state atomically.

        Arguments:
          path (str | PathLike): destination ``.pt`` file.
        """
        atomic_save_torch(self.to_dict(), path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> ReferenceState:
        """Read a state written by :meth:`save` (the package's one checkpoint reader,
        ``weights_only=True``, with errors naming the file).

        Arguments:
          path (str | PathLike): a ``.pt`` file.
        Returns:
          ReferenceState: the state on the CPU.
        """
        data, keys = read_checkpoint(path), [f.name for f in fields(cls)]
        missing = set(keys) - set(data)
        if missing:
            raise ConfigError(
                f"{path}: not a one-shot reference state (missing {sorted(missing)}); give the "
                "reference_state.pt that oneshot.py writes in its output folder."
            )
        return cls(**{key: data[key] for key in keys})


@dataclass
class OneShotOutput:
    """Result for one frame.

    Attributes:
      mask (torch.Tensor): H×W bool final (TLE) mask.
      per_scale_masks (torch.Tensor): K×H×W bool, per window size the union of its candidate
        masks that passed the area filter.
      peaks (list[torch.Tensor]): per window size, P_k×2 int64 (row, column) prompt points.
      conf_maps (torch.Tensor): K×H×W float32 LFM confidence maps (cosine similarity).
    """

    mask: torch.Tensor
    per_scale_masks: torch.Tensor
    peaks: list[torch.Tensor]
    conf_maps: torch.Tensor


class OneShotSegmenter(nn.Module):
    """Training-free one-shot segmenter: LFM + PPCF + TLE on a frozen SAM backbone.

    Every parameter has ``requires_grad=False``, the module stays in eval mode
    (``train()`` is a no-op) and all public methods run under ``torch.inference_mode``.

    Arguments:
      backbone (SamBackbone): e.g. :class:`~irsam.oneshot.backbone.SamModelBackbone`.
      cfg (OneShotConfig | None): parameters (defaults: the authors' code).
    """

    def __init__(self, backbone: SamBackbone, cfg: OneShotConfig | None = None):
        super().__init__()
        self.backbone = backbone
        self.cfg = cfg or OneShotConfig()
        self.reference: ReferenceState | None = None
        self.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> OneShotSegmenter:
        """Stay in eval mode: the segmenter is training-free.

        Arguments:
          mode (bool): ignored.
        Returns:
          OneShotSegmenter: self.
        """
        return super().train(False)

    @property
    def device(self) -> torch.device:
        """The backbone's device."""
        return self.backbone.pixel_mean.device

    @property
    def lfm_size(self) -> int:
        """Encoder input side used by LFM: ``cfg.lfm_encoder_size`` or the backbone's S."""
        return self.cfg.lfm_encoder_size or self.backbone.img_size

    @property
    def lfm_grid(self) -> int:
        """Embedding grid side of the LFM encoder input (S/16 for SAM-family encoders)."""
        return self.lfm_size * self.backbone.grid_size // self.backbone.img_size

    def _as_frame(self, frame: Frame) -> torch.Tensor:
        """H×W, H×W×3 (NumPy, as :func:`irsam.data.io.read_image`) or 3×H×W → 3×H×W float."""
        x = torch.as_tensor(np.asarray(frame) if isinstance(frame, np.ndarray) else frame)
        if x.ndim == 2:
            x = x[None].expand(3, -1, -1)
        elif x.ndim == 3 and x.shape[-1] in (1, 3) and x.shape[0] not in (1, 3):
            x = x.permute(2, 0, 1)
        if x.ndim != 3 or x.shape[0] not in (1, 3):
            raise ValueError(
                f"expected an H×W, H×W×3 or 3×H×W frame (RGB, 0–255), got shape {tuple(x.shape)}"
            )
        return x.expand(3, -1, -1).float().to(self.device)

    # ------------------------------------------------------------------ reference
    @torch.inference_mode()
    def fit_reference(
        self,
        image: Frame | Sequence[tuple[Frame, Annotation]],
        annotation: Annotation | None = None,
    ) -> ReferenceState:
        """Compute the reference prototypes (one per window size) and keep them.

        Arguments:
          image (Frame | Sequence[tuple[Frame, Annotation]]): the reference frame (H×W×3 RGB
            0–255 NumPy, or 3×H×W tensor), or for few-shot a list of (frame, annotation) pairs
            (``annotation`` then stays None). Window sizes come from the first frame.
          annotation (Annotation | None): :class:`MaskAnnotation`, :class:`PointAnnotation` or
            :class:`BoxAnnotation` (x, y in pixels); a bare H×W array is read as a mask.
        Returns:
          ReferenceState: the state, also stored as ``self.reference``.
        """
        cfg = self.cfg
        if annotation is None:
            shots = [(self._as_frame(img), ann) for img, ann in image]  # type: ignore[misc]
        else:
            shots = [(self._as_frame(image), annotation)]  # type: ignore[arg-type]
        if not shots:
            raise ValueError("fit_reference needs at least one (image, annotation) pair.")
        ref_hw = (int(shots[0][0].shape[1]), int(shots[0][0].shape[2]))
        windows = window_sizes(*ref_hw, cfg.window_divisors, cfg.window_from)
        crops, masks, scale_of = [], [], []
        for frame, ann in shots:
            if isinstance(ann, (np.ndarray, torch.Tensor)):
                ann = MaskAnnotation(ann)
            hw = (int(frame.shape[1]), int(frame.shape[2]))
            mask = annotation_to_mask(
                self.backbone,
                frame,
                ann,
                window_sizes(*hw, cfg.window_divisors, cfg.window_from),
                point_window=cfg.point_annotation_window,
                min_votes=cfg.min_votes,
                max_area_ratio=cfg.max_area_ratio,
                area_fallback=cfg.annotation_area_fallback,
                chunk_size=cfg.chunk_size,
                resize_backend=cfg.resize_backend,
            ).to(self.device)
            centres = component_centres(mask.cpu().numpy(), cfg.ref_component, cfg.ref_connectivity)
            if not centres:
                raise ConfigError(
                    "the reference annotation gives an empty mask: no target to match."
                )
            whole = cfg.lfm_source == "frame"  # one prototype from the whole frame, every scale
            for centre in centres[:1] if whole else centres:
                for k, window in enumerate(windows):
                    y0, y1, x0, x1 = (
                        (0, hw[0], 0, hw[1]) if whole else window_box(centre, window, hw)
                    )
                    crops.append(frame[:, y0:y1, x0:x1])
                    masks.append(mask[y0:y1, x0:x1])
                    scale_of.append(k)
        size, grid = self.lfm_size, self.lfm_grid
        embeddings, _ = encode_images(
            self.backbone, crops, cfg.chunk_size, size=size, resize_backend=cfg.resize_backend
        )
        per_scale: list[list[torch.Tensor]] = [[] for _ in windows]
        mean0, std0 = float(self.backbone.pixel_mean[0]), float(self.backbone.pixel_std[0])
        for emb, crop_mask, k in zip(embeddings, masks, scale_of):
            weights = mask_cell_weights(
                crop_mask,
                size,
                grid,
                cfg.ref_mask_downsample,
                mean0,
                std0,
                padding=cfg.ref_mask_padding,
                resize_backend=cfg.resize_backend,
            )
            if not bool(weights.any()):
                log.debug(
                    "reference target smaller than a feature cell at L=%d: centroid cell used",
                    windows[k],
                )
            proto = masked_prototype(emb[0], weights, centroid_cell(crop_mask, size, grid))
            per_scale[k].append(proto)
        protos = torch.stack([torch.stack(p) for p in per_scale])  # K×P×C
        if cfg.shots_reduce == "mean":
            protos = torch.nn.functional.normalize(protos.mean(1, keepdim=True), dim=-1)
        self.reference = ReferenceState(
            prototypes=protos.float(),
            window_sizes=torch.tensor(windows, dtype=torch.int64),
            ref_hw=torch.tensor(ref_hw, dtype=torch.int64),
        )
        log.info(
            "reference fitted: windows %s, %d prototype(s) per window", windows, protos.shape[1]
        )
        return self.reference

    def load_reference(self, state: ReferenceState) -> None:
        """Use a saved reference state (see :meth:`ReferenceState.load`).

        Arguments:
          state (ReferenceState): the state to use.
        """
        self.reference = state

    def _require_reference(self) -> ReferenceState:
        """The current reference, or a clear error."""
        if self.reference is None:
            raise RuntimeError("call fit_reference(image, annotation) or load_reference first.")
        return self.reference

    # ------------------------------------------------------------------ LFM
    def _confidence_maps(self, frames: list[torch.Tensor]) -> list[torch.Tensor]:
        """LFM for several frames: every tile of every frame and window in one chunked batch."""
        if self.cfg.lfm_source == "frame":
            return [self._frame_confidence_maps(frame) for frame in frames]
        ref = self._require_reference()
        windows = [int(w) for w in ref.window_sizes]
        protos = ref.prototypes.to(self.device)
        strides = [tile_stride(window, self.cfg.overlap) for window in windows]
        size, backend = self.lfm_size, self.cfg.resize_backend
        jobs = []  # (frame index, scale index, tiles N×3×L×L)
        for f, frame in enumerate(frames):
            for k, window in enumerate(windows):
                jobs.append((f, k, cut_tiles(frame, window, strides[k])))
        pieces: list[list[torch.Tensor]] = [[] for _ in jobs]
        flat = [(j, i) for j, (_, _, tiles) in enumerate(jobs) for i in range(len(tiles))]
        chunk = self.cfg.chunk_size
        for start in range(0, len(flat), chunk):
            members = flat[start : start + chunk]
            groups: dict[int, list[int]] = {}
            for j, i in members:
                groups.setdefault(j, []).append(i)
            inputs = [
                self.backbone.preprocess(jobs[j][2][idx[0] : idx[-1] + 1], size, backend)[0]
                for j, idx in groups.items()
            ]
            features = self.backbone.encode(torch.cat(inputs))
            offset = 0
            for j, idx in groups.items():
                feats = features[offset : offset + len(idx)]
                offset += len(idx)
                pieces[j].append(similarity_maps(feats, protos[jobs[j][1]]))
        maps: list[list[torch.Tensor]] = [[] for _ in frames]
        for (f, k, _), sims in zip(jobs, pieces):  # jobs are in (frame, window) order
            window = windows[k]
            hw = (int(frames[f].shape[1]), int(frames[f].shape[2]))
            tile_maps = upsample_similarity(torch.cat(sims), size, window)
            maps[f].append(stitch_maps(tile_maps, hw, window, strides[k]))
        return [torch.stack(m) for m in maps]

    def _frame_confidence_maps(self, frame: torch.Tensor) -> torch.Tensor:
        """``lfm_source=frame`` [ours]: one map per window's prototype, the frame encoded once."""
        # The similarity map on the g×g grid is upsampled to the encoder input, its padding cut
        # off and the rest resized to H×W (bilinear).
        ref = self._require_reference()
        hw = (int(frame.shape[1]), int(frame.shape[2]))
        size = self.lfm_size
        x, input_hw = self.backbone.preprocess(frame[None], size, self.cfg.resize_backend)
        features = self.backbone.encode(x)
        protos = ref.prototypes.to(self.device)
        sims = torch.stack([similarity_maps(features, p)[0] for p in protos])  # K×g×g
        return unpad_resize(sims[None], size, input_hw, hw)[0]

    @torch.inference_mode()
    def confidence_maps(self, frame: Frame) -> torch.Tensor:
        """LFM confidence maps of one frame (for tests and visualisation).

        Arguments:
          frame (Frame): H×W×3 RGB 0–255 array or 3×H×W tensor.
        Returns:
          torch.Tensor: K×H×W float32 cosine-similarity maps, one per window size.
        """
        return self._confidence_maps([self._as_frame(frame)])[0]

    # ------------------------------------------------------------------ PPCF + TLE
    def _segment(self, frame: torch.Tensor, conf: torch.Tensor) -> OneShotOutput:
        """Peaks, PPCF and TLE for one frame given its confidence maps."""
        cfg, ref = self.cfg, self._require_reference()
        hw = (int(frame.shape[1]), int(frame.shape[2]))
        peaks, prompts, owner = [], [], []
        for k, window in enumerate(int(w) for w in ref.window_sizes):
            p = find_peaks(
                conf[k],
                cfg.peak_mode,
                cfg.peak_rel_threshold,
                cfg.peak_min_distance,
                cfg.border_band,
            )
            peaks.append(p)
            prompts.extend((int(y), int(x), window) for y, x in p.tolist())
            owner.extend([k] * len(p))
        if cfg.ppcf:
            candidates = ppcf_masks(
                self.backbone,
                frame,
                prompts,
                faithful_point_order=cfg.faithful_point_order,
                chunk_size=cfg.chunk_size,
                resize_backend=cfg.resize_backend,
                size=cfg.ppcf_encoder_size,
            )
        else:
            candidates = full_frame_masks(self.backbone, frame, prompts, cfg.resize_backend)
        candidates = [c.cpu() for c in candidates]
        mask, keep = tle_vote(
            candidates, hw, min_votes=cfg.min_votes, max_area_ratio=cfg.max_area_ratio
        )
        per_scale = torch.zeros((len(peaks), *hw), dtype=torch.bool)
        for k, cand, kept in zip(owner, candidates, keep.tolist()):
            if kept:
                per_scale[k] |= cand
        return OneShotOutput(
            mask=mask, per_scale_masks=per_scale, peaks=peaks, conf_maps=conf.float().cpu()
        )

    @torch.inference_mode()
    def predict_batch(self, frames: Sequence[Frame]) -> list[OneShotOutput]:
        """Segment several frames; their LFM tiles share the encoder batches.

        Arguments:
          frames (Sequence[Frame]): H×W×3 RGB 0–255 arrays or 3×H×W tensors (sizes may differ).
        Returns:
          list[OneShotOutput]: one output per frame.
        """
        tensors = [self._as_frame(f) for f in frames]
        confs = self._confidence_maps(tensors)
        return [self._segment(frame, conf) for frame, conf in zip(tensors, confs)]

    def predict(self, frame: Frame) -> OneShotOutput:
        """Segment one frame.

        Arguments:
          frame (Frame): H×W×3 RGB 0–255 array (as ``read_image``) or 3×H×W tensor.
        Returns:
          OneShotOutput: final mask, per-scale masks, peaks and confidence maps.
        """
        return self.predict_batch([frame])[0]

    def predict_sequence(
        self, frames: Iterable[Frame], *, batch_size: int = 1
    ) -> Iterator[OneShotOutput]:
        """Segment a stream of frames independently against the reference; logs frames/s.

        Arguments:
          frames (Iterable[Frame]): frames in any order (no temporal prior is used).
          batch_size (int): frames whose tiles share encoder batches.
        Returns:
          Iterator[OneShotOutput]: one output per frame, in input order.
        """
        start, count, stream = time.perf_counter(), 0, iter(frames)
        while batch := list(itertools.islice(stream, batch_size if batch_size > 0 else None)):
            yield from self.predict_batch(batch)
            count += len(batch)
        elapsed = time.perf_counter() - start
        if count:
            log.info(
                "segmented %d frames in %.2f s (%.3f frames/s)",
                count,
                elapsed,
                count / max(elapsed, 1e-9),
            )
