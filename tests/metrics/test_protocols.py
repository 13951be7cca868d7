# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Named evaluation protocols (docs/protocols.md): split sizes on the real NUAA-SIRST and
NUDT-SIRST folders under both protocols, BasicIRSTD's CRLF lists, IRSAM's IRSTD-1k test list
without XDU997, aliases and the results record."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA, compose_option, shared_dataset
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image

from irsam.data.collate import collate_irstd
from irsam.data.datamodule import IRSTDDataModule
from irsam.data.errors import DatasetError
from irsam.data.layouts import read_split_file, resolve_splits
from irsam.data.protocols import protocol_record
from irsam.metrics.report import protocol_line


def build(name: str, **overrides: object) -> IRSTDDataModule:
    """Instantiate ``conf/dataset/<name>.yaml`` (workers off, overrides applied) and set it up."""
    cfg = OmegaConf.create(
        {"paths": {"data_dir": "/nonexistent"}, "dataset": compose_option("dataset", name)}
    )
    for key, value in dict(num_workers=0, **overrides).items():
        OmegaConf.update(cfg, f"dataset.{key}", value, merge=False)
    datamodule = instantiate(cfg.dataset)
    datamodule.setup("fit")
    return datamodule


def basicirstd_list(name: str) -> Path:
    """A BasicIRSTD split list under the shared data; skips when absent."""
    path = SHARED_DATA / "splits" / "basicirstd" / name
    if not path.is_file():
        pytest.skip(f"{path} is absent (set IRSAM_SHARED_DATA to its data folder)")
    return path


def test_basicirstd_crlf_lists_read_cleanly() -> None:
    path = basicirstd_list("train_NUAA-SIRST.txt")
    assert b"\r\n" in path.read_bytes()
    names = read_split_file(path)
    assert len(names) == 213 and all("\r" not in n and n == n.strip() for n in names)
    assert names[0].startswith("Misc_")
    test_1k = read_split_file(basicirstd_list("test_IRSTD-1K.txt"))
    assert len(test_1k) == 201 and "XDU997" in test_1k
    sirst3 = read_split_file(basicirstd_list("train_SIRST3.txt"))
    assert len(sirst3) == 1676


@pytest.mark.real_data
@pytest.mark.parametrize(
    ("split", "protocol", "trainval", "test"),
    [
        ("irsam", "irsam", 341, 86),
        ("standard", "standard", 213, 214),
        ("basicirstd", "standard", 213, 214),
        ("sirst_val", "sirst_val", 341, 86),
    ],
)
def test_nuaa_sirst_protocols(split: str, protocol: str, trainval: int, test: int) -> None:
    root = shared_dataset("NUAA-SIRST")
    basicirstd_list("train_NUAA-SIRST.txt")  # the standard lists live next to the dataset
    datamodule = build("nuaa_sirst", root=str(root), split=split)
    record = protocol_record(datamodule)
    assert record["protocol"] == protocol and record["split"] == split
    assert (record["sizes"]["trainval"], record["sizes"]["test"]) == (trainval, test)
    assert record["matches_published"] is True
    if protocol == "standard":
        assert record["files"]["test"].endswith("test_NUAA-SIRST.txt")
    json.dumps(record)


@pytest.mark.real_data
@pytest.mark.parametrize(
    ("split", "protocol", "trainval", "test"),
    [("irsam", "irsam", 1061, 266), ("standard", "standard", 663, 664)],
)
def test_nudt_sirst_protocols(split: str, protocol: str, trainval: int, test: int) -> None:
    root = shared_dataset("NUDT-SIRST")
    datamodule = build("nudt_sirst", root=str(root), split=split)
    record = protocol_record(datamodule)
    assert record["protocol"] == protocol
    assert (record["sizes"]["trainval"], record["sizes"]["test"]) == (trainval, test)
    assert record["sizes"]["val"] == round(0.1 * trainval)
    assert "standard" in protocol_line(record) or "irsam" in protocol_line(record)


@pytest.mark.real_data
def test_nudt_protocols_share_131_test_images_and_alias_is_standard() -> None:
    root = shared_dataset("NUDT-SIRST")
    irsam = {s.name for s in build("nudt_sirst", root=str(root)).test_dataset.samples}
    standard = build("nudt_sirst", root=str(root), split="dnanet_50_50")
    assert protocol_record(standard)["protocol"] == "standard"
    common = irsam & {s.name for s in standard.test_dataset.samples}
    assert len(common) == 131
    basic = read_split_file(basicirstd_list("test_NUDT-SIRST.txt"))
    assert sorted(basic) == sorted(s.name for s in standard.test_dataset.samples)


def write_irstd1k_bundle(root: Path) -> None:
    """A BasicIRSTD-layout IRSTD-1k stand-in: 4×4 images named after the published lists."""
    names = []
    for part in ("train", "test"):
        source = basicirstd_list(f"{part}_IRSTD-1K.txt")
        (root / "img_idx").mkdir(parents=True, exist_ok=True)
        (root / "img_idx" / source.name).write_bytes(source.read_bytes())
        names += read_split_file(source)
    (root / "images").mkdir()
    (root / "masks").mkdir()
    pixels = np.zeros((4, 4), dtype=np.uint8)
    for name in names:
        Image.fromarray(pixels).save(root / "images" / f"{name}.png")
        Image.fromarray(pixels).save(root / "masks" / f"{name}.png")


