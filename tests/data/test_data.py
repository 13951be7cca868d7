# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Data layouts, Hydra dataset configs, real datasets, transforms, formats, synthetic data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from conftest import compose_option, shared_dataset
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from PIL import Image
from scipy import ndimage

from irsam.data.collate import collate_irstd
from irsam.data.datamodule import IRSTDDataModule
from irsam.data.dataset import IRSTDDataset
from irsam.data.edges import edge_target
from irsam.data.io import read_mask, write_png
from irsam.data.layouts import detect_layout, read_split_file
from irsam.data.synthetic import render_synthetic_sample, write_synthetic_dataset


def dataset_cfg(name: str, **overrides: object) -> DictConfig:
    """``conf/dataset/<name>.yaml`` under a parent config that defines ``paths``, with overrides."""
    cfg = OmegaConf.create(
        {
            "paths": {"data_dir": "/nonexistent/data"},
            "dataset": compose_option("dataset", name),
        }
    )
    for key, value in overrides.items():
        OmegaConf.update(cfg, f"dataset.{key}", value, merge=False)
    return cfg.dataset


def build(name: str, **overrides: object) -> IRSTDDataModule:
    """Instantiate a dataset config (workers off) and run setup()."""
    datamodule = instantiate(dataset_cfg(name, num_workers=0, **overrides))
    datamodule.setup("fit")
    return datamodule


def write_tree(
    root: Path, image_dir: str, mask_dir: str, names: list[str], suffix: str = ""
) -> None:
    """Write small synthetic image/mask pairs under ``root`` (mask stem = name + suffix)."""
    for index, name in enumerate(names):
        image, mask = render_synthetic_sample(7, "train", index, 48, 64)
        write_png(root / image_dir / f"{name}.png", image)
        write_png(root / mask_dir / f"{name}{suffix}.png", mask * 255)


def check_batch(batch: dict, size: int, eval_batch: bool) -> None:
    """Assert the batch contract."""
    count = len(batch["name"])
    assert batch["image"].dtype == torch.float32 and batch["image"].shape == (count, 3, size, size)
    assert 0.0 <= batch["image"].min() and batch["image"].max() <= 255.0
    for key in ("mask", "edge"):
        assert batch[key].dtype == torch.float32 and batch[key].shape == (count, 1, size, size)
        assert 0.0 <= batch[key].min() and batch[key].max() <= 1.0
    assert batch["orig_size"].dtype == torch.int64 and batch["orig_size"].shape == (count, 2)
    assert batch["valid_size"].dtype == torch.int64 and batch["valid_size"].shape == (count, 2)
    assert (batch["valid_size"] <= size).all() and (batch["valid_size"] > 0).all()
    assert all(isinstance(n, str) and "." not in n for n in batch["name"])
    if eval_batch:
        native = batch["mask_native"]
        assert native.dtype == torch.float32 and native.shape[:2] == (count, 1)
        assert set(native.unique().tolist()) <= {0.0, 1.0}
        assert native.shape[-2:] == tuple(batch["orig_size"].max(0).values.tolist())
        assert (batch["valid_size"] == size).all()  # resize policy
    else:
        assert "mask_native" not in batch


# ----------------------------------------------------------------------------- real datasets


