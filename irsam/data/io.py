# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Image and mask file I/O shared by datasets, prediction and the one-shot mode.

Every reader raises :class:`ImageReadError` naming the file and the fix; nothing is read
silently wrong. Formats: PNG, JPEG, BMP (Pillow) and TIFF (tifffile); grey, RGB, RGBA and
palette; 8-bit, 16-bit (14-bit sensor data in a 16-bit container included) and float.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import tifffile
from PIL import Image, UnidentifiedImageError

from irsam.utils.atomic import atomic_write_bytes
from irsam.utils.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
"""File suffixes (lower case) that are read as images."""

HighBitNorm = Literal["percentile", "minmax", "bit_depth"]


class ImageReadError(UserError, ValueError):
    """An image or mask file is missing, corrupt, truncated or of an unsupported kind.

    Arguments:
      message (str): the full message: the file, what is wrong and the fix.
      reason (str | None): what is wrong, without file name or fix (for callers that give
        their own fix, e.g. prediction, which has no split file); None = ``message``.
    """

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = message if reason is None else reason


def _decode_problem(path: Path, err: BaseException) -> str:
    """What is wrong with a file that failed to decode, in words (for error messages)."""
    if path.stat().st_size == 0:
        return "the file is empty (0 bytes)"
    text = str(err)
    if isinstance(err, UnidentifiedImageError) or "not a TIFF" in text:
        return f"not an image file of a known format ({text})"
    if "truncated" in text or "failed to read" in text or "ended prematurely" in text:
        return f"truncated: the image data ends early ({text})"
    return f"cannot decode the image ({text}); the file is corrupt"


