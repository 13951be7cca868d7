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
frames; ``percentile`` stretches each frame on its own). See ``docs/peft-export.md``.

Order and workers: one producer decodes every frame once, in order, in a background thread
that keeps :attr:`FrameStream.prefetch` frames ready. In a ``DataLoader`` with workers, worker 0
is that producer and the other workers yield nothing, so batches still arrive in frame order
(videos decode sequentially: frames cannot be shared out without decoding them twice).

Complete or reported (``on_error``, the one-shot tool's option and values): frames that cannot
be decoded, frames the container states but the file does not hold (a truncated video, TIFF or
``.npy``), and frames with NaN/Inf pixels are reported. ``skip`` (default) logs a warning and
goes on: a bad frame is left out, a frame with some NaN/Inf pixels gets them replaced by the
frame's finite minimum (a frame with no finite pixel is left out); each is listed by
:meth:`FrameStream.missing` for the run's ``skipped.txt``. ``stop`` raises at the first one.
"""

from __future__ import annotations

import abc
import os
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from irsam.data.io import (
    IMAGE_SUFFIXES,
    HighBitNorm,
    ImageReadError,
    count_non_finite,
    decode_pixels,
    list_images,
    to_unit_range,
)
from irsam.utils import get_logger

log = get_logger(__name__)

VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg", ".wmv", ".webm")
"""File suffixes (lower case) read as videos through OpenCV."""
STACK_DTYPES = (np.uint8, np.uint16, np.float32, np.float64)
"""Pixel types accepted in TIFF pages and ``.npy`` stacks (8/16-bit sensor data, float)."""
ON_ERROR = ("skip", "stop")
"""Values of ``on_error``: what a frame stream does with a frame it cannot deliver as stored."""
WORKER_REASON = "not written (read in a DataLoader worker process: see the warning it logged)"
"""Reason given for a frame that is missing from the output when a worker process read it."""

T = TypeVar("T")
_END = object()


def _prefetched(items: Iterator[T], depth: int) -> Iterator[T]:
    """Run ``items`` in a background thread ``depth`` items ahead; its errors are raised here."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[Any, BaseException | None]) -> bool:
        """Queue one entry unless the consumer has gone; False when it has."""
        while not stop.is_set():
            try:
                buffer.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        """Fill the queue, then the end marker (with the error that ended it, if any)."""
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_END, None))
        except Exception as err:  # noqa: BLE001 - raised again in the consumer's thread
            put((_END, err))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="irsam-frame-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, error = buffer.get()
            if error is not None:
                raise error
            if item is _END:
                return
            yield item
    finally:
        stop.set()
        thread.join()


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
    """Refuse a pixel type outside :data:`STACK_DTYPES`, naming the file and the conversion."""
    if not any(dtype == np.dtype(d) for d in STACK_DTYPES):
        raise ImageReadError(
            f"{source}: pixel type {dtype} is not supported; expected one of "
            f"{[np.dtype(d).name for d in STACK_DTYPES]} (8/16-bit sensor counts or float). "
            "Convert the stack, e.g. array.astype(np.uint16) for 14-bit counts."
        )


