# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Frame streams for prediction: videos, frame folders, multi-page TIFFs and ``.npy`` stacks.

Every source is a ``torch`` ``IterableDataset`` that decodes one frame at a time (constant memory
for long videos and large stacks) and yields evaluation-style items without ground truth (the
batch contract of :mod:`irsam.data.collate`), plus the frame index:

``image`` 3×S×S float32 RGB 0–255 (resized bilinearly to the loader size S), ``orig_size`` (2,)
long (H, W), ``valid_size`` (2,) long (S, S), ``name`` (``<stem>_<index:06d>`` or the frame file's
stem), ``path`` (str, the source file), ``frame_index`` (int, 0-based).

16-bit and float frames are mapped to 0–255 by ``high_bit_norm`` as in
:func:`irsam.data.io.read_image` (``bit_depth`` or ``minmax`` keep the scale steady across
frames; ``percentile`` stretches each frame on its own). With several ``DataLoader`` workers,
worker k yields the frames whose index is k modulo the number of workers. See
``docs/peft-export.md``.

Unreadable frames of a folder (``on_error``, the one-shot tool's option and values): ``skip``
(default) logs a warning per bad frame, goes on with the next, and the frames are listed by
:meth:`FrameStream.missing` for the run's report; ``stop`` raises at the first one.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from irsam.data.io import (
    IMAGE_SUFFIXES,
    HighBitNorm,
    ImageReadError,
    list_images,
    read_image,
    to_unit_range,
)
from irsam.utils import get_logger

log = get_logger(__name__)

VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg", ".wmv", ".webm")
"""File suffixes (lower case) read as videos through OpenCV."""
STACK_DTYPES = (np.uint8, np.uint16, np.float32, np.float64)
"""Pixel types accepted in TIFF pages and ``.npy`` stacks (8/16-bit sensor data, float)."""
ON_ERROR = ("skip", "stop")
"""Values of ``on_error``: what a frame stream does with a frame it cannot decode."""


def frame_to_rgb(array: np.ndarray, high_bit_norm: HighBitNorm, source: Path) -> np.ndarray:
    """One decoded frame (H×W grey or H×W×3 RGB, any accepted dtype) → H×W×3 float32 0–255.

    Arguments:
      array (np.ndarray): the frame.
      high_bit_norm (str): mapping of 16-bit / float data (see :func:`read_image`).
      source (Path): the file, named in errors.
    Returns:
      np.ndarray: H×W×3 float32 RGB in [0, 255].
    """
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 3 and array.shape[-1] == 4:
        array = array[..., :3]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] != 3):
        raise ImageReadError(
            f"{source}: frames of shape {array.shape} are not supported; "
            "expected H×W (grey) or H×W×3 (RGB) frames."
        )
    unit = to_unit_range(np.asarray(array), high_bit_norm, source)
    if unit.ndim == 2:
        unit = np.repeat(unit[..., None], 3, axis=-1)
    return np.ascontiguousarray(unit * 255.0, dtype=np.float32)


def _check_dtype(dtype: np.dtype, source: Path) -> None:
    if not any(dtype == np.dtype(d) for d in STACK_DTYPES):
        raise ImageReadError(
            f"{source}: pixel type {dtype} is not supported; expected one of "
            f"{[np.dtype(d).name for d in STACK_DTYPES]} (8/16-bit sensor counts or float). "
            "Convert the stack, e.g. array.astype(np.uint16) for 14-bit counts."
        )


class FrameStream(IterableDataset, abc.ABC):
    """Base class: yields loader items from :meth:`frames` (index, H×W×3 float32 0–255 RGB).

    Arguments:
      path (str | PathLike): the source.
      loader_size (int): loader resolution S (the one the checkpoint was trained at).
      high_bit_norm (str): mapping of 16-bit / float data to 0–255.
    """

    def __init__(
        self, path: str | os.PathLike, loader_size: int, high_bit_norm: HighBitNorm = "percentile"
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.loader_size = int(loader_size)
        self.high_bit_norm = high_bit_norm

    @abc.abstractmethod
    def frame_count(self) -> int | None:
        """Number of frames, when the source knows it (videos report an estimate)."""

    @abc.abstractmethod
    def frames(self) -> Iterator[tuple[int, str, np.ndarray]]:
        """Yield (frame index, name, H×W×3 float32 RGB 0–255) in order."""

    def missing(self, written: set[str]) -> dict[str, str]:
        """The frames of the source that were skipped as unreadable, with the reason.

        Arguments:
          written (set[str]): names of the frames the prediction wrote.
        Returns:
          dict[str, str]: source file → reason (empty: videos, stacks and TIFFs stop on a bad
          frame instead).
        """
        return {}

    def _item(self, index: int, name: str, image: np.ndarray) -> dict[str, Any]:
        height, width = image.shape[:2]
        size = self.loader_size
        resized = cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR)
        return {
            "image": torch.from_numpy(resized).permute(2, 0, 1).contiguous(),
            "orig_size": torch.tensor([height, width]),
            "valid_size": torch.tensor([size, size]),
            "name": name,
            "path": str(self.path),
            "frame_index": index,
        }

    def __iter__(self) -> Iterator[dict[str, Any]]:
        worker = get_worker_info()
        workers, rank = (1, 0) if worker is None else (worker.num_workers, worker.id)
        for index, name, image in self.frames():
            if index % workers == rank:
                yield self._item(index, name, image)