@pytest.mark.real_data
def test_nuaa_sirst_real_through_config() -> None:
    root = shared_dataset("NUAA-SIRST")
    assert detect_layout(root).name == "sirst"
    datamodule = build("nuaa_sirst", root=str(root))
    assert len(datamodule.train_dataset) + len(datamodule.val_dataset) == 341
    assert len(datamodule.val_dataset) == 34 and len(datamodule.test_dataset) == 86
    train_names = {s.name for s in datamodule.train_dataset.samples}
    val_names = {s.name for s in datamodule.val_dataset.samples}
    test_names = {s.name for s in datamodule.test_dataset.samples}
    assert not train_names & val_names and not (train_names | val_names) & test_names
    assert all(s.mask_path.name == f"{s.name}_pixels0.png" for s in datamodule.test_dataset.samples)
    check_batch(next(iter(datamodule.train_dataloader())), 512, eval_batch=False)
    batch = next(iter(datamodule.test_dataloader()))
    check_batch(batch, 512, eval_batch=True)
    assert batch["mask_native"].sum() > 0
    # Misc_111's mask is stored at 592x400 for a 325x220 image: resized (a switch), not an error
    index = [s.name for s in datamodule.test_dataset.samples].index("Misc_111")
    item = datamodule.test_dataset[index]
    assert item["orig_size"].tolist() == [220, 325] and item["mask_native"].shape == (1, 220, 325)
    assert item["mask_native"].sum() > 0
    # the authors' own validation list
    official = build("nuaa_sirst", root=str(root), split="sirst_val")
    counts = [len(official.train_dataset), len(official.val_dataset), len(official.test_dataset)]
    assert counts == [256, 85, 86]


@pytest.mark.real_data
@pytest.mark.parametrize(
    ("split", "trainval", "test"), [("irsam", 1061, 266), ("dnanet_50_50", 663, 664)]
)
def test_nudt_sirst_real_both_splits(split: str, trainval: int, test: int) -> None:
    root = shared_dataset("NUDT-SIRST")
    datamodule = build("nudt_sirst", root=str(root), split=split)
    assert len(datamodule.train_dataset) + len(datamodule.val_dataset) == trainval
    assert len(datamodule.test_dataset) == test
    assert len(datamodule.val_dataset) == round(0.1 * trainval)
    dataset = datamodule.test_dataset
    for index in range(0, len(dataset), 60):
        item = dataset[index]
        assert tuple(item["orig_size"].tolist()) == (256, 256)
        assert item["image"].shape == (3, 512, 512)
        native = item["mask_native"]
        assert set(native.unique().tolist()) == {0.0, 1.0}  # binary and never empty in NUDT
        assert item["edge"].sum() > 0
    check_batch(next(iter(datamodule.val_dataloader())), 512, eval_batch=True)


@pytest.mark.real_data
def test_split_reader_handles_missing_trailing_newline() -> None:
    root = shared_dataset("NUAA-SIRST")
    names = read_split_file(root / "idx_427" / "test.txt")
    assert len(names) == 86 and all(n.startswith("Misc_") for n in names)
    assert not (root / "idx_427" / "test.txt").read_text().endswith("\n")


def test_default_root_interpolates_paths_data_dir() -> None:
    for name, folder in (
        ("irstd1k", "IRSTD-1k"),
        ("nudt_sirst", "NUDT-SIRST"),
        ("nuaa_sirst", "NUAA-SIRST"),
    ):
        cfg = dataset_cfg(name)
        assert cfg.root == f"/nonexistent/data/{folder}"
        assert cfg.loader_size == 512 and cfg.batch_size == 4 and cfg.cache_images
    assert dataset_cfg("synthetic").root is None


# ------------------------------------------------------------------- layouts built in tmp_path


@pytest.mark.parametrize("layout", ["isnet", "basicirstd"])
def test_irstd1k_layouts(tmp_path: Path, layout: str) -> None:
    names = [f"XDU{i}" for i in range(12)]
    if layout == "isnet":
        write_tree(tmp_path, "IRSTD1k_Img", "IRSTD1k_Label", names)
        (tmp_path / "trainval.txt").write_text("\n".join(names[:9]) + "\n\n")
        (tmp_path / "test.txt").write_text("\n".join(f"{n}.png" for n in names[9:]))
    else:
        write_tree(tmp_path, "images", "masks", names)
        (tmp_path / "img_idx").mkdir()
        (tmp_path / "img_idx" / "train_IRSTD-1k.txt").write_text("\n".join(names[:9]))
        (tmp_path / "img_idx" / "test_IRSTD-1k.txt").write_text("\n".join(names[9:]))
    assert detect_layout(tmp_path).name == layout
    datamodule = build("irstd1k", root=str(tmp_path), loader_size=64, val_fraction=0.25)
    assert [len(datamodule.train_dataset), len(datamodule.val_dataset)] == [7, 2]
    assert [s.name for s in datamodule.test_dataset.samples] == sorted(names[9:])
    check_batch(next(iter(datamodule.train_dataloader())), 64, eval_batch=False)
    batch = next(iter(datamodule.test_dataloader()))
    check_batch(batch, 64, eval_batch=True)
    assert batch["orig_size"][0].tolist() == [48, 64]