class FrameStream(IterableDataset, abc.ABC):
    """Base class: yields loader items of every frame, in order, each decoded once.

    Subclasses provide :meth:`frame_count`, :meth:`_expected` and :meth:`_arrays`.

    Arguments:
      path (str | PathLike): the source.
      loader_size (int): loader resolution S (the one the checkpoint was trained at); 0 keeps
        every frame at its native size (tiled prediction, :mod:`irsam.tiling`).
      high_bit_norm (str): mapping of 16-bit / float data to 0–255.
      on_error (str): a frame that cannot be delivered as stored: ``skip`` (warning, listed by
        :meth:`missing`) or ``stop`` (raise :class:`ImageReadError`).
    """

    prefetch = 4
    """Frames decoded ahead of the consumer by the background thread."""

    def __init__(
        self,
        path: str | os.PathLike,
        loader_size: int,
        high_bit_norm: HighBitNorm = "percentile",
        on_error: str = "skip",
    ) -> None:
        super().__init__()
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error={on_error!r} is not one of {', '.join(ON_ERROR)}.")
        self.path = Path(path)
        self.loader_size = int(loader_size)
        self.high_bit_norm = high_bit_norm
        self.on_error = on_error
        self.skipped: dict[str, str] = {}
        """Frames left out or repaired in this process: frame (file, or ``<file> frame <i>``)
        → reason."""

    @abc.abstractmethod
    def frame_count(self) -> int | None:
        """Number of frames the source states (None when unknown)."""

    @abc.abstractmethod
    def _expected(self) -> list[tuple[str, str]]:
        """(frame, output name) of every frame the source states, in order."""

    @abc.abstractmethod
    def _arrays(self) -> Iterator[tuple[int, str, str, np.ndarray]]:
        """Yield (index, frame, name, stored pixels) of each decodable frame, reporting the rest."""

    def _frame(self, index: int) -> str:
        """How a frame of a single-file source is named in reports."""
        return f"{self.path} frame {index}"

    def _name(self, index: int) -> str:
        """Output name of a frame of a single-file source."""
        return f"{self.path.stem}_{index:06d}"

    def _report(self, frames: list[str], reason: str, fix: str, action: str = "skipping") -> None:
        """Raise for ``frames`` (``on_error=stop``), or warn once and record them (``skip``)."""
        label = frames[0] if len(frames) == 1 else f"{frames[0]} to {frames[-1].split()[-1]}"
        if self.on_error == "stop":
            raise ImageReadError(
                f"{label}: {reason}. {fix}, or pass on_error=skip to go on without it.", reason
            )
        log.warning("%s frame %s (on_error=skip): %s", action, label, reason)
        self.skipped.update(dict.fromkeys(frames, reason))

    def frames(self) -> Iterator[tuple[int, str, np.ndarray]]:
        """Yield (frame index, name, H×W×3 float32 RGB 0–255) of every deliverable frame.

        NaN/Inf pixels are replaced by the frame's finite minimum (``on_error=skip``, reported);
        a frame without a finite pixel is left out.

        Returns:
          Iterator[tuple[int, str, np.ndarray]]: the frames, in order.
        """
        for index, frame, name, array in self._arrays():
            bad = count_non_finite(array)
            if bad:
                finite = np.isfinite(array)
                fix = "Re-export the frames with finite values"
                if bad == array.size:
                    self._report([frame], "every pixel is NaN/Inf", fix)
                    continue
                self._report(
                    [frame],
                    f"{bad} NaN/Inf pixel(s) of {array.size} replaced by the frame's finite "
                    "minimum",
                    fix,
                    action="repairing",
                )
                array = np.where(finite, array, array[finite].min())
            yield index, name, frame_to_rgb(array, self.high_bit_norm, self.path)

    def missing(self, written: set[str]) -> dict[str, str]:
        """The frames of the source that were left out or repaired, with the reason.

        Arguments:
          written (set[str]): names of the frames the prediction wrote.
        Returns:
          dict[str, str]: frame (file, or ``<file> frame <i>``) → reason, in frame order. A
          frame read in a DataLoader worker process has only :data:`WORKER_REASON`.
        """
        result: dict[str, str] = {}
        for frame, name in self._expected():
            if frame in self.skipped:
                result[frame] = self.skipped[frame]
            elif name not in written:
                result[frame] = WORKER_REASON
        for frame, reason in self.skipped.items():
            result.setdefault(frame, reason)
        return result

    def _item(self, index: int, name: str, image: np.ndarray) -> dict[str, Any]:
        """The loader item of one frame (resized to the loader size; loader size 0: native)."""
        height, width = image.shape[:2]
        size = self.loader_size
        if size:
            image = cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR)
        return {
            "image": torch.from_numpy(image).permute(2, 0, 1).contiguous(),
            "orig_size": torch.tensor([height, width]),
            "valid_size": torch.tensor([size, size] if size else [height, width]),
            "name": name,
            "path": str(self.path),
            "frame_index": index,
        }

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Loader items of every frame, in order (worker 0 only, when in a worker process)."""
        worker = get_worker_info()
        if worker is not None and worker.id > 0:
            return
        items = (self._item(index, name, image) for index, name, image in self.frames())
        yield from _prefetched(items, self.prefetch)


class VideoFrames(FrameStream):
    """Frames of a video file decoded by OpenCV (``cv2.VideoCapture``), BGR converted to RGB.

    The decoded frames are compared with the container's frame count
    (``CAP_PROP_FRAME_COUNT``): frames it states but that do not decode (a truncated or corrupt
    file) are reported by ``on_error``.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        loader_size: int,
        high_bit_norm: HighBitNorm = "percentile",
        on_error: str = "skip",
    ) -> None:
        super().__init__(path, loader_size, high_bit_norm, on_error)
        capture = self._open()
        self.fps = float(capture.get(cv2.CAP_PROP_FPS)) or 25.0
        self._count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        ok, _ = capture.read()
        capture.release()
        if not ok:
            raise ImageReadError(self._unreadable("no frame could be decoded"))

    def _unreadable(self, why: str) -> str:
        """The message of a video that cannot be used at all."""
        return (
            f"{self.path}: unreadable video ({why}). The file is corrupt, truncated or uses a "
            "codec this OpenCV build lacks: re-encode it (ffmpeg -i in.mp4 -c:v mjpeg "
            "out.avi) or extract the frames into a folder and pass the folder."
        )

    def _open(self) -> cv2.VideoCapture:
        """Open the video, or raise naming the file."""
        if not self.path.is_file():
            raise ImageReadError(f"{self.path}: file not found. Check input=<video file>.")
        capture = cv2.VideoCapture(str(self.path))
        if not capture.isOpened():
            raise ImageReadError(self._unreadable("OpenCV cannot open it"))
        return capture

    def frame_count(self) -> int | None:
        """The container's frame count (None when it states none).

        Returns:
          int | None: the count.
        """
        return self._count if self._count > 0 else None

    def _expected(self) -> list[tuple[str, str]]:
        """(frame, output name) of every frame the container states."""
        return [(self._frame(i), self._name(i)) for i in range(self.frame_count() or 0)]

    def _arrays(self) -> Iterator[tuple[int, str, str, np.ndarray]]:
        """Decode frames until the video ends, then report the stated frames that did not come."""
        capture = self._open()
        index = 0
        try:
            while True:
                ok, bgr = capture.read()
                if not ok:
                    break
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                yield index, self._frame(index), self._name(index), rgb
                index += 1
        finally:
            capture.release()
        if self._count > index:
            self._report(
                [self._frame(i) for i in range(index, self._count)],
                f"not decoded: the video ends after {index} of the {self._count} frames its "
                "container states (truncated or corrupt file)",
                "Re-download or re-encode the video",
            )


