# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""The one mask rule (irsam.data.io.read_mask / inspect_mask) over every stored encoding."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from irsam.data.io import ImageReadError, inspect_mask, read_mask, write_png

TARGET = np.zeros((12, 16), bool)
TARGET[3:6, 4:9] = True


def _grey(value: float, dtype: type) -> np.ndarray:
    """The target drawn with ``value`` on 0, as ``dtype``."""
    return (TARGET * value).astype(dtype)


def _write(path: Path, kind: str) -> Path:
    """Write :data:`TARGET` in the stored encoding ``kind``."""
    if kind == "u8_255":
        write_png(path, _grey(255, np.uint8))
    elif kind == "u8_1":
        write_png(path, _grey(1, np.uint8))
    elif kind == "u8_100":
        write_png(path, _grey(100, np.uint8))
    elif kind == "u16_255":
        write_png(path, _grey(255, np.uint16))
    elif kind == "u16_1":
        write_png(path, _grey(1, np.uint16))
    elif kind == "u16_65535":
        write_png(path, _grey(65535, np.uint16))
    elif kind in ("rgb_green", "rgb_red"):
        rgb = np.zeros((*TARGET.shape, 3), np.uint8)
        rgb[TARGET, 1 if kind == "rgb_green" else 0] = 255
        write_png(path, rgb)
    elif kind == "rgba_opaque":
        rgba = np.zeros((*TARGET.shape, 4), np.uint8)
        rgba[..., 3] = 255  # alpha everywhere: ignored
        rgba[TARGET, 2] = 200
        Image.fromarray(rgba, "RGBA").save(path)
    elif kind == "palette":
        image = Image.fromarray(TARGET.astype(np.uint8), "P")
        image.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)  # index 1 = blue
        image.save(path)
    elif kind == "float_1":
        tifffile.imwrite(path, _grey(1.0, np.float32))
    elif kind == "bool":
        tifffile.imwrite(path, TARGET)
    return path


ENCODINGS = [
    "u8_255",
    "u8_1",
    "u8_100",
    "u16_255",
    "u16_1",
    "u16_65535",
    "rgb_green",
    "rgb_red",
    "rgba_opaque",
    "palette",
    "float_1",
    "bool",
]


@pytest.mark.parametrize("kind", ENCODINGS)
def test_every_two_level_encoding_reads_the_same_target(tmp_path: Path, kind: str) -> None:
    """8/16-bit, grey/RGB/RGBA/palette, 0/1, 0/255, 0/65535, float and bool: any non-zero value
    in any colour channel is target (a green-only RGB mask and a 16-bit 0/255 mask included)."""
    suffix = ".tif" if kind in ("float_1", "bool") else ".png"
    path = _write(tmp_path / f"mask{suffix}", kind)
    reading = inspect_mask(path)
    assert reading.mask.dtype == np.uint8 and reading.mask.shape == TARGET.shape
    assert np.array_equal(reading.mask, TARGET.astype(np.uint8)), kind
    assert not reading.soft and not reading.constant
    assert np.array_equal(read_mask(path), reading.mask)


def test_soft_masks_are_cut_at_half_their_full_scale(tmp_path: Path) -> None:
    """Several non-zero levels: > 127 for 8-bit (and 8-bit values in 16 bits), > 32767 for
    16-bit, > 0.5 for float up to 1; a JPEG-smeared mask keeps today's > 127 reading."""
    ramp = np.tile(np.arange(0, 256, 16, dtype=np.uint8), (4, 1))  # 0, 16, ..., 240
    write_png(tmp_path / "soft8.png", ramp)
    assert np.array_equal(read_mask(tmp_path / "soft8.png"), (ramp > 127).astype(np.uint8))
    write_png(tmp_path / "soft16_small.png", ramp.astype(np.uint16))
    assert np.array_equal(read_mask(tmp_path / "soft16_small.png"), (ramp > 127).astype(np.uint8))
    wide = ramp.astype(np.uint16) * 257
    write_png(tmp_path / "soft16.png", wide)
    assert np.array_equal(read_mask(tmp_path / "soft16.png"), (wide > 32767).astype(np.uint8))
    unit = ramp.astype(np.float32) / 255.0
    tifffile.imwrite(tmp_path / "soft.tif", unit)
    assert np.array_equal(read_mask(tmp_path / "soft.tif"), (unit > 0.5).astype(np.uint8))
    buffer = io.BytesIO()
    Image.fromarray(_grey(255, np.uint8)).save(buffer, format="JPEG", quality=70)
    (tmp_path / "smeared.jpg").write_bytes(buffer.getvalue())
    decoded = np.asarray(Image.open(tmp_path / "smeared.jpg"))
    reading = inspect_mask(tmp_path / "smeared.jpg")
    assert reading.soft and len(np.unique(decoded)) > 2
    assert np.array_equal(reading.mask, (decoded > 127).astype(np.uint8))
    assert reading.mask[4, 6] == 1 and reading.mask[0, 0] == 0


def test_constant_and_empty_masks(tmp_path: Path) -> None:
    """A target-free mask is constant and empty; a faint soft mask is empty but not constant (the
    pre-flight check flags that one)."""
    write_png(tmp_path / "empty.png", np.zeros((6, 6), np.uint8))
    reading = inspect_mask(tmp_path / "empty.png")
    assert reading.constant and not reading.mask.any()
    faint = np.zeros((6, 6), np.uint8)
    faint[2, 2], faint[2, 3] = 40, 60
    write_png(tmp_path / "faint.png", faint)
    reading = inspect_mask(tmp_path / "faint.png")
    assert reading.soft and not reading.constant and not reading.mask.any()


def test_nan_mask_is_refused_naming_the_file(tmp_path: Path) -> None:
    values = _grey(1.0, np.float32)
    values[0, 0] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", values)
    with pytest.raises(ImageReadError, match=r"nan.tif: 1 NaN/Inf pixel\(s\)"):
        read_mask(tmp_path / "nan.tif")
