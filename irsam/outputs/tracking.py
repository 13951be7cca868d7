# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Frame-to-frame association of detected targets, and an overlay-video writer.

Association rule (nearest centroid within a radius, greedy): in each frame, the distances
between the last centroids of the live tracks and the new detections' centroids are sorted
ascending (ties by track id, then detection index); each pair with distance ≤ ``radius`` whose
track and detection are both still free is matched, and the detection takes that track's id.
Unmatched detections start new tracks with the next unused id (ids start at 1 and are never
reused). A track not matched for more than ``max_gap`` consecutive frames ends (``max_gap=0``:
a target must be seen in every frame to keep its id). See ``docs/peft-export.md``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from typing_extensions import Self


@dataclass(frozen=True)
class Track:
    """A live track: its id, last centroid (x, y) in pixels, and the frame it was last seen in."""

    track_id: int
    x: float
    y: float
    last_frame: int


@dataclass(frozen=True)
class TrackerState:
    """Live tracks and the next unused id (immutable; :func:`update_tracks` returns a new one)."""

    tracks: tuple[Track, ...] = ()
    next_id: int = 1


def update_tracks(
    state: TrackerState, frame_index: int, centroids: np.ndarray, *, radius: float, max_gap: int = 0
) -> tuple[TrackerState, list[int]]:
    """Associate one frame's detections with the live tracks (the rule in the module docstring).

    Arguments:
      state (TrackerState): tracks after the previous frame (``TrackerState()`` at the start).
      frame_index (int): this frame's index (increasing).
      centroids (np.ndarray): K×2 detection centroids (x, y) in pixels (K may be 0).
      radius (float): largest centroid distance (pixels) for a match, inclusive.
      max_gap (int): frames a track may go unmatched before it ends.
    Returns:
      (TrackerState, list[int]): the new state, and the track id of each detection.
    """
    if radius < 0 or max_gap < 0:
        raise ValueError(
            f"track_radius={radius} and track_max_gap={max_gap} (conf/predict.yaml) must both be "
            ">= 0."
        )
    points = np.asarray(centroids, dtype=np.float64).reshape(-1, 2)
    live = [t for t in state.tracks if frame_index - t.last_frame <= max_gap + 1]
    pairs = []
    for ti, track in enumerate(live):
        for di, (x, y) in enumerate(points):
            distance = float(np.hypot(x - track.x, y - track.y))
            if distance <= radius:
                pairs.append((distance, track.track_id, di, ti))
    pairs.sort()
    ids: list[int | None] = [None] * len(points)
    used_tracks: set[int] = set()
    for _, _, di, ti in pairs:
        if ids[di] is None and ti not in used_tracks:
            ids[di] = live[ti].track_id
            used_tracks.add(ti)
    next_id = state.next_id
    for di in range(len(points)):
        if ids[di] is None:
            ids[di] = next_id
            next_id += 1
    updated = {t.track_id: t for ti, t in enumerate(live) if ti not in used_tracks}
    for di, (x, y) in enumerate(points):
        updated[ids[di]] = Track(ids[di], float(x), float(y), frame_index)
    tracks = tuple(sorted(updated.values(), key=lambda t: t.track_id))
    return TrackerState(tracks=tracks, next_id=next_id), [int(i) for i in ids]


def assign_track_ids(
    frames: Iterable[np.ndarray], *, radius: float, max_gap: int = 0
) -> list[list[int]]:
    """Track ids for a whole sequence of per-frame centroid arrays (frames 0, 1, 2, ...).

    Arguments:
      frames (Iterable[np.ndarray]): one K_t×2 array of (x, y) centroids per frame.
      radius (float): association radius in pixels.
      max_gap (int): frames a track may go unmatched.
    Returns:
      list[list[int]]: the ids of each frame's detections.
    """
    state = TrackerState()
    result = []
    for index, centroids in enumerate(frames):
        state, ids = update_tracks(state, index, centroids, radius=radius, max_gap=max_gap)
        result.append(ids)
    return result


def draw_track_ids(image: np.ndarray, centroids: np.ndarray, ids: Sequence[int]) -> np.ndarray:
    """Write each track id next to its centroid (for overlay frames).

    Arguments:
      image (np.ndarray): H×W×3 uint8 RGB (not modified).
      centroids (np.ndarray): K×2 (x, y) in pixels.
      ids (Sequence[int]): K track ids.
    Returns:
      np.ndarray: a copy with the ids drawn in cyan.
    """
    canvas = np.ascontiguousarray(image, dtype=np.uint8).copy()
    for (x, y), track_id in zip(np.asarray(centroids).reshape(-1, 2), ids, strict=True):
        cv2.putText(
            canvas,
            str(track_id),
            (round(x) + 3, round(y) - 3),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.35,
            (0, 255, 255),
            1,
            cv2.LINE_AA,
        )
    return canvas


class OverlayVideoWriter:
    """Streams RGB frames into a video file (``cv2.VideoWriter``); the size comes from frame 1.

    Use as a context manager: ``with OverlayVideoWriter(path, fps=25) as video: video.write(f)``.

    Arguments:
      path (str | PathLike): the video file (``.avi`` with the default MJPG codec plays
        everywhere; ``.mp4`` with ``codec="mp4v"``).
      fps (float): frames per second.
      codec (str): FourCC code of the encoder.
    """

    def __init__(self, path: str | os.PathLike, *, fps: float = 25.0, codec: str = "MJPG") -> None:
        if len(codec) != 4:
            raise ValueError(f"{path}: codec must be a FourCC code like 'MJPG', got {codec!r}.")
        self.path = Path(path)
        self.fps = float(fps)
        self.codec = codec
        self.frames_written = 0
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None

    def write(self, frame: np.ndarray) -> None:
        """Append one H×W×3 uint8 RGB frame (every frame must have the first frame's size)."""
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise TypeError(
                f"{self.path}: expected H×W×3 uint8 RGB frames, got {frame.shape} {frame.dtype}."
            )
        height, width = frame.shape[:2]
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            writer = cv2.VideoWriter(
                str(self.path), cv2.VideoWriter_fourcc(*self.codec), self.fps, (width, height)
            )
            if not writer.isOpened():
                raise OSError(
                    f"{self.path}: OpenCV cannot write a {self.codec} video here; use "
                    "an .avi file with codec MJPG or check the folder permissions."
                )
            self._writer, self._size = writer, (height, width)
        if (height, width) != self._size:
            raise ValueError(
                f"{self.path}: frame {self.frames_written} is {height}×{width}, "
                f"the video is {self._size[0]}×{self._size[1]}."
            )
        self._writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        self.frames_written += 1

    def close(self) -> None:
        """Finish the file."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def __enter__(self) -> Self:
        """Return the writer itself."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Finish the file (:meth:`close`)."""
        self.close()


def write_overlay_video(
    frames: Iterable[np.ndarray], path: str | os.PathLike, *, fps: float = 25.0, codec: str = "MJPG"
) -> int:
    """Write RGB frames to a video file.

    Arguments:
      frames (Iterable[np.ndarray]): H×W×3 uint8 RGB frames of one size.
      path (str | PathLike): the video file.
      fps (float): frames per second.
      codec (str): FourCC code.
    Returns:
      int: the number of frames written.
    """
    with OverlayVideoWriter(path, fps=fps, codec=codec) as video:
        for frame in frames:
            video.write(frame)
    return video.frames_written
