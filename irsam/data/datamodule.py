# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""The LightningDataModule: datasets, splits, transforms and loaders from ``conf/dataset/*.yaml``.

Images come from a dataset on disk (``root`` set; any layout of :mod:`irsam.data.layouts`) or
from the procedural generator (``synthetic`` set, ``root: null``). Batches follow the contract
of :mod:`irsam.data.collate`.

In-RAM cache (``cache_images``): decoded images and masks are kept after their first use, in
the smallest lossless form (grey uint8 for 8-bit grey data). The cache lives in each process:
with ``num_workers > 0`` every worker fills its own copy, and the copies survive between
epochs only with ``persistent_workers: true``; budget RAM ≈ workers × dataset size
(IRSTD-1k: ~260 MB per copy, NUDT-SIRST: ~90 MB).

Pre-flight check (``preflight``, :mod:`irsam.data.preflight`): at the first ``setup`` of a
stage, every image and mask file of the splits the stage uses is decoded once, and one error
lists all files that would fail to load. ``fit`` checks train, val *and* test, because
``train.py`` tests the selected checkpoint after fitting: a bad test image fails in seconds,
not after the training. Results are cached by file size and modification time.
"""

from __future__ import annotations

import functools
import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning import LightningDataModule
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, get_worker_info

from irsam.data.collate import collate_irstd
from irsam.data.copy_paste import CopyPasteOptions, TargetBank
from irsam.data.dataset import IRSTDDataset, IRSTDDatasetBase
from irsam.data.errors import DatasetError
from irsam.data.io import HighBitNorm, read_mask
from irsam.data.layouts import Sample, label_budget, resolve_splits, split_files, split_spec
from irsam.data.preflight import BadFile, default_cache_path, preflight
from irsam.data.synthetic import SyntheticIRSTDDataset
from irsam.data.transforms import EvalResize, seed_transform
from irsam.utils import ConfigError, atomic_write_bytes, get_logger
from irsam.utils.containers import plain_container

log = get_logger(__name__)

STAGE_SPLITS: dict[str | None, tuple[str, ...]] = {
    "fit": ("train", "val", "test"),  # train.py tests after fitting: check the test files up front
    "validate": ("val",),
    "test": ("test",),
    "predict": ("test",),
    None: ("train", "val", "test"),
}
"""The splits whose files the pre-flight check reads at each Lightning stage."""


def auto_num_workers(limit: int = 4) -> int:
    """Loader worker processes for ``num_workers: null``: one CPU left to the training process,
    at most ``limit`` (PyTorch warns when workers outnumber the CPUs this process may use).

    Arguments:
      limit (int): the most workers.
    Returns:
      int: ``min(limit, CPUs available − 1)``, 0 on a single CPU.
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(0, min(limit, (cpus or 1) - 1))


