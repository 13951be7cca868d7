# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Pre-flight data check (irsam.data.preflight): every problem of every split fails at setup, in
one message (missing masks, bad files, size mismatches, masks the mask rule reads as empty)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import FOLDER_SPLITS as SPLITS
from conftest import make_dataset as make_folder_dataset

from irsam.data import preflight as preflight_module
from irsam.data.datamodule import IRSTDDataModule
from irsam.data.errors import DatasetError
from irsam.data.io import ImageReadError, write_png

NAMES = ["a", "b", "c", "d", "e", "f"]  # f is the test image


def make_dataset(root: Path, names: list[str] = NAMES) -> Path:
    """A valid folder-layout dataset of 32×40 images; the last name is the test split."""
    return make_folder_dataset(root, names)


def datamodule(root: Path, **kwargs: object) -> IRSTDDataModule:
    """The data module of ``root`` with its cache file inside the test folder."""
    options = {
        "root": str(root),
        "splits": SPLITS,
        "split": "default",
        "loader_size": 32,
        "val_fraction": 0.25,
        "preflight_cache": str(root.parent / "preflight.json"),
    }
    options.update(kwargs)
    return IRSTDDataModule(**options)


def spoil(path: Path, kind: str) -> None:
    """Make ``path`` zero-byte, truncated or not an image."""
    if kind == "zero_byte":
        path.write_bytes(b"")
    elif kind == "truncated":
        path.write_bytes(path.read_bytes()[:70])
    else:
        path.write_bytes(b"<html>404 not found</html>\n")


PROBLEM = {
    "zero_byte": "empty (0 bytes)",
    "truncated": "truncated: the image data ends early",
    "non_image": "not an image file",
}


@pytest.mark.parametrize("kind", sorted(PROBLEM))
def test_bad_png_fails_at_setup_naming_the_file(tmp_path: Path, kind: str) -> None:
    """A zero-byte / truncated / non-image .png of the training split fails at setup("fit"),
    before any batch, with the file, the problem, its split file and the fix."""
    root = make_dataset(tmp_path / "data")
    bad = root / "images" / "c.png"
    spoil(bad, kind)
    module = datamodule(root)
    with pytest.raises(DatasetError) as info:
        module.setup("fit")
    message = str(info.value)
    assert str(bad) in message and PROBLEM[kind] in message
    assert str(root / "split" / "trainval.txt") in message
    assert "remove its name from the split file" in message and "dataset.preflight=false" in message


def test_every_bad_file_listed_once_and_test_split_checked_at_fit(tmp_path: Path) -> None:
    """Several bad files (train image, train mask, test image, a size mismatch) are all named in
    one message at setup("fit"): the test image too, so it fails before training, not after."""
    root = make_dataset(tmp_path / "data")
    spoil(root / "images" / "a.png", "zero_byte")
    spoil(root / "masks" / "b.png", "truncated")
    spoil(root / "images" / "f.png", "non_image")  # the test image
    write_png(root / "masks" / "d.png", np.zeros((20, 90), np.uint8))  # other aspect ratio
    with pytest.raises(DatasetError) as info:
        datamodule(root).setup("fit")
    message = str(info.value)
    assert "4 problem(s)" in message
    for path in ("images/a.png", "masks/b.png", "images/f.png", "images/d.png"):
        assert str(root / path) in message, path
    assert "test split, listed in " + str(root / "split" / "test.txt") in message
    assert "aspect ratios differ" in message


def test_stage_checks_only_its_splits_and_switch_disables(tmp_path: Path) -> None:
    """setup("test") reads only the test files; dataset.preflight=false leaves the failure to the
    loader (today's behaviour)."""
    root = make_dataset(tmp_path / "data")
    spoil(root / "images" / "a.png", "truncated")  # a training image
    module = datamodule(root)
    module.setup("test")  # the test split is fine
    with pytest.raises(DatasetError, match="a.png"):
        module.setup("fit")
    unchecked = datamodule(root, preflight=False)
    unchecked.setup("fit")
    index = [s.name for s in unchecked.train_dataset.samples].index("a")
    with pytest.raises(ImageReadError):
        unchecked.train_dataset.load(index)