class FolderFrames(FrameStream):
    """Image files of a folder (sorted by name) as frames; names are the file stems.

    Two files with one stem (``a.png``, ``a.jpg``) are refused: their outputs would share the
    name ``a``.

    Arguments:
      files (list[Path] | None): the frame files; None = the images directly in ``path``.
      on_error (str): an unreadable frame or one with NaN/Inf pixels: ``skip`` or ``stop``
        (see :class:`FrameStream`).
    Raises:
      ImageReadError: no frame files, or two of them share a stem (naming both).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        loader_size: int,
        high_bit_norm: HighBitNorm = "percentile",
        files: list[Path] | None = None,
        on_error: str = "skip",
    ) -> None:
        super().__init__(path, loader_size, high_bit_norm, on_error)
        self.files = list(files) if files is not None else list_images(self.path)
        if not self.files:
            raise ImageReadError(f"{self.path}: no frames found ({', '.join(IMAGE_SUFFIXES)}).")
        seen: dict[str, Path] = {}
        for file in self.files:
            other = seen.setdefault(file.stem, file)
            if other != file:
                raise ImageReadError(
                    f"{other} and {file} share the name {file.stem!r}: their masks, overlays "
                    f"and targets would both be named {file.stem}. Rename one of them or move "
                    "it out of the input."
                )

    def frame_count(self) -> int:
        """Number of frame files.

        Returns:
          int: the count.
        """
        return len(self.files)

    def _expected(self) -> list[tuple[str, str]]:
        """(file, stem) of every frame file."""
        return [(str(file), file.stem) for file in self.files]

    def _arrays(self) -> Iterator[tuple[int, str, str, np.ndarray]]:
        """Decode each file, reporting those that cannot be read."""
        for index, file in enumerate(self.files):
            try:
                array = decode_pixels(file)
            except ImageReadError as err:
                fix = "Replace the file or move it out of the input"
                self._report([str(file)], err.reason, fix)
                continue
            yield index, str(file), file.stem, array


class TiffFrames(FrameStream):
    """Pages of a (multi-page) TIFF, read one page at a time with ``tifffile``.

    The frame count is the larger of the pages found and the count the file's own metadata
    states (tifffile's shaped or ImageJ series), so a truncated file reports its lost pages.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        loader_size: int,
        high_bit_norm: HighBitNorm = "percentile",
        on_error: str = "skip",
    ) -> None:
        super().__init__(path, loader_size, high_bit_norm, on_error)
        import tifffile

        if not self.path.is_file():
            raise ImageReadError(f"{self.path}: file not found. Check input=<tiff file>.")
        try:
            with tifffile.TiffFile(self.path) as tif:
                first = tif.pages[0]
                _check_dtype(np.dtype(first.dtype), self.path)
                series = tif.series[0].shape if tif.series else ()
                page_ndim = len(first.shape)
                stated = int(np.prod(series[:-page_ndim])) if len(series) > page_ndim else 1
                self._count = max(len(tif.pages), stated)
        except (tifffile.TiffFileError, IndexError) as err:
            raise ImageReadError(
                f"{self.path}: cannot read the TIFF ({err}); the file is corrupt or not a TIFF."
            ) from err

    def frame_count(self) -> int:
        """Number of pages the file states.

        Returns:
          int: the count.
        """
        return self._count

    def _expected(self) -> list[tuple[str, str]]:
        """(frame, output name) of every page the file states."""
        return [(self._frame(i), self._name(i)) for i in range(self._count)]

    def _arrays(self) -> Iterator[tuple[int, str, str, np.ndarray]]:
        """Decode each page, reporting undecodable pages and the pages the file lacks."""
        import tifffile

        fix = "Re-export or re-download the TIFF"
        with tifffile.TiffFile(self.path) as tif:
            for index in range(self._count):
                try:
                    array = tif.pages[index].asarray()
                except IndexError:
                    self._report(
                        [self._frame(i) for i in range(index, self._count)],
                        f"not in the file: it holds {index} of the {self._count} pages it "
                        "states (truncated file)",
                        fix,
                    )
                    return
                except (tifffile.TiffFileError, ValueError, OSError) as err:
                    self._report([self._frame(index)], f"cannot decode the page ({err})", fix)
                    continue
                _check_dtype(array.dtype, self.path)
                if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
                    array = np.moveaxis(array, 0, -1)  # channel-first page
                yield index, self._frame(index), self._name(index), array