def test_validation_carve_is_fixed_and_disjoint(tmp_path: Path) -> None:
    names = [f"{i:06d}" for i in range(1, 41)]
    write_tree(tmp_path, "images", "masks", names)
    (tmp_path / "split").mkdir()
    (tmp_path / "split" / "trainval.txt").write_text("\n".join(names[:30]))
    splits = {"mine": {"trainval": "split/trainval.txt", "test": None}}
    first = build("nudt_sirst", root=str(tmp_path), splits=splits, split="mine", val_fraction=0.2)
    torch.manual_seed(123)  # the carve must not depend on the global seed
    second = build("nudt_sirst", root=str(tmp_path), splits=splits, split="mine", val_fraction=0.2)
    val = [s.name for s in first.val_dataset.samples]
    assert len(val) == 6 and val == [s.name for s in second.val_dataset.samples]
    assert not set(val) & {s.name for s in first.train_dataset.samples}
    assert len(first.test_dataset) == 0
    with pytest.raises(ValueError, match="no test set"):
        first.test_dataloader()


def test_folder_layout_without_split_files(tmp_path: Path) -> None:
    names = [f"frame_{i}" for i in range(10)]
    write_tree(tmp_path, "images", "masks", names[:5])
    write_tree(tmp_path, "images", "masks", names[5:], suffix="_pixels0")  # both mask namings
    splits = {"all": {"trainval": None, "test": None}}
    datamodule = build("nudt_sirst", root=str(tmp_path), splits=splits, split="all", loader_size=32)
    assert detect_layout(tmp_path).name == "folder"
    assert len(datamodule.train_dataset) + len(datamodule.val_dataset) == 10


# ------------------------------------------------------------------------------- file formats


@pytest.mark.parametrize("kind", ["png16", "tiff16", "palette", "rgba"])
def test_image_formats_load(tmp_path: Path, kind: str) -> None:
    grey, mask = render_synthetic_sample(3, "train", 1, 40, 56)
    images = tmp_path / "images"
    images.mkdir()
    if kind == "png16":
        write_png(images / "a.png", grey.astype(np.uint16) * 64 + 1000)
    elif kind == "tiff16":
        tifffile.imwrite(images / "a.tif", grey.astype(np.uint16) * 64 + 1000)
    elif kind == "palette":
        Image.fromarray(grey).convert("P").save(images / "a.png")
    else:
        Image.fromarray(np.dstack([grey, grey, grey, np.full_like(grey, 200)]), "RGBA").save(
            images / "a.png"
        )
    write_png(tmp_path / "masks" / "a.png", mask * 255)
    dataset = IRSTDDataset.from_folder(images, tmp_path / "masks", stage="eval", loader_size=64)
    item = dataset[0]
    assert item["image"].shape == (3, 64, 64) and item["image"].dtype == torch.float32
    assert item["orig_size"].tolist() == [40, 56]
    image = dataset.load(0)[0]
    assert image.shape == (40, 56, 3)
    if kind.endswith("16"):  # high-bit data stretched to the full 0-255 range, not truncated
        assert image.max() > 250 and image.min() < 5
    else:  # 8-bit kept exactly (palette of a grey image can quantise slightly)
        assert np.abs(image[..., 0] - grey).max() <= (8 if kind == "palette" else 0)