def test_cache_skips_unchanged_files_and_rechecks_changed_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second setup decodes nothing; a file whose size or mtime changed is decoded again."""
    root = make_dataset(tmp_path / "data")
    calls: list[Path] = []
    for reader in ("probe_image", "inspect_mask"):
        real = getattr(preflight_module, reader)

        def counting(path: Path, real=real) -> object:
            calls.append(Path(path))
            return real(path)

        monkeypatch.setattr(preflight_module, reader, counting)
    datamodule(root).setup("fit")
    assert len(calls) == 2 * len(NAMES)
    calls.clear()
    datamodule(root).setup("fit")
    assert calls == []
    changed = root / "images" / "b.png"
    spoil(changed, "truncated")
    os.utime(changed, ns=(1, 1))
    with pytest.raises(DatasetError, match="b.png"):
        datamodule(root).setup("fit")
    assert calls == [changed]


def test_unwritable_cache_only_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A cache path that cannot be written never fails the run: one warning names it."""
    root = make_dataset(tmp_path / "data")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cache = blocker / "cache.json"
    module = datamodule(root, preflight_cache=str(cache))
    with caplog.at_level(logging.WARNING, logger="irsam.data.preflight"):
        module.setup("fit")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith(
        f"could not write the pre-flight cache {cache} ("
    ), warnings
    assert not cache.exists()
    names = [s.name for s in module.train_dataset.samples + module.val_dataset.samples]
    assert sorted(names) == NAMES[:-1]


def _faint_mask(path: Path) -> None:
    """A soft mask whose levels all stay under half scale: it decodes as empty."""
    mask = np.zeros((32, 40), np.uint8)
    mask[5:8, 5:9] = 60
    mask[6, 6] = 90
    write_png(path, mask)


def test_every_problem_of_every_split_in_one_error(tmp_path: Path) -> None:
    """A missing mask, a mask without an image, a truncated image, a size mismatch, a mask that
    decodes as empty and a bad test image: one setup("fit"), one error naming each of them."""
    root = make_dataset(tmp_path / "data")
    (root / "masks" / "b.png").unlink()  # image b has no mask
    write_png(root / "masks" / "zzz.png", np.zeros((32, 40), np.uint8))  # mask without image
    spoil(root / "images" / "c.png", "truncated")
    write_png(root / "masks" / "d.png", np.zeros((20, 90), np.uint8))
    _faint_mask(root / "masks" / "e.png")
    spoil(root / "images" / "f.png", "zero_byte")  # the test image
    with pytest.raises(DatasetError) as info:
        datamodule(root).setup("fit")
    message = str(info.value)
    assert "6 problem(s)" in message
    assert f"{root / 'images' / 'b.png'} (train split" in message
    assert "no mask: add b.png" in message
    assert f"{root / 'masks' / 'zzz.png'} (no split): mask without an image" in message
    assert str(root / "images" / "c.png") in message and "truncated" in message
    assert str(root / "images" / "d.png") in message and "aspect ratios differ" in message
    assert f"{root / 'masks' / 'e.png'} (" in message and "none is target" in message
    assert str(root / "images" / "f.png") in message and "empty (0 bytes)" in message
    assert "Mask rule: any non-zero value in any colour channel is target" in message


def test_split_names_without_an_image_are_listed_with_the_other_problems(tmp_path: Path) -> None:
    """A split file naming an image that does not exist and a truncated image elsewhere: one
    setup("fit"), one error naming both (the missing name used to stop setup on its own)."""
    root = make_dataset(tmp_path / "data")
    (root / "split" / "trainval.txt").write_text("a\nb\nc\nd\nghost\n")
    spoil(root / "images" / "c.png", "truncated")
    with pytest.raises(DatasetError) as info:
        datamodule(root).setup("fit")
    message = str(info.value)
    assert "2 problem(s)" in message
    assert str(root / "split" / "trainval.txt") in message and "'ghost'" in message
    assert str(root / "images" / "c.png") in message and "truncated" in message
    with pytest.raises(DatasetError, match="lists 1 name"):
        datamodule(root, preflight=False).setup("fit")


def test_without_preflight_a_missing_mask_still_fails_at_setup(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "data")
    (root / "masks" / "b.png").unlink()
    with pytest.raises(DatasetError, match="have no mask"):
        datamodule(root, preflight=False).setup("fit")


def test_soft_mask_passes_with_one_warning_naming_it_and_the_rule(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = make_dataset(tmp_path / "data")
    soft = np.zeros((32, 40), np.uint8)
    soft[5:8, 5:9] = 255
    soft[4, 5:9] = 90  # an anti-aliased edge
    write_png(root / "masks" / "a.png", soft)
    with caplog.at_level(logging.WARNING, logger="irsam.data.preflight"):
        datamodule(root).setup("fit")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(root / "masks" / "a.png") in warnings[0]
    assert "cut at half their full scale" in warnings[0] and "mask rule" in warnings[0]


def test_progress_bar_on_a_large_first_run_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Many unchecked files show a tqdm bar; a second (cached) run shows none."""
    root = make_dataset(tmp_path / "data")
    monkeypatch.setattr(preflight_module, "PROGRESS_MIN_FILES", 4)
    datamodule(root).setup("fit")
    assert "pre-flight check" in capsys.readouterr().err
    datamodule(root).setup("fit")
    assert "pre-flight check" not in capsys.readouterr().err
