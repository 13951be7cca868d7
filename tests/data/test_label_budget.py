# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Label budget (``dataset.train_fraction`` / ``train_count``): a seeded, nested and stratified
subset of the training split; validation unchanged; recorded in results and the run folder."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import FOLDER_SPLITS, make_dataset

from irsam.data.datamodule import IRSTDDataModule
from irsam.data.io import write_png
from irsam.data.layouts import label_budget
from irsam.data.protocols import protocol_record
from irsam.data.sirst3 import UnionDataModule
from irsam.metrics.report import protocol_line
from irsam.resume import experiment_identity, identity_differences
from irsam.utils import ConfigError

FRACTIONS = (0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0)


def pool(total: int, free_every: int = 10, free_of: int = 3) -> tuple[list[str], list[bool]]:
    """``total`` names; names ``i`` with ``i % free_every < free_of`` are target-free."""
    names = [f"img{i:03d}" for i in range(total)]
    return names, [i % free_every >= free_of for i in range(total)]


def test_subset_for_seed_is_fixed() -> None:
    names, has_target = pool(20)
    assert label_budget(names, has_target, fraction=0.25, seed=0) == [
        "img002",
        "img007",
        "img010",
        "img013",
        "img015",
    ]
    assert label_budget(names, has_target, count=10, seed=0) == [
        "img002",
        "img003",
        "img004",
        "img007",
        "img010",
        "img012",
        "img013",
        "img015",
        "img016",
        "img019",
    ]


@pytest.mark.parametrize("seed", [0, 1, 2, 7, 123])
def test_smaller_budgets_are_nested_in_larger_ones(seed: int) -> None:
    names, has_target = pool(997)
    previous: set[str] = set()
    for fraction in FRACTIONS:
        chosen = set(label_budget(names, has_target, fraction=fraction, seed=seed))
        assert len(chosen) == max(1, int(997 * fraction + 0.5))  # halves rounded up
        assert previous <= chosen
        previous = chosen
    assert previous == set(names)
    by_count = [set(label_budget(names, has_target, count=k, seed=seed)) for k in range(1, 60)]
    assert all(a < b for a, b in itertools.pairwise(by_count))


@pytest.mark.parametrize("total", [1, 2, 3, 7, 10, 31])
def test_nested_and_stratified_for_every_count(total: int) -> None:
    rng = np.random.default_rng(total)
    for _ in range(5):
        names = [f"n{i}" for i in range(total)]
        has_target = list(rng.random(total) < rng.random())
        free = total - sum(has_target)
        previous: set[str] = set()
        for count in range(1, total + 1):
            chosen = set(label_budget(names, has_target, count=count, seed=3))
            chosen_free = sum(not has_target[names.index(n)] for n in chosen)
            assert len(chosen) == count and previous <= chosen
            assert abs(chosen_free - count * free / total) <= 1
            if free < total:
                assert chosen_free < count  # at least one image with a target
            if free and count >= 2:
                assert chosen_free >= 1  # at least one target-free image
            previous = chosen


def test_target_free_share_is_kept() -> None:
    names, has_target = pool(500)  # 30 % target-free
    for fraction in FRACTIONS:
        chosen = label_budget(names, has_target, fraction=fraction, seed=5)
        free = sum(not has_target[names.index(n)] for n in chosen)
        assert abs(free - 0.3 * len(chosen)) <= 1


def test_one_image_budget_has_a_target() -> None:
    names, has_target = pool(10, free_every=10, free_of=6)  # 60 % target-free
    chosen = label_budget(names, has_target, count=1, seed=0)
    assert len(chosen) == 1 and has_target[names.index(chosen[0])]


def test_seeds_give_different_subsets_in_split_order() -> None:
    names, has_target = pool(200)
    subsets = {tuple(label_budget(names, has_target, fraction=0.1, seed=s)) for s in range(5)}
    assert len(subsets) == 5
    shuffled = names[::-1]
    flags = has_target[::-1]
    chosen = label_budget(shuffled, flags, fraction=0.1, seed=0)
    assert chosen == [n for n in shuffled if n in set(chosen)]
    assert set(chosen) == set(label_budget(names, has_target, fraction=0.1, seed=0))


def test_no_budget_keeps_every_name() -> None:
    names, has_target = pool(12)
    assert label_budget(names, has_target) == names


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"fraction": 0}, "dataset.train_fraction=0"),
        ({"fraction": 1.5}, "dataset.train_fraction=1.5"),
        ({"fraction": -3}, "dataset.train_fraction=-3"),
        ({"fraction": "half"}, "dataset.train_fraction='half'"),
        ({"count": 0}, "dataset.train_count=0"),
        ({"count": -3}, "dataset.train_count=-3"),
        ({"count": 1.5}, "dataset.train_count=1.5"),
        ({"count": 21}, "dataset.train_count=21"),
        ({"count": True}, "dataset.train_count=True"),
        ({"fraction": 0.5, "seed": -1}, "dataset.train_subset_seed=-1"),
    ],
)
def test_bad_values_name_the_key(options: dict, key: str) -> None:
    names, has_target = pool(20)
    with pytest.raises(ConfigError, match=re.escape(key)):
        label_budget(names, has_target, **options)