class VideoFrames(FrameStream):
    """Frames of a video file decoded by OpenCV (``cv2.VideoCapture``), BGR converted to RGB."""

    def __init__(
        self, path: str | os.PathLike, loader_size: int, high_bit_norm: HighBitNorm = "percentile"
    ) -> None:
        super().__init__(path, loader_size, high_bit_norm)
        capture = self._open()
        self.fps = float(capture.get(cv2.CAP_PROP_FPS)) or 25.0
        self._count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        ok, _ = capture.read()
        capture.release()
        if not ok:
            raise ImageReadError(self._unreadable("no frame could be decoded"))

    def _unreadable(self, why: str) -> str:
        return (
            f"{self.path}: unreadable video ({why}). The file is corrupt, truncated or uses a "
            "codec this OpenCV build lacks: re-encode it (ffmpeg -i in.mp4 -c:v mjpeg "
            "out.avi) or extract the frames into a folder and pass the folder."
        )

    def _open(self) -> cv2.VideoCapture:
        if not self.path.is_file():
            raise ImageReadError(f"{self.path}: file not found. Check input=<video file>.")
        capture = cv2.VideoCapture(str(self.path))
        if not capture.isOpened():
            raise ImageReadError(self._unreadable("OpenCV cannot open it"))
        return capture

    def frame_count(self) -> int | None:
        """The container's frame count (an estimate for some codecs; None when unknown)."""
        return self._count if self._count > 0 else None

    def frames(self) -> Iterator[tuple[int, str, np.ndarray]]:
        capture = self._open()
        try:
            index = 0
            while True:
                ok, bgr = capture.read()
                if not ok:
                    break
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                yield (
                    index,
                    f"{self.path.stem}_{index:06d}",
                    frame_to_rgb(rgb, self.high_bit_norm, self.path),
                )
                index += 1
        finally:
            capture.release()