# ---------------------------------------------------------------------------------- transforms


def square_scene(
    size: tuple[int, int] = (96, 128), box: tuple[int, int, int, int] = (20, 30, 10, 12)
) -> tuple:
    """A dark image with one bright rectangle (y, x, h, w) and its mask."""
    image = np.full((*size, 3), 20.0, np.float32)
    mask = np.zeros(size, np.uint8)
    y, x, h, w = box
    image[y : y + h, x : x + w] = 240.0
    mask[y : y + h, x : x + w] = 1
    return image, mask


class OneScene(IRSTDDataset):
    """A dataset serving one in-memory scene (no files)."""

    def __init__(self, image: np.ndarray, mask: np.ndarray, **kwargs: object) -> None:
        super().__init__([], **kwargs)
        self.scene = (image, mask)

    def __len__(self) -> int:
        return 1

    def name(self, index: int) -> str:
        return "scene"

    def decode(self, index: int) -> tuple:
        return self.scene


def test_edge_target_is_mask_boundary() -> None:
    _, mask = square_scene()
    edge = edge_target(mask)  # 0/1 storage must still give edges
    assert edge.dtype == np.float32 and set(np.unique(edge)) == {0.0, 1.0}
    outline = ndimage.binary_dilation(mask) & ~ndimage.binary_erosion(mask)
    assert (edge > 0).sum() > 20 and (outline | (edge == 0)).all()


def test_horizontal_flip_moves_target_centroid() -> None:
    image, mask = square_scene()
    augmentation = {"mode": "resize", "hflip_p": 1.0}
    item = OneScene(image, mask, stage="train", loader_size=128, augmentation=augmentation)[0]
    target = item["mask"][0] > 0.5
    cy, cx = ndimage.center_of_mass(target.numpy())
    # resize 96x128 -> 128x128 then flip: x centre 35.5 -> 127 - 35.5; y centre 24.5 scaled by 4/3
    assert abs(cx - (127 - 35.5)) < 0.5 and abs(cy - ((24.5 + 0.5) * 128 / 96 - 0.5)) < 0.5
    bright = item["image"][0] > 130
    assert (bright == target).float().mean() > 0.999


@pytest.mark.parametrize("soft", [True, False])
def test_irsam_augmentation_keeps_mask_and_edge_aligned(soft: bool) -> None:
    image, mask = square_scene(box=(40, 60, 14, 16))
    dataset = OneScene(image, mask, stage="train", loader_size=96, soft_masks=soft)
    shrunk = 0
    for epoch_seed in range(25):
        dataset.reseed(epoch_seed)
        item = dataset[0]
        target = item["mask"][0] > 0.5
        bright = item["image"][0] > 130
        union = (target | bright).sum()
        assert union > 0 and (target & bright).sum() / union > 0.8
        edge = item["edge"][0] > 0.2
        assert (
            edge.any()
            and (
                torch.from_numpy(ndimage.binary_dilation(target.numpy(), iterations=3)) | ~edge
            ).all()
        )
        if not soft:
            assert set(item["mask"].unique().tolist()) <= {0.0, 1.0}
        h = int(item["valid_size"][0])
        if h < 96:  # scale < 1: bottom/right padding with the pad value
            shrunk += 1
            assert (item["image"][:, h:, :] == 128.0).all() and (item["mask"][:, h:, :] == 0).all()
    assert shrunk > 0


def test_augmentation_is_reproducible_from_seed() -> None:
    image, mask = square_scene()
    first = OneScene(image, mask, stage="train", loader_size=64)
    second = OneScene(image, mask, stage="train", loader_size=64)
    first.reseed(11)
    second.reseed(11)
    for _ in range(3):  # the epoch seed fixes the item's augmentation, however often it is built
        assert torch.equal(first[0]["image"], second[0]["image"])
    second.reseed(12)
    assert not torch.equal(first[0]["image"], second[0]["image"])


