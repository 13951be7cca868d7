# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Bad dataset input: one clear DatasetError (or ImageReadError) naming the file and the fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import FOLDER_SPLITS as SPLITS
from conftest import compose_option, make_dataset
from hydra.utils import instantiate
from omegaconf import OmegaConf

from irsam.data.datamodule import IRSTDDataModule
from irsam.data.dataset import IRSTDDataset
from irsam.data.errors import DatasetError
from irsam.data.io import ImageReadError, write_png
from irsam.data.layouts import resolve_splits


def resolve(root: Path, **kwargs: object) -> dict:
    """resolve_splits with the test split definition."""
    return resolve_splits(root, splits=kwargs.pop("splits", SPLITS), split="default", **kwargs)


def eval_dataset(root: Path) -> IRSTDDataset:
    """Every image of ``root`` as an evaluation dataset."""
    return IRSTDDataset.from_folder(root / "images", root / "masks", stage="eval", loader_size=32)


def test_missing_root_through_config_lists_layouts_and_key(tmp_path: Path) -> None:
    cfg = OmegaConf.create(
        {
            "paths": {"data_dir": str(tmp_path)},
            "dataset": compose_option("dataset", "nudt_sirst"),
        }
    )
    datamodule = instantiate(cfg.dataset)
    with pytest.raises(DatasetError) as info:
        datamodule.setup("fit")
    message = str(info.value)
    assert str(tmp_path / "NUDT-SIRST") in message and "dataset.root" in message
    assert "IRSTD1k_Img" in message and "idx_427" in message and "img_idx" in message


def test_root_without_layout_folders(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    with pytest.raises(DatasetError, match="missing folder") as info:
        resolve(tmp_path)
    assert str(tmp_path / "masks") in str(info.value)


def test_image_without_mask(tmp_path: Path) -> None:
    make_dataset(tmp_path, ["a", "b", "c"])
    (tmp_path / "masks" / "b.png").unlink()
    with pytest.raises(DatasetError, match="have no mask") as info:
        resolve(tmp_path)
    assert str(tmp_path / "images" / "b.png") in str(info.value)


def test_mask_without_image(tmp_path: Path) -> None:
    make_dataset(tmp_path, ["a", "b", "c"])
    (tmp_path / "masks" / "b.png").rename(tmp_path / "masks" / "orphan_pixels0.png")
    write_png(tmp_path / "masks" / "b.png", np.zeros((32, 40), np.uint8))
    with pytest.raises(DatasetError, match="have no image") as info:
        resolve(tmp_path)
    assert str(tmp_path / "masks" / "orphan_pixels0.png") in str(info.value)


def test_split_name_without_file(tmp_path: Path) -> None:
    make_dataset(tmp_path, ["a", "b", "c"])
    (tmp_path / "split" / "trainval.txt").write_text("a\nghost.png\n\nb\n")
    with pytest.raises(DatasetError, match="ghost") as info:
        resolve(tmp_path)
    assert str(tmp_path / "split" / "trainval.txt") in str(info.value)


def test_missing_and_empty_split_files(tmp_path: Path) -> None:
    make_dataset(tmp_path, ["a", "b", "c"])
    (tmp_path / "split" / "test.txt").write_text("\n\n")
    with pytest.raises(DatasetError, match="empty") as info:
        resolve(tmp_path)
    assert str(tmp_path / "split" / "test.txt") in str(info.value)
    (tmp_path / "split" / "test.txt").unlink()
    with pytest.raises(DatasetError, match="split file not found") as info:
        resolve(tmp_path)
    assert str(tmp_path / "split" / "test.txt") in str(info.value)


def test_empty_training_set_and_unknown_split(tmp_path: Path) -> None:
    make_dataset(tmp_path, ["a", "b"])
    with pytest.raises(DatasetError, match="training set .* is empty"):
        resolve(tmp_path, val_fraction=0.5)
    with pytest.raises(DatasetError, match="'default'"):
        resolve_splits(tmp_path, splits=SPLITS, split="nope")


def test_corrupt_png_names_the_file_at_load(tmp_path: Path) -> None:
    make_dataset(tmp_path, ["a", "b"])
    path = tmp_path / "images" / "b.png"
    path.write_bytes(path.read_bytes()[:60])  # truncated
    dataset = eval_dataset(tmp_path)  # cheap checks pass: the file exists and is paired
    dataset[0]
    with pytest.raises(ImageReadError) as info:
        dataset[1]
    assert str(path) in str(info.value) and isinstance(info.value, ValueError)


def test_image_mask_size_mismatch(tmp_path: Path) -> None:
    make_dataset(tmp_path, ["a", "b"])
    write_png(tmp_path / "masks" / "b.png", np.zeros((64, 80), np.uint8))  # same aspect, 2x
    with pytest.raises(DatasetError, match="sizes differ") as info:
        eval_dataset(tmp_path)[1]
    assert str(tmp_path / "images" / "b.png") in str(info.value)
    assert str(tmp_path / "masks" / "b.png") in str(info.value)
    assert "mask_size_mismatch=resize" in str(info.value)
    mask = np.zeros((64, 80), np.uint8)
    mask[10:20, 20:40] = 255
    write_png(tmp_path / "masks" / "b.png", mask)
    options = {
        "stage": "eval",
        "loader_size": 32,
        "mask_size_mismatch": "resize",
        "cache_images": False,
    }
    resizing = IRSTDDataset.from_folder(tmp_path / "images", tmp_path / "masks", **options)
    native = resizing[1]["mask_native"][0]
    assert native.shape == (32, 40) and native.sum() == 5 * 10 and native[5:10, 10:20].all()
    write_png(tmp_path / "masks" / "b.png", np.zeros((30, 90), np.uint8))  # other aspect
    with pytest.raises(DatasetError, match="aspect ratios differ"):
        resizing[1]


def test_root_and_synthetic_are_exclusive(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="exactly one"):
        IRSTDDataModule(root=str(tmp_path), synthetic={"num_train": 1}, loader_size=32)
    with pytest.raises(DatasetError, match="exactly one"):
        IRSTDDataModule(loader_size=32)