class FolderFrames(FrameStream):
    """Image files of a folder (sorted by name) as frames; names are the file stems.

    Arguments:
      files (list[Path] | None): the frame files; None = the images directly in ``path``.
      on_error (str): an unreadable frame: ``skip`` (warning, the frame is left out and listed
        by :meth:`missing`) or ``stop`` (raise :class:`ImageReadError`).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        loader_size: int,
        high_bit_norm: HighBitNorm = "percentile",
        files: list[Path] | None = None,
        on_error: str = "skip",
    ) -> None:
        super().__init__(path, loader_size, high_bit_norm)
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error={on_error!r} is not one of {', '.join(ON_ERROR)}.")
        self.on_error = on_error
        self.files = list(files) if files is not None else list_images(self.path)
        if not self.files:
            raise ImageReadError(f"{self.path}: no frames found ({', '.join(IMAGE_SUFFIXES)}).")
        self.skipped: dict[str, str] = {}

    def frame_count(self) -> int:
        return len(self.files)

    def frames(self) -> Iterator[tuple[int, str, np.ndarray]]:
        for index, file in enumerate(self.files):
            try:
                image = read_image(file, self.high_bit_norm)
            except ImageReadError as err:
                if self.on_error == "stop":
                    raise ImageReadError(
                        f"{file}: {err.reason}. Replace the file or move it out of the input, "
                        "or pass on_error=skip to skip unreadable frames.",
                        err.reason,
                    ) from err
                log.warning("skipping frame %s (on_error=skip): %s", file, err.reason)
                self.skipped[str(file)] = err.reason
                continue
            yield index, file.stem, image

    def missing(self, written: set[str]) -> dict[str, str]:
        """The frame files that were not written, with the reason.

        Arguments:
          written (set[str]): names (stems) of the frames the prediction wrote.
        Returns:
          dict[str, str]: file → reason. With DataLoader workers the reason is read in the
          worker, so the main process only knows the frame was not written.
        """
        return {
            str(file): self.skipped.get(
                str(file), "unreadable (see the warning logged by the DataLoader worker)"
            )
            for file in self.files
            if file.stem not in written
        }


class TiffFrames(FrameStream):
    """Pages of a (multi-page) TIFF, read one page at a time with ``tifffile``."""

    def __init__(
        self, path: str | os.PathLike, loader_size: int, high_bit_norm: HighBitNorm = "percentile"
    ) -> None:
        super().__init__(path, loader_size, high_bit_norm)
        import tifffile

        if not self.path.is_file():
            raise ImageReadError(f"{self.path}: file not found. Check input=<tiff file>.")
        try:
            with tifffile.TiffFile(self.path) as tif:
                self._count = len(tif.pages)
                first = tif.pages[0]
                _check_dtype(np.dtype(first.dtype), self.path)
        except tifffile.TiffFileError as err:
            raise ImageReadError(
                f"{self.path}: cannot read the TIFF ({err}); the file is corrupt or not a TIFF."
            ) from err

    def frame_count(self) -> int:
        return self._count

    def frames(self) -> Iterator[tuple[int, str, np.ndarray]]:
        import tifffile

        with tifffile.TiffFile(self.path) as tif:
            for index, page in enumerate(tif.pages):
                array = page.asarray()
                _check_dtype(array.dtype, self.path)
                if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
                    array = np.moveaxis(array, 0, -1)  # channel-first page
                yield (
                    index,
                    f"{self.path.stem}_{index:06d}",
                    frame_to_rgb(array, self.high_bit_norm, self.path),
                )


class NpyFrames(FrameStream):
    """An N×H×W (grey) or N×H×W×3 ``.npy`` stack, memory-mapped (one frame in memory at once)."""

    def __init__(
        self, path: str | os.PathLike, loader_size: int, high_bit_norm: HighBitNorm = "percentile"
    ) -> None:
        super().__init__(path, loader_size, high_bit_norm)
        if not self.path.is_file():
            raise ImageReadError(f"{self.path}: file not found. Check input=<stack.npy>.")
        try:
            stack = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except ValueError as err:
            raise ImageReadError(
                f"{self.path}: not a plain .npy array ({err}); save the stack "
                "with np.save(path, array)."
            ) from err
        _check_dtype(stack.dtype, self.path)
        if not (stack.ndim == 3 or (stack.ndim == 4 and stack.shape[-1] == 3)):
            raise ImageReadError(
                f"{self.path}: stack of shape {stack.shape} is not supported; "
                "expected N×H×W (grey frames) or N×H×W×3 (RGB frames)."
            )
        self._count = int(stack.shape[0])

    def frame_count(self) -> int:
        return self._count

    def frames(self) -> Iterator[tuple[int, str, np.ndarray]]:
        stack = np.load(self.path, mmap_mode="r", allow_pickle=False)
        for index in range(self._count):
            yield (
                index,
                f"{self.path.stem}_{index:06d}",
                frame_to_rgb(np.array(stack[index]), self.high_bit_norm, self.path),
            )


def open_stream(
    path: str | os.PathLike,
    loader_size: int,
    high_bit_norm: HighBitNorm = "percentile",
    on_error: str = "skip",
) -> FrameStream:
    """The frame stream for ``path``: a folder, a video, a TIFF, a ``.npy`` stack or one image.

    Arguments:
      path (str | PathLike): ``predict.py``'s ``input``.
      loader_size (int): loader resolution S.
      high_bit_norm (str): mapping of 16-bit / float data to 0–255.
      on_error (str): an unreadable frame of a folder: ``skip`` or ``stop`` (see
        :class:`FolderFrames`).
    Returns:
      FrameStream: the source (a folder or a single image gives :class:`FolderFrames`).
    Raises:
      ImageReadError: unknown suffix, missing or unreadable source (naming the file).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if path.is_dir():
        return FolderFrames(path, loader_size, high_bit_norm, on_error=on_error)
    if suffix in VIDEO_SUFFIXES:
        return VideoFrames(path, loader_size, high_bit_norm)
    if suffix in (".tif", ".tiff"):
        return TiffFrames(path, loader_size, high_bit_norm)
    if suffix == ".npy":
        return NpyFrames(path, loader_size, high_bit_norm)
    if suffix in IMAGE_SUFFIXES:
        if not path.is_file():
            raise ImageReadError(f"{path}: file not found. Check input=<image, folder or video>.")
        return FolderFrames(path, loader_size, high_bit_norm, files=[path], on_error=on_error)
    raise ImageReadError(
        f"{path}: unknown input kind {suffix!r}. Use a folder of frames, a video "
        f"({', '.join(VIDEO_SUFFIXES)}), a multi-page .tif, a .npy stack or an image file."
    )