def test_target_crop_contains_target() -> None:
    image, mask = square_scene(size=(256, 256), box=(200, 10, 3, 3))
    augmentation = {"mode": "target_crop", "target_crop_p": 1.0}
    dataset = OneScene(image, mask, stage="train", loader_size=64, augmentation=augmentation)
    for epoch_seed in range(10):
        dataset.reseed(epoch_seed)
        item = dataset[0]
        assert item["image"].shape == (3, 64, 64) and item["mask"].sum() > 0


def test_eval_pad_policy_and_mixed_size_collate() -> None:
    items = []
    for size in ((50, 70), (64, 40)):
        image, mask = square_scene(size=size, box=(5, 5, 4, 4))
        dataset = OneScene(image, mask, stage="eval", loader_size=512, eval_resize="pad")
        items.append(dataset[0])
    assert items[0]["image"].shape == (3, 64, 96) and items[0]["valid_size"].tolist() == [50, 70]
    assert (items[0]["image"][:, 50:, :] == 128.0).all()
    batch = collate_irstd(items)
    assert batch["image"].shape == (2, 3, 64, 96) and batch["mask_native"].shape == (2, 1, 64, 70)
    assert batch["valid_size"].tolist() == [[50, 70], [64, 40]]
    assert batch["orig_size"].tolist() == [[50, 70], [64, 40]]
    assert batch["mask_native"][1, 0, :, 40:].sum() == 0


def test_prediction_items_without_masks(tmp_path: Path) -> None:
    write_tree(tmp_path, "images", "masks", ["a", "b"])
    dataset = IRSTDDataset.from_folder(tmp_path / "images", stage="eval", loader_size=32)
    batch = collate_irstd([dataset[0], dataset[1]])
    assert batch["image"].shape == (2, 3, 32, 32) and batch["name"] == ["a", "b"]
    assert not {"mask", "edge", "mask_native"} & set(batch)


# ------------------------------------------------------------------------------ synthetic data


def test_synthetic_is_deterministic_and_realistic() -> None:
    first = render_synthetic_sample(0, "train", 5)
    assert all(np.array_equal(a, b) for a, b in zip(first, render_synthetic_sample(0, "train", 5)))
    assert not np.array_equal(first[0], render_synthetic_sample(1, "train", 5)[0])
    assert not np.array_equal(first[0], render_synthetic_sample(0, "test", 5)[0])
    empty, areas, foreground = 0, [], []
    for index in range(150):
        image, mask = render_synthetic_sample(0, "train", index)
        assert image.dtype == np.uint8 and image.shape == (128, 128) and image.std() > 3
        labels, count = ndimage.label(mask)
        empty += count == 0
        areas += np.bincount(labels.ravel())[1:].tolist()
        foreground.append(mask.mean())
        if count:  # targets stand out of their surroundings
            assert image[mask > 0].mean() > np.median(image)
    assert 0.05 < empty / 150 < 0.3
    assert min(areas) >= 1 and max(areas) <= 80 and max(areas) > 30 and min(areas) < 5
    assert np.mean(foreground) < 0.01  # an all-target prediction has IoU < 0.01


def test_synthetic_datamodule_default_config() -> None:
    datamodule = build(
        "synthetic", **{"synthetic.num_train": 8, "synthetic.num_val": 4, "synthetic.num_test": 4}
    )
    counts = [
        len(datamodule.train_dataset),
        len(datamodule.val_dataset),
        len(datamodule.test_dataset),
    ]
    assert counts == [8, 4, 4]
    check_batch(next(iter(datamodule.train_dataloader())), 128, eval_batch=False)
    batch = next(iter(datamodule.val_dataloader()))
    check_batch(batch, 128, eval_batch=True)
    native = np.stack([render_synthetic_sample(0, "val", i)[1] for i in range(4)])
    assert np.array_equal(batch["mask_native"][:, 0].numpy(), native)
    torch.manual_seed(3)  # the augmentation is reseeded from the torch RNG at each epoch start
    datamodule.reseed_augmentation()
    a = next(iter(datamodule.train_dataloader()))
    torch.manual_seed(3)
    datamodule.reseed_augmentation()
    b = next(iter(datamodule.train_dataloader()))
    assert a["name"] == b["name"] and torch.equal(a["image"], b["image"])