def test_fraction_and_count_together_name_both_keys() -> None:
    names, has_target = pool(20)
    with pytest.raises(ConfigError) as error:
        label_budget(names, has_target, fraction=0.5, count=3)
    assert "dataset.train_fraction=0.5" in str(error.value)
    assert "dataset.train_count=3" in str(error.value)


def folder_dataset(root: Path) -> Path:
    """A 31-image folder dataset (30 trainval, 1 test); every third trainval mask is empty."""
    names = [f"im{i:02d}" for i in range(31)]
    make_dataset(root, names, size=(16, 16))
    for name in names[:-1:3]:
        write_png(root / "masks" / f"{name}.png", np.zeros((16, 16), np.uint8))
    return root


def datamodule(root: Path, **budget: object) -> IRSTDDataModule:
    """A set-up data module of :func:`folder_dataset` with a 0.2 validation hold-out."""
    module = IRSTDDataModule(
        root=str(root),
        splits=FOLDER_SPLITS,
        val_fraction=0.2,
        loader_size=16,
        preflight=False,
        **budget,
    )
    module.setup("fit")
    return module


def names_of(dataset) -> list[str]:
    """Image names of a disk dataset."""
    return [sample.name for sample in dataset.samples]


def test_budget_keeps_validation_and_is_recorded(tmp_path: Path) -> None:
    root = folder_dataset(tmp_path / "data")
    full = datamodule(root)
    budget = datamodule(root, train_fraction=0.25, train_subset_seed=4)
    assert names_of(budget.val_dataset) == names_of(full.val_dataset)
    assert names_of(budget.test_dataset) == names_of(full.test_dataset)
    kept = names_of(budget.train_dataset)
    assert len(kept) == 6 and set(kept) <= set(names_of(full.train_dataset))
    pool = len(full.train_dataset)
    assert budget.train_subset == {
        "fraction": 0.25,
        "count": 6,
        "of": pool,
        "seed": 4,
        "images": kept,
    }
    assert full.train_subset is None
    record = protocol_record(budget)
    assert record["train_subset"] == budget.train_subset
    assert (
        record["sizes"] == protocol_record(full)["sizes"]
    )  # the protocol's sizes, not the budget's
    assert f"label budget: trained on 6 of the {pool} train images (seed 4)" in protocol_line(
        record
    )
    assert "label budget" not in protocol_line(protocol_record(full))
    assert protocol_record(full)["train_subset"] is None
    assert budget.hparams["train_fraction"] == 0.25
    assert budget.hparams["train_subset_seed"] == 4


def test_train_subset_file(tmp_path: Path) -> None:
    root = folder_dataset(tmp_path / "data")
    module = IRSTDDataModule(
        root=str(root), splits=FOLDER_SPLITS, loader_size=16, preflight=False, train_count=5
    )
    path = module.save_train_subset(tmp_path / "run")
    assert path == tmp_path / "run" / "train_subset.txt"
    assert path.read_text().splitlines() == module.train_subset["images"]
    assert len(module.train_subset["images"]) == 5 and module.train_subset["fraction"] is None
    plain = IRSTDDataModule(root=str(root), splits=FOLDER_SPLITS, loader_size=16, preflight=False)
    assert plain.save_train_subset(tmp_path / "plain") is None
    assert plain.train_dataset is None and not (tmp_path / "plain").exists()


def test_union_budget_applies_to_the_union_train_set(tmp_path: Path) -> None:
    members = {
        member: {
            "root": str(make_dataset(tmp_path / member, [f"{member}{i}" for i in range(9)])),
            "splits": FOLDER_SPLITS,
            "split": "default",
        }
        for member in ("a", "b")
    }
    union = UnionDataModule(
        members=members, loader_size=16, val_fraction=0.25, preflight=False, train_count=5
    )
    union.setup("fit")
    assert len(union.train_dataset) == 5 and union.train_subset["count"] == 5
    assert names_of(union.train_dataset) == union.train_subset["images"]
    assert len(union.val_dataset) == 4


def test_synthetic_dataset_takes_no_budget() -> None:
    with pytest.raises(ConfigError, match="datasets on disk"):
        IRSTDDataModule(synthetic={"num_train": 4}, loader_size=16, train_fraction=0.5)


def test_auto_resume_tells_budgets_apart() -> None:
    """``ckpt_path=auto`` resumes only a run of the same label budget (seed included); runs
    without a budget match checkpoints written before the budget keys existed."""
    module = {"net": {"_target_": "irsam.models.build"}, "loss": {"name": "irsam"}}
    old = {"name": "nudt_sirst", "root": "/data/NUDT-SIRST", "split": "standard"}
    full = dict(old, train_fraction=None, train_count=None, train_subset_seed=0)
    tenth = dict(full, train_fraction=0.1)

    def differences(stored: dict, current: dict) -> list[str]:
        return identity_differences(
            experiment_identity("train", module, stored),
            experiment_identity("train", module, current),
        )

    assert differences(old, full) == []
    assert differences(tenth, dict(tenth)) == []
    assert differences(full, tenth) and differences(old, tenth)
    assert differences(tenth, dict(tenth, train_subset_seed=1))
    assert differences(tenth, dict(full, train_count=10))