def _check_budget(
    fraction: float | None, count: int | None, seed: int, synthetic: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The label budget of the config, None without one; the synthetic dataset takes none."""
    if fraction is None and count is None:
        return None
    if synthetic is not None:
        raise ConfigError(
            "dataset.train_fraction / dataset.train_count apply to datasets on disk "
            "(dataset.root); for the synthetic dataset set dataset.synthetic.num_train instead."
        )
    return {"fraction": fraction, "count": count, "seed": seed}


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed numpy, ``random`` and the augmentation stream per
    worker (the stream serves until an epoch seed is set: :meth:`IRSTDDatasetBase.reseed`).

    PyTorch gives each worker the seed ``base_seed + worker_id``, where ``base_seed`` comes from
    the main process's torch RNG (seeded by ``seed_everything``), so runs are reproducible.

    Arguments:
      worker_id (int): index of the worker.
    """
    info = get_worker_info()
    seed = int(info.seed) % 2**32 if info is not None else worker_id
    np.random.seed(seed)
    random.seed(seed)
    dataset = info.dataset if info is not None else None
    if isinstance(dataset, IRSTDDatasetBase) and dataset.transform is not None:
        seed_transform(dataset.transform, seed)


class IRSTDDataModule(LightningDataModule):
    """Train/val/test loaders for one IR small-target dataset.

    After :meth:`setup`, ``train_dataset``, ``val_dataset`` and ``test_dataset`` hold the
    datasets (``val_dataset``/``test_dataset`` may be empty), and ``train_subset`` the label
    budget: None without one, else ``fraction`` (as configured; None for a budget by count),
    ``count`` (the images kept), ``of`` (the training images before the budget), ``seed`` and
    ``images`` (the names kept, in split order).

    Arguments:
      name (str): dataset name, for logs.
      root (str | None): dataset root on disk; None with ``synthetic`` set.
      layout (str): ``auto``, ``isnet``, ``basicirstd``, ``sirst`` or ``folder``.
      splits (Mapping | None): named split definitions (see
        :func:`irsam.data.layouts.resolve_splits`); required with ``root``.
      split (str): the entry of ``splits`` to use.
      val_fraction (float): share of trainval carved for validation when the split defines no
        ``val`` file (the test split is never used for selection).
      split_seed (int): seed of that carve, fixed so every run gets the same validation set.
      train_fraction (float | None): label budget: share of the training split kept, in
        (0, 1]; None = all (see :func:`irsam.data.layouts.label_budget`; datasets on disk only).
      train_count (int | None): label budget as a number of training images (>= 1); None =
        all. At most one of ``train_fraction`` and ``train_count`` is set.
      train_subset_seed (int): seed of the label-budget subset, independent of the run seed.
      loader_size (int): loader resolution (side of the square images the loaders give).
      eval_resize (str): ``resize`` (to ``loader_size``², IRSAM) or ``pad`` (bottom/right to a
        multiple of ``pad_divisor`` at native size, BasicIRSTD).
      pad_divisor (int): multiple used by the ``pad`` policy.
      pad_value (float): image value of padded pixels, 0–255 scale.
      soft_masks (bool): bilinear (soft) or nearest resampling of mask and edge targets.
      batch_size (int): training batch size (per device).
      eval_batch_size (int): validation/test batch size (per device).
      num_workers (int | None): DataLoader worker processes; None = :func:`auto_num_workers`.
      pin_memory (bool): page-locked host memory for faster GPU copies (only applied when CUDA
        is available).
      persistent_workers (bool): keep workers (and their caches) alive between epochs; only
        applied when ``num_workers > 0``.
      cache_images (bool): in-RAM cache of decoded images (see the module docstring).
      high_bit_norm (str): mapping of 16-bit/float images to 0–255 (``percentile``,
        ``minmax``, ``bit_depth``).
      mask_size_mismatch (str): ``error`` or ``resize`` a mask whose size differs from its
        image's (same aspect ratio only; NUAA-SIRST's Misc_111 needs it).
      augmentation (Mapping | None): options of
        :func:`irsam.data.transforms.build_train_transform`, plus ``copy_paste`` (options of
        :class:`irsam.data.copy_paste.CopyPasteOptions`; a bank of the training targets is built
        at ``setup`` of ``fit`` when its ``p`` > 0).
      synthetic (Mapping | None): options of the procedural dataset: ``seed``, ``native_size``
        (side of the rendered images), ``num_train``, ``num_val``, ``num_test`` and ``render``
        (options of :func:`irsam.data.synthetic.render_synthetic_sample`).
      preflight (bool): decode every file of the stage's splits at ``setup`` and raise one
        error listing the bad ones (see the module docstring; files on disk only).
      preflight_cache (str | None): JSON cache file of the files that passed; None =
        :func:`irsam.data.preflight.default_cache_path` (``~/.cache/irsam/preflight.json``).
    """

    def __init__(
        self,
        *,
        name: str = "dataset",
        root: str | os.PathLike | None = None,
        layout: str = "auto",
        splits: Mapping[str, Any] | None = None,
        split: str = "default",
        val_fraction: float = 0.1,
        split_seed: int = 0,
        train_fraction: float | None = None,
        train_count: int | None = None,
        train_subset_seed: int = 0,
        loader_size: int,
        eval_resize: EvalResize = "resize",
        pad_divisor: int = 32,
        pad_value: float = 128.0,
        soft_masks: bool = True,
        batch_size: int = 4,
        eval_batch_size: int = 1,
        num_workers: int | None = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        cache_images: bool = True,
        high_bit_norm: HighBitNorm = "percentile",
        mask_size_mismatch: str = "error",
        augmentation: Mapping[str, Any] | None = None,
        synthetic: Mapping[str, Any] | None = None,
        preflight: bool = True,
        preflight_cache: str | os.PathLike | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        if (root is None) == (synthetic is None):
            raise DatasetError(
                "set exactly one of dataset.root (a dataset on disk) and dataset.synthetic "
                f"(generated images); got root={root!r}, synthetic={synthetic!r}."
            )
        self.name = name
        self.root = None if root is None else str(root)
        self.layout = layout
        self.splits = plain_container(splits)
        self.split = split
        self.val_fraction = float(val_fraction)
        self.split_seed = int(split_seed)
        self.budget = _check_budget(train_fraction, train_count, train_subset_seed, synthetic)
        self.train_subset: dict[str, Any] | None = None
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size)
        self.num_workers = auto_num_workers() if num_workers is None else int(num_workers)
        self.pin_memory = bool(pin_memory)
        self.persistent_workers = bool(persistent_workers) and self.num_workers > 0
        self.high_bit_norm = high_bit_norm
        self.mask_size_mismatch = mask_size_mismatch
        self.synthetic = plain_container(synthetic)
        self.pad_value = float(pad_value)
        self.item_options: dict[str, Any] = {
            "loader_size": int(loader_size),
            "eval_resize": eval_resize,
            "pad_divisor": int(pad_divisor),
            "soft_masks": bool(soft_masks),
            "pad_value": self.pad_value,
            "cache_images": bool(cache_images),
        }
        self.augmentation = plain_container(augmentation) or {}
        self.copy_paste = CopyPasteOptions.from_config(self.augmentation.pop("copy_paste", None))
        self.train_dataset: IRSTDDatasetBase | None = None
        self.val_dataset: IRSTDDatasetBase | None = None
        self.test_dataset: IRSTDDatasetBase | None = None
        self.preflight = bool(preflight)
        self.preflight_cache = (
            default_cache_path() if preflight_cache is None else Path(preflight_cache).expanduser()
        )
        self.split_list_files: dict[str, Path | None] = {}
        self.unpaired: list[tuple[Path, str]] = []
        self._checked: set[str] = set()

    def check_files(self, stage: str | None = None) -> None:
        """Pre-flight check of the files of the splits ``stage`` uses (each split once).

        Arguments:
          stage (str | None): Lightning stage; see :data:`STAGE_SPLITS`.
        Raises:
          DatasetError: one or more files would fail to load (all are listed).
        """
        if not self.preflight:
            return
        datasets = {"train": self.train_dataset, "val": self.val_dataset, "test": self.test_dataset}
        parts = {
            key: datasets[key].samples  # type: ignore[union-attr]
            for key in STAGE_SPLITS.get(stage, STAGE_SPLITS[None])
            if key not in self._checked and isinstance(datasets[key], IRSTDDataset)
        }
        if not parts:
            return
        preflight(
            parts,
            dataset=f"dataset {self.name}"
            + ("" if self.root == os.devnull else f" at {self.root}"),
            mask_size_mismatch=self.mask_size_mismatch,
            cache_path=self.preflight_cache,
            list_files=self.split_list_files,
            extra=[BadFile(path, problem, "no") for path, problem in self.unpaired],
        )
        self.unpaired = []
        self._checked.update(parts)

    def _build(self, stage: str, samples_or_split: Any) -> IRSTDDatasetBase:
        """Build one dataset: ``stage`` is ``train`` or ``eval``."""
        options = dict(self.item_options, stage=stage)
        if stage == "train":
            options["augmentation"] = self.augmentation
        if self.synthetic is not None:
            split, length = samples_or_split
            return SyntheticIRSTDDataset(
                split=split,
                length=length,
                seed=int(self.synthetic.get("seed", 0)),
                native_size=int(self.synthetic.get("native_size", 128)),
                render=self.synthetic.get("render"),
                **options,
            )
        return IRSTDDataset(
            samples_or_split,
            high_bit_norm=self.high_bit_norm,
            mask_size_mismatch=self.mask_size_mismatch,  # type: ignore[arg-type]
            **options,
        )

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets (once), then run the pre-flight check of the stage's splits; for
        ``fit`` with ``augmentation.copy_paste.p`` > 0, build the target bank (once).

        Arguments:
          stage (str | None): Lightning stage (``fit``, ``validate``, ``test``, ``predict``);
            all three datasets are built whatever the stage, since the checks are cheap; the
            files are decoded for the splits of :data:`STAGE_SPLITS` only.
        Raises:
          DatasetError: a bad split definition, files that would fail to load, or no
            training target to paste.
        """
        if self.train_dataset is None:
            self._build_datasets()
        self.check_files(stage)
        if stage in ("fit", None) and self.copy_paste.p > 0:
            self._attach_copy_paste()

    def _attach_copy_paste(self) -> None:
        """Build the target bank from the training items (once) and give it to the train set."""
        dataset = self.train_dataset
        if dataset is None or dataset.copy_paste is not None:
            return
        bank = TargetBank.from_items(
            ((dataset.name(i), *dataset.load(i)) for i in range(len(dataset))),
            self.copy_paste.max_side,
        )
        log.info("copy-paste: %d target crops from %d training images", len(bank), bank.images)
        if not len(bank):
            raise DatasetError(
                f"dataset.augmentation.copy_paste.p={self.copy_paste.p} but no training target "
                f"of dataset {self.name} can be pasted (each needs a box side <= "
                f"dataset.augmentation.copy_paste.max_side={self.copy_paste.max_side} and to be "
                "brighter than its surroundings): raise max_side, or set p: 0."
            )
        dataset.use_copy_paste(bank, self.copy_paste)

    def _build_datasets(self) -> None:
        """Resolve the splits and build the train, val and test datasets."""
        if self.synthetic is not None:
            counts = {
                key: int(self.synthetic.get(f"num_{key}", 0)) for key in ("train", "val", "test")
            }
            if counts["train"] <= 0:
                raise DatasetError("dataset.synthetic.num_train must be positive.")
            parts = {key: (key, count) for key, count in counts.items()}
            source = f"synthetic (seed {self.synthetic.get('seed', 0)})"
        else:
            if not self.splits:
                raise DatasetError(f"dataset.splits is empty for dataset.root={self.root}.")
            parts = resolve_splits(
                self.root,  # type: ignore[arg-type]
                layout=self.layout,
                splits=self.splits,
                split=self.split,
                val_fraction=self.val_fraction,
                split_seed=self.split_seed,
                unpaired=self.unpaired if self.preflight else None,
            )
            if self.budget is not None:
                parts["train"] = self._apply_budget(parts["train"], self.budget)
            counts = {key: len(value) for key, value in parts.items()}
            source = f"{self.root} (split {self.split!r})"
            files = split_files(self.root, split_spec(self.splits, self.split))  # type: ignore[arg-type]
            self.split_list_files = {
                "train": files["trainval"],
                "val": files["val"] or files["trainval"],
                "test": files["test"],
            }
        self.train_dataset = self._build("train", parts["train"])
        self.val_dataset = self._build("eval", parts["val"])
        self.test_dataset = self._build("eval", parts["test"])
        log.info(
            "dataset %s from %s: %d train / %d val / %d test images",
            self.name,
            source,
            counts["train"],
            counts["val"],
            counts["test"],
        )

    def _apply_budget(self, samples: list[Sample], budget: dict[str, Any]) -> list[Sample]:
        """The label-budget subset of the training samples (each mask read once), recorded."""
        has_target = [
            sample.mask_path is not None and bool(read_mask(sample.mask_path).any())
            for sample in samples
        ]
        names = label_budget(
            [sample.name for sample in samples],
            has_target,
            fraction=budget["fraction"],
            count=budget["count"],
            seed=budget["seed"],
        )
        log.info(
            "label budget: %d of %d training images (fraction %.4g, seed %d)",
            len(names),
            len(samples),
            len(names) / len(samples),
            budget["seed"],
        )
        self.train_subset = dict(budget, count=len(names), of=len(samples), images=names)
        kept = set(names)
        return [sample for sample in samples if sample.name in kept]

    def save_train_subset(self, folder: str | os.PathLike) -> Path | None:
        """Write the names of the label-budget subset, one per line, to
        ``<folder>/train_subset.txt`` (atomically); nothing without a budget.

        The datasets are built first when :meth:`setup` has not run yet (the pre-flight check
        still runs at ``setup``).

        Arguments:
          folder (str | PathLike): the run folder (``paths.output_dir``).
        Returns:
          Path | None: the file written, or None when no budget is set.
        Raises:
          OutputWriteError: the folder cannot be written.
        """
        if self.budget is None:
            return None
        if self.train_dataset is None:
            self._build_datasets()
        path = Path(folder) / "train_subset.txt"
        text = "".join(f"{name}\n" for name in self.train_subset["images"])  # type: ignore[index]
        atomic_write_bytes(path, text.encode("utf-8"), "label-budget list")
        return path

    def _loader(
        self, dataset: IRSTDDatasetBase | None, batch_size: int, shuffle: bool
    ) -> DataLoader:
        """A DataLoader with the shared collate function and worker seeding.

        Evaluation loaders (``shuffle=False``) under ``torch.distributed`` shard the data with a
        non-padding sampler, so no image is scored twice and the summed metric states equal the
        single-process ones (Lightning keeps a sampler that is already distributed).
        """
        if dataset is None:
            raise RuntimeError("call setup() before asking for a dataloader")
        sampler = None
        if not shuffle and torch.distributed.is_available() and torch.distributed.is_initialized():
            sampler = UnrepeatedDistributedSampler(dataset, shuffle=False)
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            sampler=sampler,
            drop_last=False,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
            persistent_workers=self.persistent_workers,
            collate_fn=functools.partial(collate_irstd, pad_value=self.pad_value),
            worker_init_fn=seed_worker,
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches, augmented.

        Returns:
          DataLoader: batches of the contract in :mod:`irsam.data.collate`.
        """
        return self._loader(self.train_dataset, self.batch_size, shuffle=True)

    def reseed_augmentation(self) -> None:
        """Draw the epoch's augmentation seed from the torch RNG (``ResumeState`` calls this at
        every epoch start; checkpoints store that RNG).

        The training set augments item ``i`` from (seed, i) alone, in this process and in every
        worker, persistent or not (:meth:`IRSTDDatasetBase.reseed`): a resumed run augments each
        epoch as an uninterrupted one, with any ``num_workers``.
        """
        if self.train_dataset is not None:
            self.train_dataset.reseed(int(torch.randint(0, 2**31 - 1, (1,)).item()))

    def val_dataloader(self) -> DataLoader | list:
        """Validation batches in order (an empty list when there is no validation set).

        Returns:
          DataLoader | list: batches with ``mask_native``.
        """
        if self.val_dataset is not None and len(self.val_dataset) == 0:
            return []
        return self._loader(self.val_dataset, self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        """Test batches in order.

        Returns:
          DataLoader: batches with ``mask_native``.
        Raises:
          DatasetError: the dataset has no test split.
        """
        if self.test_dataset is not None and len(self.test_dataset) == 0:
            raise DatasetError(
                f"dataset {self.name} has no test set: add a test split file to dataset.splits."
            )
        return self._loader(self.test_dataset, self.eval_batch_size, shuffle=False)