def _two_augmented_epochs(num_workers: int, persistent_workers: bool) -> list[dict]:
    """Per training item (by name) of two epochs: the valid size (the random scale) and the
    binary mask (scale, crop and flip), through one DataLoader reused across the epochs."""
    datamodule = instantiate(
        dataset_cfg(
            "synthetic",
            num_workers=num_workers,
            persistent_workers=persistent_workers,
            loader_size=64,
            batch_size=4,
            soft_masks=False,  # nearest: the masks are exact, whichever process builds them
            **{"synthetic.num_train": 8, "synthetic.native_size": 64},
        )
    )
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    epochs = []
    for epoch in range(2):
        torch.manual_seed(epoch)  # what ResumeState restores before reseeding
        datamodule.reseed_augmentation()
        epochs.append(
            {
                name: (size.tolist(), mask[0] > 0.5)
                for batch in loader
                for name, size, mask in zip(batch["name"], batch["valid_size"], batch["mask"])
            }
        )
    return epochs


@pytest.mark.parametrize("persistent", [False, True], ids=["workers", "persistent_workers"])
def test_epoch_augmentation_does_not_depend_on_workers(persistent: bool) -> None:
    """Item i of an epoch is augmented from (epoch seed, i) alone: two workers, persistent ones
    too (they see the second epoch's seed through shared memory), give every item of both
    epochs the same scale, crop and flip as the main process (what exact resume needs)."""
    reference = _two_augmented_epochs(0, False)
    with_workers = _two_augmented_epochs(2, persistent)
    for expected, actual in zip(reference, with_workers, strict=True):
        assert expected.keys() == actual.keys()
        for name, (size, mask) in expected.items():
            assert actual[name][0] == size and torch.equal(actual[name][1], mask), name
    first, second = reference
    assert any(first[n][0] != second[n][0] for n in first), "the epochs must augment differently"


def test_write_synthetic_dataset_loads_with_nudt_config(tmp_path: Path) -> None:
    write_synthetic_dataset(tmp_path, num_trainval=10, num_test=4, native_size=64, seed=2)
    assert sorted(p.name for p in (tmp_path / "IRSAM_split").iterdir()) == [
        "test.txt",
        "trainval.txt",
    ]
    mask = read_mask(tmp_path / "masks" / "000001.png")
    assert np.array_equal(mask, render_synthetic_sample(2, "train", 0, 64, 64)[1])
    datamodule = build("nudt_sirst", root=str(tmp_path), loader_size=64)
    assert len(datamodule.train_dataset) + len(datamodule.val_dataset) == 10
    assert len(datamodule.test_dataset) == 4
    assert not datamodule.persistent_workers  # only applied with num_workers > 0


def test_workers_are_seeded_and_cache_fills(tmp_path: Path) -> None:
    write_synthetic_dataset(tmp_path, num_trainval=8, num_test=2, native_size=48, seed=4)
    cfg = dataset_cfg("nudt_sirst", root=str(tmp_path), loader_size=48, num_workers=2, batch_size=8)
    datamodule = instantiate(cfg)
    datamodule.setup("fit")
    assert datamodule.persistent_workers
    torch.manual_seed(0)
    first = next(iter(datamodule.train_dataloader()))
    torch.manual_seed(0)
    second = next(iter(datamodule.train_dataloader()))
    assert torch.equal(first["image"], second["image"])
    dataset = datamodule.val_dataset
    assert not dataset._cache
    dataset[0]
    assert 0 in dataset._cache and dataset._cache[0][0].dtype == np.uint8