class NpyFrames(FrameStream):
    """An N×H×W (grey) or N×H×W×3 ``.npy`` stack, memory-mapped (one frame in memory at once).

    A truncated file (shorter than its header states) streams its complete frames and reports
    the others.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        loader_size: int,
        high_bit_norm: HighBitNorm = "percentile",
        on_error: str = "skip",
    ) -> None:
        super().__init__(path, loader_size, high_bit_norm, on_error)
        if not self.path.is_file():
            raise ImageReadError(f"{self.path}: file not found. Check input=<stack.npy>.")
        try:
            with open(self.path, "rb") as handle:
                version = np.lib.format.read_magic(handle)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
                else:
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
                self._offset = handle.tell()
        except ValueError as err:
            raise ImageReadError(
                f"{self.path}: not a plain .npy array ({err}); save the stack "
                "with np.save(path, array)."
            ) from err
        _check_dtype(dtype, self.path)
        if not (len(shape) == 3 or (len(shape) == 4 and shape[-1] == 3)):
            raise ImageReadError(
                f"{self.path}: stack of shape {shape} is not supported; "
                "expected N×H×W (grey frames) or N×H×W×3 (RGB frames)."
            )
        self._shape, self._dtype, self._fortran = tuple(shape), np.dtype(dtype), bool(fortran)
        frame_bytes = max(1, int(np.prod(shape[1:])) * self._dtype.itemsize)
        stored = (self.path.stat().st_size - self._offset) // frame_bytes
        self._count = int(shape[0])
        self._complete = min(self._count, int(stored))
        if self._complete < self._count and self._fortran:
            raise ImageReadError(
                f"{self.path}: truncated Fortran-order stack (no frame is complete); re-save it "
                "with np.save(path, np.ascontiguousarray(stack))."
            )

    def frame_count(self) -> int:
        """Number of frames the header states.

        Returns:
          int: the count.
        """
        return self._count

    def _expected(self) -> list[tuple[str, str]]:
        """(frame, output name) of every frame the header states."""
        return [(self._frame(i), self._name(i)) for i in range(self._count)]

    def _arrays(self) -> Iterator[tuple[int, str, str, np.ndarray]]:
        """Map the complete frames, yield them, then report the frames the file lacks."""
        if self._complete:
            stack = np.memmap(
                self.path,
                dtype=self._dtype,
                mode="r",
                offset=self._offset,
                shape=(self._complete, *self._shape[1:]),
                order="F" if self._fortran else "C",
            )
            for index in range(self._complete):
                yield index, self._frame(index), self._name(index), np.array(stack[index])
        if self._complete < self._count:
            self._report(
                [self._frame(i) for i in range(self._complete, self._count)],
                f"not in the file: it holds {self._complete} of the {self._count} frames its "
                "header states (truncated file)",
                "Save the stack again with np.save(path, array)",
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
      on_error (str): a frame that cannot be delivered as stored: ``skip`` or ``stop`` (see
        :class:`FrameStream`).
    Returns:
      FrameStream: the source (a folder or a single image gives :class:`FolderFrames`).
    Raises:
      ImageReadError: unknown suffix, missing or unreadable source, two frames sharing a name
        (naming the files).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if path.is_dir():
        return FolderFrames(path, loader_size, high_bit_norm, on_error=on_error)
    if suffix in VIDEO_SUFFIXES:
        return VideoFrames(path, loader_size, high_bit_norm, on_error)
    if suffix in (".tif", ".tiff"):
        return TiffFrames(path, loader_size, high_bit_norm, on_error)
    if suffix == ".npy":
        return NpyFrames(path, loader_size, high_bit_norm, on_error)
    if suffix in IMAGE_SUFFIXES:
        if not path.is_file():
            raise ImageReadError(f"{path}: file not found. Check input=<image, folder or video>.")
        return FolderFrames(path, loader_size, high_bit_norm, files=[path], on_error=on_error)
    raise ImageReadError(
        f"{path}: unknown input kind {suffix!r}. Use a folder of frames, a video "
        f"({', '.join(VIDEO_SUFFIXES)}), a multi-page .tif, a .npy stack or an image file."
    )
