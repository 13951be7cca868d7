# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""SIRST3: training on the union of several datasets' train splits, testing on each and the union.

SCTransNet and others train on the union of the standard NUAA-SIRST, NUDT-SIRST and IRSTD-1k
train splits (BasicIRSTD's ``SIRST3`` lists: 1676 train / 1079 test) and report every test
split. :class:`UnionDataModule` builds that from the member datasets present on disk (any
subset; the missing ones are named in the log and in :func:`irsam.data.protocols.protocol_record`)
with one loader of mixed native sizes (every image goes through the same transforms).

The union test set is ``test_dataset`` / ``test_dataloader()``; each member's test set is in
:meth:`UnionDataModule.member_test_dataloaders` (docs/protocols.md).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from irsam.data.datamodule import IRSTDDataModule
from irsam.data.dataset import IRSTDDatasetBase
from irsam.data.errors import DatasetError
from irsam.data.layouts import resolve_splits, split_files, split_spec
from irsam.utils import get_logger

log = get_logger(__name__)


class UnionDataModule(IRSTDDataModule):
    """Union of several datasets: concatenated train/val sets, per-member and union test sets.

    Arguments:
      members (Mapping[str, Mapping]): member name → ``root`` (its folder), ``layout``,
        ``splits`` and ``split`` (as in a single-dataset config). Members whose root does not
        exist are skipped with a warning.
      name (str): the union's name (``sirst3``).
      **kwargs: every other option of :class:`IRSTDDataModule` (loader size, batch sizes,
        augmentation, ...), shared by all members; ``root``/``splits``/``synthetic`` are not
        accepted.
    """

    def __init__(
        self, *, members: Mapping[str, Mapping[str, Any]], name: str = "sirst3", **kwargs: Any
    ) -> None:
        clash = sorted({"root", "splits", "split", "synthetic", "layout"} & set(kwargs))
        if clash:
            raise DatasetError(
                f"dataset.{clash[0]} is not an option of a union dataset: set it per member "
                "under dataset.members.<name>."
            )
        if isinstance(members, DictConfig):
            members = OmegaConf.to_container(members, resolve=True)
        members = members or {}
        if not members:
            raise DatasetError("dataset.members is empty: list the member datasets to unite.")
        super().__init__(name=name, root=os.devnull, **kwargs)
        self.members: dict[str, dict[str, Any]] = {k: dict(v) for k, v in members.items()}
        self.members_present: list[str] = []
        self.members_missing: dict[str, str] = {}
        self.member_test_datasets: dict[str, IRSTDDatasetBase] = {}
        self.member_records: dict[str, dict[str, Any]] = {}

    def _build_datasets(self) -> None:
        """Resolve every present member's split and build the union datasets.

        :meth:`IRSTDDataModule.setup` calls it once, then runs the pre-flight check.

        Raises:
          DatasetError: no member is present, a member's split is broken, or two members
            share an image name.
        """
        parts: dict[str, list] = {"train": [], "val": [], "test": []}
        owner: dict[str, str] = {}
        for member, spec in self.members.items():
            root = spec.get("root")
            if root is None or not Path(root).is_dir():
                self.members_missing[member] = str(root)
                continue
            split = spec.get("split", "standard")
            resolved = resolve_splits(
                root,
                layout=spec.get("layout", "auto"),
                splits=spec["splits"],
                split=split,
                val_fraction=self.val_fraction,
                split_seed=self.split_seed,
            )
            for sample in resolved["train"] + resolved["val"] + resolved["test"]:
                other = owner.setdefault(sample.name, member)
                if other != member:
                    raise DatasetError(
                        f"members {other!r} and {member!r} both have an image named "
                        f"{sample.name!r}; image names must be unique in a union dataset."
                    )
            for key in parts:
                parts[key] += resolved[key]
            self.member_test_datasets[member] = self._build("eval", resolved["test"])
            entry = split_spec(spec["splits"], split)
            files = split_files(root, entry)
            self.member_records[member] = {
                "protocol": str(entry["protocol"]),
                "split": split,
                "source": entry.get("source"),
                "root": str(root),
                "files": {
                    k: None if v is None else str(Path(v).resolve()) for k, v in files.items()
                },
                "sizes": {key: len(resolved[key]) for key in ("train", "val", "test")},
            }
            self.members_present.append(member)
        if self.members_missing:
            log.warning(
                "dataset %s: member(s) missing, not used: %s",
                self.name,
                ", ".join(f"{k} (no folder {v})" for k, v in self.members_missing.items()),
            )
        if not self.members_present:
            raise DatasetError(
                f"dataset {self.name}: none of the member datasets exists "
                f"({', '.join(f'{k}: {v}' for k, v in self.members_missing.items())}). Set "
                "dataset.members.<name>.root to each dataset's folder."
            )
        train = sorted(parts["train"], key=lambda s: s.name)
        if self.budget is not None:
            train = self._apply_budget(train, self.budget)
        self.train_dataset = self._build("train", train)
        self.val_dataset = self._build("eval", sorted(parts["val"], key=lambda s: s.name))
        self.test_dataset = self._build("eval", sorted(parts["test"], key=lambda s: s.name))
        log.info(
            "dataset %s = %s: %d train / %d val / %d test images",
            self.name,
            " + ".join(self.members_present),
            len(self.train_dataset),
            len(self.val_dataset),
            len(self.test_dataset),
        )

    def member_test_dataloaders(self) -> dict[str, DataLoader]:
        """One test loader per present member (the union's is :meth:`test_dataloader`).

        Returns:
          dict[str, DataLoader]: member name → loader, in config order.
        """
        if self.train_dataset is None:
            raise RuntimeError("call setup() before asking for a dataloader")
        return {
            member: self._loader(dataset, self.eval_batch_size, shuffle=False)
            for member, dataset in self.member_test_datasets.items()
        }


__all__ = ["UnionDataModule"]
