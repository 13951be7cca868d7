# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Target copy-paste: the bank of training targets, the two blends, the mask rule, seeding."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
from conftest import FOLDER_SPLITS, make_dataset
from scipy import ndimage
from torch.utils.data import DataLoader

from irsam.data.collate import collate_irstd
from irsam.data.copy_paste import CopyPasteOptions, TargetBank, paste_targets
from irsam.data.datamodule import IRSTDDataModule, seed_worker
from irsam.data.errors import DatasetError
from irsam.data.io import read_image, read_mask, write_png

NAMES = ["a", "b", "c", "d", "e", "f"]  # f is the test image; val_fraction 0.25 carves val


def bright_dataset(root: Path, names: list[str] = NAMES, bits: int = 8) -> Path:
    """A folder dataset of 32×32 dim-noise images, each with two bright targets (3×3, 2×4)."""
    make_dataset(root, names, size=(32, 32))
    rng = np.random.default_rng(1)
    for k, name in enumerate(names):
        image = rng.normal(60.0, 4.0, (32, 32))
        mask = np.zeros((32, 32), np.uint8)
        for top, left, rows, cols in ((3 + k, 4, 3, 3), (20, 18 + k, 2, 4)):
            mask[top : top + rows, left : left + cols] = 1
            image[top : top + rows, left : left + cols] += 120.0 + 10.0 * k
        if bits == 16:
            write_png(root / "images" / f"{name}.png", (image * 200).astype(np.uint16))
        else:
            write_png(root / "images" / f"{name}.png", np.clip(image, 0, 255).astype(np.uint8))
        write_png(root / "masks" / f"{name}.png", mask * 255)
    return root


def datamodule(root: Path, **copy_paste: object) -> IRSTDDataModule:
    """The data module of ``root`` with copy-paste options (p = 1 unless given)."""
    return IRSTDDataModule(
        root=str(root),
        splits=FOLDER_SPLITS,
        loader_size=32,
        val_fraction=0.25,
        preflight_cache=str(root.parent / "preflight.json"),
        augmentation={"copy_paste": {"p": 1.0} | copy_paste},
    )