def test_irstd1k_irsam_protocol_drops_xdu997(tmp_path: Path) -> None:
    write_irstd1k_bundle(tmp_path)
    irsam = build("irstd1k", root=str(tmp_path))
    names = {s.name for s in irsam.test_dataset.samples}
    assert len(names) == 200 and "XDU997" not in names
    record = protocol_record(irsam)
    assert record["exclude"] == ["XDU997"] and record["matches_published"] is True
    assert "excluded XDU997" in protocol_line(record)
    standard = build("irstd1k", root=str(tmp_path), split="standard")
    assert "XDU997" in {s.name for s in standard.test_dataset.samples}
    assert (protocol_record(standard)["sizes"]["trainval"], len(standard.test_dataset)) == (
        800,
        201,
    )


def test_split_file_by_absolute_path_and_bad_entries(tmp_path: Path) -> None:
    for name in ("a", "b", "c", "d"):
        (tmp_path / "images").mkdir(exist_ok=True)
        (tmp_path / "masks").mkdir(exist_ok=True)
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "images" / f"{name}.png")
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "masks" / f"{name}.png")
    lists = tmp_path.parent / f"{tmp_path.name}-lists"
    lists.mkdir()
    (lists / "test.txt").write_bytes(b"a\r\nb.png\r\n")
    splits = {"mine": {"test": str(lists / "test.txt"), "exclude": ["b"], "protocol": "p1"}}
    parts = resolve_splits(tmp_path, splits=splits, split="mine", val_fraction=0.0)
    assert [s.name for s in parts["test"]] == ["a"]
    assert [s.name for s in parts["train"]] == ["c", "d"]
    with pytest.raises(DatasetError, match="unknown key"):
        resolve_splits(tmp_path, splits={"x": {"tests": "t.txt"}}, split="x")
    with pytest.raises(DatasetError, match="must be a list"):
        resolve_splits(tmp_path, splits={"x": {"exclude": "b"}}, split="x")
    with pytest.raises(DatasetError, match="standard"):
        resolve_splits(tmp_path, splits={"standard": {}}, split="irsam")


def test_synthetic_record() -> None:
    datamodule = build("synthetic", **{"synthetic.num_train": 4, "synthetic.num_val": 2})
    record = protocol_record(datamodule)
    assert record["protocol"] == "synthetic" and record["sizes"]["train"] == 4
    assert record["sizes"]["val"] == 2


@pytest.mark.real_data
def test_sirst3_union_of_the_present_members(caplog: pytest.LogCaptureFixture) -> None:
    nuaa, nudt = shared_dataset("NUAA-SIRST"), shared_dataset("NUDT-SIRST")
    basicirstd_list("train_SIRST3.txt")
    members = {
        "nuaa_sirst.root": str(nuaa),
        "nudt_sirst.root": str(nudt),
        "irstd1k.root": str(nuaa.parent / "IRSTD-1k-not-here"),
    }
    overrides = {f"members.{k}": v for k, v in members.items()}
    with caplog.at_level("WARNING"):
        datamodule = build("sirst3", loader_size=64, **overrides)
    assert datamodule.members_present == ["nuaa_sirst", "nudt_sirst"]
    assert "irstd1k" in caplog.text and "missing" in caplog.text
    record = protocol_record(datamodule)
    assert record["protocol"] == "union-standard" and record["members_missing"] == ["irstd1k"]
    assert record["sizes"]["trainval"] == 213 + 663 and record["sizes"]["test"] == 214 + 664
    tests = {k: len(v) for k, v in datamodule.member_test_datasets.items()}
    assert tests == {"nuaa_sirst": 214, "nudt_sirst": 664}
    train = {s.name for s in datamodule.train_dataset.samples + datamodule.val_dataset.samples}
    assert train <= set(read_split_file(basicirstd_list("train_SIRST3.txt")))
    test = {s.name for s in datamodule.test_dataset.samples}
    assert test <= set(read_split_file(basicirstd_list("test_SIRST3.txt")))
    loaders = datamodule.member_test_dataloaders()
    assert list(loaders) == ["nuaa_sirst", "nudt_sirst"]
    union = datamodule.test_dataset  # sorted by name: NUDT's 000xxx first, NUAA's Misc_* last
    first, last = union[0], union[len(union) - 1]
    assert first["orig_size"].tolist() == [256, 256] and last["orig_size"].tolist() != [256, 256]
    batch = collate_irstd([first, last])
    assert batch["image"].shape == (2, 3, 64, 64)


def test_sirst3_refuses_when_no_member_is_present(tmp_path: Path) -> None:
    cfg = {f"members.{m}.root": str(tmp_path / m) for m in ("nuaa_sirst", "nudt_sirst", "irstd1k")}
    with pytest.raises(DatasetError, match="none of the member datasets exists"):
        build("sirst3", **cfg)