def decode_pixels(path: str | os.PathLike) -> np.ndarray:
    """Decode a file into its stored pixels, NaN/Inf included (frame streams fill those).

    Arguments:
      path (str | PathLike): an image or mask file.
    Returns:
      np.ndarray: H×W or H×W×C (C in 1, 3, 4) of the stored dtype, palette expanded to RGB(A).
    Raises:
      ImageReadError: the file is missing, empty, corrupt, truncated, not an image or of an
        unsupported shape (``reason`` says which).
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(
            f"{path}: file not found. Check the path or the dataset root.", "file not found"
        )
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            array = tifffile.imread(path)
        else:
            with Image.open(path) as image:
                image.load()  # raises on truncated data
                if image.mode == "P":
                    image = image.convert("RGBA" if "transparency" in image.info else "RGB")
                elif image.mode in ("I;16", "I;16B", "I;16L"):
                    return np.asarray(image, dtype=np.uint16).copy()
                elif image.mode in ("CMYK", "YCbCr", "LA", "PA", "1"):
                    image = image.convert("RGBA" if image.mode in ("LA", "PA") else "RGB")
                array = np.asarray(image)
    except (
        OSError,
        UnidentifiedImageError,
        SyntaxError,
        ValueError,
        tifffile.TiffFileError,
    ) as err:
        problem = _decode_problem(path, err)
        raise ImageReadError(
            f"{path}: {problem}. Re-export or re-download it, or remove it from the split file.",
            problem,
        ) from err
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        array = np.moveaxis(array, 0, -1)  # channel-first TIFF
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (1, 3, 4)):
        reason = f"unsupported array shape {array.shape}; expected H×W, H×W×1, H×W×3 or H×W×4"
        raise ImageReadError(f"{path}: {reason}.", reason)
    return array


def count_non_finite(array: np.ndarray) -> int:
    """Number of NaN or ±Inf values in an array (0 for integer arrays).

    Arguments:
      array (np.ndarray): pixels of any dtype.
    Returns:
      int: the count.
    """
    if array.dtype.kind not in "fc":
        return 0
    return int(array.size - np.count_nonzero(np.isfinite(array)))


def _decode(path: Path) -> np.ndarray:
    """:func:`decode_pixels`, refusing NaN/Inf pixels (a dataset or mask file must be finite)."""
    array = decode_pixels(path)
    bad = count_non_finite(array)
    if bad:
        reason = f"{bad} NaN/Inf pixel(s) of {array.size}; the pixel data is invalid"
        raise ImageReadError(
            f"{path}: {reason}. Re-export it with finite values, or remove it from the split file.",
            reason,
        )
    return array


def probe_image(path: str | os.PathLike) -> tuple[int, int]:
    """Decode a file exactly as :func:`read_image` / :func:`read_mask` do and return its size.

    The full decode (not just the header) catches truncated PNG, JPEG, BMP and TIFF data; the
    pre-flight check of :mod:`irsam.data.preflight` runs it on every file of a split.

    Arguments:
      path (str | PathLike): an image or mask file.
    Returns:
      tuple[int, int]: (height, width) in pixels.
    Raises:
      ImageReadError: the file is missing, empty, corrupt, truncated, not an image or of an
        unsupported shape (``reason`` says which).
    """
    array = _decode(Path(path))
    return int(array.shape[0]), int(array.shape[1])


def to_unit_range(array: np.ndarray, high_bit_norm: HighBitNorm, path: Path) -> np.ndarray:
    """Map an array of any dtype to float32 in [0, 1] (8-bit: divided by 255, exactly)."""
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == bool:
        return array.astype(np.float32)
    values = array.astype(np.float64)
    if high_bit_norm == "bit_depth" and np.issubdtype(array.dtype, np.integer):
        return (values / float(np.iinfo(array.dtype).max)).astype(np.float32)
    if high_bit_norm == "percentile":
        low, high = np.percentile(values, (0.1, 99.9))
    elif high_bit_norm in ("minmax", "bit_depth"):
        low, high = float(values.min()), float(values.max())
    else:
        raise ValueError(
            f"high_bit_norm={high_bit_norm!r} is not one of 'percentile', 'minmax', 'bit_depth' "
            f"(while reading {path})."
        )
    if high <= low:
        return np.zeros(values.shape, np.float32)
    return np.clip((values - low) / (high - low), 0.0, 1.0).astype(np.float32)


def read_image(path: str | os.PathLike, high_bit_norm: HighBitNorm = "percentile") -> np.ndarray:
    """Read an image as float32 RGB with values in [0, 255].

    Grey images are repeated to 3 channels; alpha is dropped. 8-bit data is kept exactly.
    Higher bit depths (16-bit PNG/TIFF, float TIFF) are mapped to [0, 255] without truncation:
    ``percentile`` (default) stretches the 0.1–99.9 percentile range of each image, which
    suits 14-bit IR sensor data stored in 16 bits; ``minmax`` stretches min–max;
    ``bit_depth`` divides by the dtype maximum (65535 for uint16).

    Arguments:
      path (str | PathLike): the image file.
      high_bit_norm (str): how non-8-bit data is mapped to [0, 255].
    Returns:
      np.ndarray: H×W×3 float32, RGB, values in [0, 255].
    """
    path = Path(path)
    array = _decode(path)
    if array.ndim == 3:
        array = array[..., :3] if array.shape[-1] >= 3 else array[..., 0]
    unit = to_unit_range(array, high_bit_norm, path)
    if unit.ndim == 2:
        unit = np.repeat(unit[..., None], 3, axis=-1)
    return np.ascontiguousarray(unit * 255.0, dtype=np.float32)


MASK_RULE = (
    "any non-zero value in any colour channel is target (alpha ignored) when the mask has one "
    "non-zero level (0/1, 0/255, 0/65535, a colour on black, 8-bit values in 16 bits); a mask "
    "with several non-zero levels (soft, anti-aliased or JPEG-smeared) is cut at half its full "
    "scale: > 127 for 8-bit data and for 16-bit data up to 255, > 32767 for other 16-bit data, "
    "> 0.5 for float data up to 1 and > 127 for other float data"
)
"""The one rule that turns a stored mask into target pixels (:func:`read_mask`), for messages."""


@dataclass(frozen=True)
class MaskReading:
    """A decoded ground-truth mask and what its stored values looked like.

    Arguments:
      mask (np.ndarray): H×W uint8 {0, 1}, target = 1 (:data:`MASK_RULE`).
      soft (bool): the mask has several non-zero levels and was cut at half its full scale.
      constant (bool): every stored value (all channels) is the same.
    """

    mask: np.ndarray
    soft: bool
    constant: bool


def _soft_threshold(values: np.ndarray) -> float:
    """Half the full scale of a mask with several non-zero levels (see :data:`MASK_RULE`)."""
    peak = float(values.max(initial=0))
    if np.issubdtype(values.dtype, np.floating):
        return 0.5 if peak <= 1.0 else 127.0
    if values.dtype == np.uint8 or peak <= 255:
        return 127.0
    return float(np.iinfo(values.dtype).max // 2)


def inspect_mask(path: str | os.PathLike) -> MaskReading:
    """Read a ground-truth mask by :data:`MASK_RULE` and say how its values were stored.

    The colour channels are combined by their maximum, so a target drawn in any colour counts.
    A mask with at most one non-zero level marks every non-zero pixel; one with several levels
    (soft edges, JPEG smear) is cut at half its full scale (127 of 255), so smear around a
    target does not widen it.

    Arguments:
      path (str | PathLike): the mask file (any format and dtype :func:`read_image` reads).
    Returns:
      MaskReading: the H×W uint8 {0, 1} mask, whether it was soft and whether it was constant.
    Raises:
      ImageReadError: the file cannot be decoded or holds NaN/Inf values.
    """
    array = _decode(Path(path))
    constant = bool(array.size == 0 or array.min() == array.max())
    if array.ndim == 3:
        array = array[..., :3].max(axis=-1) if array.shape[-1] >= 3 else array[..., 0]
    if array.dtype == bool:
        return MaskReading(array.astype(np.uint8), False, constant)
    levels = array[array != 0]
    if levels.size == 0 or levels.min() == levels.max():
        return MaskReading((array != 0).astype(np.uint8), False, constant)
    mask = (array > _soft_threshold(array)).astype(np.uint8)
    return MaskReading(mask, True, constant)


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Read a ground-truth mask and binarise it by :data:`MASK_RULE`.

    Every reader of ground truth (training, evaluation, ``predict.py gt=``, the one-shot mode)
    goes through this function, so one mask means one set of target pixels everywhere.

    Arguments:
      path (str | PathLike): the mask file.
    Returns:
      np.ndarray: H×W uint8 with values {0, 1}.
    Raises:
      ImageReadError: the file cannot be decoded or holds NaN/Inf values.
    """
    return inspect_mask(path).mask


def encode_png(array: np.ndarray) -> bytes:
    """Encode an ``H×W`` or ``H×W×3`` uint8 / uint16 array as PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def write_png(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write a uint8/uint16 array as a PNG atomically (temporary file, then rename).

    Arguments:
      path (str | PathLike): destination ``.png`` file; parent folders are created.
      array (np.ndarray): H×W or H×W×3, uint8 or uint16.
    """
    atomic_write_bytes(path, encode_png(array))


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name.

    Arguments:
      folder (str | PathLike): a folder.
    Returns:
      list[Path]: files whose suffix is one of :data:`IMAGE_SUFFIXES`.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageReadError(f"{folder}: not a folder of images. Check the path.")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