def decoded(root: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Image and mask of ``name`` as the dataset decodes them."""
    return read_image(root / "images" / f"{name}.png"), read_mask(root / "masks" / f"{name}.png")


def bank_of(root: Path) -> TargetBank:
    """The bank of every image of ``root``."""
    return TargetBank.from_items(((n, *decoded(root, n)) for n in NAMES), max_side=32)


def test_the_bank_holds_training_targets_only(tmp_path: Path) -> None:
    dm = datamodule(bright_dataset(tmp_path / "data"))
    dm.setup("fit")
    train = {dm.train_dataset.name(i) for i in range(len(dm.train_dataset))}
    held_out = {dm.val_dataset.name(i) for i in range(len(dm.val_dataset))} | {"f"}
    bank, options = dm.train_dataset.copy_paste
    assert options.p == 1.0 and len(bank) == 2 * len(train) and bank.images == len(train)
    assert set(bank.sources) == train and not train & held_out
    assert all(crop.mask.shape in ((3, 3), (2, 4)) and crop.mask.all() for crop in bank.crops)


def test_the_bank_holds_the_label_budget_only(tmp_path: Path) -> None:
    root = bright_dataset(tmp_path / "data")
    dm = IRSTDDataModule(
        root=str(root),
        splits=FOLDER_SPLITS,
        loader_size=32,
        val_fraction=0.25,
        train_count=2,
        preflight_cache=str(tmp_path / "preflight.json"),
        augmentation={"copy_paste": {"p": 1.0}},
    )
    dm.setup("fit")
    kept = {dm.train_dataset.name(i) for i in range(len(dm.train_dataset))}
    bank, _ = dm.train_dataset.copy_paste
    assert len(kept) == 2 and set(bank.sources) == kept and bank.images == 2


def test_no_bank_without_copy_paste(tmp_path: Path) -> None:
    dm = datamodule(bright_dataset(tmp_path / "data"), p=0.0)
    dm.setup("fit")
    assert dm.train_dataset.copy_paste is None


def placed_union(shape: tuple[int, int], placements: list) -> np.ndarray:
    """Full-size union of the placed crop masks."""
    union = np.zeros(shape, bool)
    for placed in placements:
        rows, cols = placed.mask.shape
        union[placed.top : placed.top + rows, placed.left : placed.left + cols] |= placed.mask
    return union


@pytest.mark.parametrize("blend", ["gaussian", "poisson"])
def test_paste_keeps_the_mask_rule_and_the_margin(tmp_path: Path, blend: str) -> None:
    root = bright_dataset(tmp_path / "data")
    bank, (image, mask) = bank_of(root), decoded(root, "a")
    options = CopyPasteOptions(p=1.0, targets=(3, 3), blend=blend, margin=2, scale=(0.5, 1.5))
    placed_any = 0
    for seed in range(5):
        new_image, new_mask, placements = paste_targets(
            image, mask, bank, np.random.default_rng(seed), options
        )
        union = placed_union(mask.shape, placements)
        assert np.array_equal(new_mask, (mask > 0) | union)
        assert new_mask.dtype == np.uint8 and new_image.dtype == np.float32
        changed = np.any(new_image != image, axis=-1)
        assert not (changed & ~union).any()
        assert new_image.min() >= 0.0 and new_image.max() <= 255.0
        occupied = mask > 0
        for placed in placements:
            rows, cols = placed.mask.shape
            window = occupied[
                max(0, placed.top - 2) : placed.top + rows + 2,
                max(0, placed.left - 2) : placed.left + cols + 2,
            ]
            assert not window.any()
            occupied[placed.top : placed.top + rows, placed.left : placed.left + cols] |= (
                placed.mask
            )
        placed_any += len(placements)
        gap = ndimage.binary_dilation(mask > 0, iterations=2) & union
        assert not gap.any()
    assert placed_any > 0
    assert np.array_equal(mask, decoded(root, "a")[1])  # the input mask is not modified


def test_poisson_puts_the_target_on_the_local_level(tmp_path: Path) -> None:
    bank = bank_of(bright_dataset(tmp_path / "data"))
    flat = np.full((32, 32, 3), 100.0, np.float32)
    options = CopyPasteOptions(p=1.0, targets=(1, 1), blend="poisson", scale=(1.0, 1.0))
    image, _, (placed,) = paste_targets(
        flat, np.zeros((32, 32), np.uint8), bank, np.random.default_rng(0), options
    )
    rows, cols = placed.mask.shape
    target = image[placed.top : placed.top + rows, placed.left : placed.left + cols, 0]
    assert target.max() > 150.0 and np.allclose(image[..., 0], image[..., 2])


def test_the_same_seed_gives_the_same_item(tmp_path: Path) -> None:
    root = bright_dataset(tmp_path / "data")
    bank, (image, mask) = bank_of(root), decoded(root, "b")
    options = CopyPasteOptions(p=1.0, targets=(2, 2))

    def paste(seed: int) -> tuple[np.ndarray, np.ndarray, list]:
        return paste_targets(image, mask, bank, np.random.default_rng(seed), options)

    (one, one_mask, _), (two, two_mask, _) = paste(7), paste(7)
    assert np.array_equal(one, two) and np.array_equal(one_mask, two_mask)
    other, other_mask, _ = paste(8)
    assert not np.array_equal(one, other) and not np.array_equal(one_mask, other_mask)


def test_a_16_bit_dataset_pastes_on_the_0_255_scale(tmp_path: Path) -> None:
    dm = datamodule(bright_dataset(tmp_path / "data", bits=16), blend="poisson")
    dm.setup("fit")
    dataset = dm.train_dataset
    bank, _ = dataset.copy_paste
    assert len(bank) > 0 and max(crop.signal.max() for crop in bank.crops) <= 255.0
    dataset.reseed(3)
    item = dataset[0]
    assert item["image"].shape == (3, 32, 32) and float(item["image"].max()) <= 255.0
    assert int((item["mask"] > 0.5).sum()) > int(dataset.load(0)[1].sum()) // 2


def first_batch(dm: IRSTDDataModule, workers: int) -> dict:
    """The first batch (4 items in order) of the reseeded training set with ``workers``."""
    loader = DataLoader(
        dm.train_dataset,
        batch_size=4,
        num_workers=workers,
        collate_fn=functools.partial(collate_irstd, pad_value=128.0),
        worker_init_fn=seed_worker,
    )
    return next(iter(loader))


def test_workers_do_not_change_the_pasted_batch(tmp_path: Path) -> None:
    root = bright_dataset(tmp_path / "data", names=["a", "b", "c", "d", "e", "f", "g"])
    dm = IRSTDDataModule(
        root=str(root),
        splits={"default": {"trainval": "split/trainval.txt", "val": "split/test.txt"}},
        loader_size=32,
        preflight_cache=str(tmp_path / "preflight.json"),
        augmentation={"copy_paste": {"p": 1.0}},
    )
    dm.setup("fit")
    assert len(dm.train_dataset) == 6
    dm.train_dataset.reseed(11)
    serial, parallel = first_batch(dm, 0), first_batch(dm, 2)
    for key in ("image", "mask", "edge"):
        assert serial[key].equal(parallel[key])
    original = sum(int(dm.train_dataset.load(i)[1].sum()) for i in range(4))
    assert float(serial["mask"].sum()) > original  # targets were pasted


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"p": 1.5}, "copy_paste.p"),
        ({"p": -0.1}, "copy_paste.p"),
        ({"blend": "alpha"}, "copy_paste.blend"),
        ({"targets": [3, 1]}, "copy_paste.targets"),
        ({"scale": [1.0]}, "copy_paste.scale"),
        ({"margin": -1}, "copy_paste.margin"),
        ({"attempts": 0}, "copy_paste.attempts"),
        ({"probability": 0.5}, "copy_paste.probability"),
    ],
)
def test_bad_options_name_the_key(tmp_path: Path, options: dict, key: str) -> None:
    with pytest.raises(DatasetError, match=key.replace(".", r"\.")):
        datamodule(tmp_path, **options)


def test_no_usable_target_names_max_side(tmp_path: Path) -> None:
    dm = datamodule(bright_dataset(tmp_path / "data"), max_side=1)
    with pytest.raises(DatasetError, match="copy_paste.max_side=1"):
        dm.setup("fit")
