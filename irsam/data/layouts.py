# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Dataset layouts on disk, image/mask pairing and split files.

Accepted layouts (``layout: auto`` picks one from the folders present):

* ``isnet``: the ISNet release of IRSTD-1k: ``IRSTD1k_Img/``, ``IRSTD1k_Label/``,
  ``trainval.txt`` and ``test.txt`` at the root;
* ``basicirstd``: the BasicIRSTD bundles: ``images/``, ``masks/``,
  ``img_idx/train_<NAME>.txt`` and ``img_idx/test_<NAME>.txt``;
* ``sirst``: the original NUAA-SIRST release: ``images/Misc_N.png``,
  ``masks/Misc_N_pixels0.png`` and ``idx_427/{trainval,test}.txt``;
* ``folder``: any ``images/`` + ``masks/`` pair with equal stems (NUDT-SIRST as published),
  with split files anywhere under the root, or none.

Masks pair with images by stem: ``<stem>.<ext>`` or ``<stem>_pixels0.<ext>``. Split files hold one
name per line, with or without an image extension, LF or CRLF line endings (BasicIRSTD's lists
are CRLF); blank lines are ignored and the last line needs no newline. Named protocols per
dataset (``dataset.split=irsam|standard``) are described in docs/protocols.md.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from irsam.data.errors import DatasetError, format_paths
from irsam.data.io import IMAGE_SUFFIXES, list_images
from irsam.utils import ConfigError, get_logger

log = get_logger(__name__)

MASK_SUFFIX = "_pixels0"
"""Stem suffix of NUAA-SIRST masks (``Misc_1_pixels0.png`` pairs with ``Misc_1.png``)."""


@dataclass(frozen=True)
class Sample:
    """One image file and its optional mask file.

    Arguments:
      name (str): image name without extension.
      image_path (Path): the image file.
      mask_path (Path | None): the mask file, or None for unlabelled images.
    """

    name: str
    image_path: Path
    mask_path: Path | None


@dataclass(frozen=True)
class Layout:
    """Where one layout family keeps its images and masks.

    Arguments:
      name (str): the value of the ``dataset.layout`` config key.
      image_dir (str): image folder, relative to the root.
      mask_dir (str): mask folder, relative to the root.
      tree (str): a one-line picture of the layout, used in error messages.
    """

    name: str
    image_dir: str
    mask_dir: str
    tree: str


LAYOUTS: dict[str, Layout] = {
    "isnet": Layout(
        "isnet",
        "IRSTD1k_Img",
        "IRSTD1k_Label",
        "<root>/IRSTD1k_Img/XDU0.png, <root>/IRSTD1k_Label/XDU0.png, <root>/trainval.txt, "
        "<root>/test.txt   (ISNet release of IRSTD-1k)",
    ),
    "basicirstd": Layout(
        "basicirstd",
        "images",
        "masks",
        "<root>/images/<name>.png, <root>/masks/<name>.png, <root>/img_idx/train_<NAME>.txt, "
        "<root>/img_idx/test_<NAME>.txt   (BasicIRSTD bundles)",
    ),
    "sirst": Layout(
        "sirst",
        "images",
        "masks",
        "<root>/images/Misc_1.png, <root>/masks/Misc_1_pixels0.png, "
        "<root>/idx_427/{trainval,test}.txt   (original NUAA-SIRST release)",
    ),
    "folder": Layout(
        "folder",
        "images",
        "masks",
        "<root>/images/<name>.png, <root>/masks/<name>.png, split files anywhere under <root> "
        "(NUDT-SIRST as published: 50_50/{train,test}.txt)",
    ),
}
"""The accepted layouts, by config name."""


def layouts_help() -> str:
    """A multi-line description of every accepted layout, for error messages.

    Returns:
      str: one indented line per layout.
    """
    return "\n".join(f"    {name:<11}{layout.tree}" for name, layout in LAYOUTS.items())


def detect_layout(root: str | os.PathLike, layout: str = "auto") -> Layout:
    """Check the dataset root and return its layout.

    Arguments:
      root (str | PathLike): dataset root folder.
      layout (str): ``auto`` or one of :data:`LAYOUTS`.
    Returns:
      Layout: the layout whose image and mask folders exist under ``root``.
    Raises:
      DatasetError: the root or the layout's folders are missing, or ``layout`` is unknown.
    """
    root = Path(root)
    if layout != "auto" and layout not in LAYOUTS:
        raise DatasetError(
            f"unknown dataset.layout={layout!r}; use 'auto' or one of {sorted(LAYOUTS)}."
        )
    if not root.is_dir():
        raise DatasetError(
            f"dataset root {root} does not exist (or is not a folder). Download the dataset (see "
            "data/README.md) and set the config key dataset.root, e.g. "
            f"`python train.py dataset.root=/path/to/dataset`. Accepted layouts:\n{layouts_help()}"
        )
    if layout == "auto":
        if (root / "IRSTD1k_Img").is_dir():
            chosen = LAYOUTS["isnet"]
        elif (root / "img_idx").is_dir():
            chosen = LAYOUTS["basicirstd"]
        elif (root / "idx_427").is_dir() or (root / "idx_320").is_dir():
            chosen = LAYOUTS["sirst"]
        else:
            chosen = LAYOUTS["folder"]
    else:
        chosen = LAYOUTS[layout]
    missing = [
        root / sub for sub in (chosen.image_dir, chosen.mask_dir) if not (root / sub).is_dir()
    ]
    if missing:
        raise DatasetError(
            f"dataset root {root} does not match the {chosen.name!r} layout: missing folder(s)\n"
            f"{format_paths(missing)}\nCheck dataset.root and dataset.layout. Accepted layouts:\n"
            f"{layouts_help()}"
        )
    log.debug("dataset root %s: layout %s", root, chosen.name)
    return chosen


def strip_image_suffix(name: str) -> str:
    """Drop an image extension (``.png``, ``.tif``, ...) from a name; other names are unchanged.

    Arguments:
      name (str): a file name or a bare stem.
    Returns:
      str: the stem.
    """
    suffix = Path(name).suffix
    return name[: -len(suffix)] if suffix.lower() in IMAGE_SUFFIXES else name


def mask_key(path: Path) -> str:
    """The image stem a mask file belongs to (``Misc_1_pixels0.png`` → ``Misc_1``).

    Arguments:
      path (Path): a mask file.
    Returns:
      str: the stem of its image.
    """
    return path.stem.removesuffix(MASK_SUFFIX)


def _index_by_key(files: list[Path], key_of: Callable[[Path], str], what: str) -> dict[str, Path]:
    """Map each file to its pairing key; two files with one key are an error."""
    index: dict[str, Path] = {}
    for path in files:
        key = key_of(path)
        if key in index:
            raise DatasetError(
                f"two {what} files share the name {key!r}:\n{format_paths([index[key], path])}\n"
                "Keep one of them (different extensions or a '_pixels0' twin are ambiguous)."
            )
        index[key] = path
    return index


def collect_samples(
    images: str | os.PathLike,
    masks: str | os.PathLike | None = None,
    *,
    require_masks: bool = True,
) -> list[Sample]:
    """The image/mask pairing rule of every tool: an image file or folder, masks by stem.

    A mask pairs with an image through :func:`mask_key` (``<stem>.<ext>`` or
    ``<stem>_pixels0.<ext>``); only files with an image extension (:data:`IMAGE_SUFFIXES`) are
    considered, so notes or XML files in the folders are ignored. Names are compared as plain
    strings (no glob patterns).

    Arguments:
      images (str | PathLike): an image file or a folder of images.
      masks (str | PathLike | None): a folder of masks; None for unlabelled images.
      require_masks (bool): an image without a mask is an error (True) or gets ``mask_path``
        None (False: one-shot sequences score only the frames that have a mask).
    Returns:
      list[Sample]: one per image, sorted by name; ``mask_path`` None without ``masks``.
    Raises:
      DatasetError: no images, a file that is not an image, two files sharing a name, or (with
        ``require_masks``) an image without a mask.
    """
    source = Path(images)
    if source.is_file():
        if source.suffix.lower() not in IMAGE_SUFFIXES:
            raise DatasetError(
                f"{source}: not an image file ({', '.join(IMAGE_SUFFIXES)}). Give an image or a "
                "folder of images."
            )
        files = [source]
    else:
        files = list_images(source)
    if not files:
        raise DatasetError(f"{source}: no image files ({', '.join(IMAGE_SUFFIXES)}) found.")
    index = _index_by_key(files, lambda p: p.stem, "image")
    if masks is None:
        return [Sample(key, index[key], None) for key in sorted(index)]
    mask_index = _index_by_key(list_images(masks), mask_key, "mask")
    no_mask = sorted(index[k] for k in index.keys() - mask_index.keys())
    if no_mask and require_masks:
        raise DatasetError(
            f"{len(no_mask)} image(s) have no mask in {masks}:\n{format_paths(no_mask)}\n"
            "Add <stem>.png or <stem>_pixels0.png to the mask folder, or remove the image."
        )
    return [Sample(key, index[key], mask_index.get(key)) for key in sorted(index)]


def pair_files(
    image_dir: Path,
    mask_dir: Path | None,
    *,
    unpaired: list[tuple[Path, str]] | None = None,
) -> dict[str, tuple[Path, Path | None]]:
    """Pair every image of a dataset folder with its mask (:func:`collect_samples`), and check
    that no mask is left without an image.

    Arguments:
      image_dir (Path): folder of images.
      mask_dir (Path | None): folder of masks; ``None`` for unlabelled data.
      unpaired (list[tuple[Path, str]] | None): None raises on the first kind of unpaired file;
        a list collects them instead, so the pre-flight check lists them with every other
        problem: an image without a mask keeps ``mask_path`` None (the check reports the images
        its splits use), a mask without an image is appended as (file, problem).
    Returns:
      dict[str, tuple[Path, Path | None]]: image stem → (image file, mask file or None).
    Raises:
      DatasetError: as :func:`collect_samples`, or (without ``unpaired``) a mask has no image.
    """
    samples = collect_samples(image_dir, mask_dir, require_masks=unpaired is None)
    if mask_dir is not None:
        names = {sample.name for sample in samples}
        no_image = sorted(p for p in list_images(mask_dir) if mask_key(p) not in names)
        if unpaired is not None:
            problem = f"mask without an image in {image_dir}: add the image or remove the mask"
            unpaired.extend((path, problem) for path in no_image)
        elif no_image:
            raise DatasetError(
                f"{len(no_image)} mask(s) have no image in {image_dir}:\n{format_paths(no_image)}\n"
                "Add the image with the same stem, or remove the mask."
            )
    return {sample.name: (sample.image_path, sample.mask_path) for sample in samples}


def find_split_file(root: Path, candidates: str | list[str]) -> Path:
    """Return the first existing split file among candidate paths (glob patterns allowed).

    Arguments:
      root (Path): dataset root; candidates are relative to it (absolute paths work too).
      candidates (str | list[str]): one path or several, tried in order; a pattern with ``*``
        must match exactly one file.
    Returns:
      Path: the split file.
    Raises:
      DatasetError: no candidate exists, or a pattern matches several files.
    """
    options = [candidates] if isinstance(candidates, str) else list(candidates)
    for option in options:
        if "*" in option:
            matches = sorted(root.glob(option))
            if len(matches) > 1:
                raise DatasetError(
                    f"split pattern {root / option} matches several files:\n"
                    f"{format_paths(matches)}\nName the file explicitly in dataset.splits."
                )
            if matches:
                return matches[0]
        elif (root / option).is_file():
            return root / option
    raise DatasetError(
        "split file not found; tried:\n"
        f"{format_paths([root / o for o in options])}\n"
        "Check dataset.root, or choose another split with dataset.split / dataset.splits."
    )


def read_split_file(path: Path) -> list[str]:
    """Read the names listed in a split file.

    Arguments:
      path (Path): a text file with one name per line (extension optional).
    Returns:
      list[str]: image stems in file order, duplicates dropped (with a warning).
    Raises:
      DatasetError: the file lists no names.
    """
    names: list[str] = []
    seen: set[str] = set()
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        name = strip_image_suffix(line.strip())
        if not name:
            continue
        if name in seen:
            log.warning("split file %s lists %r twice; using it once", path, name)
            continue
        seen.add(name)
        names.append(name)
    if not names:
        raise DatasetError(f"split file {path} is empty. Fill it with image names, one per line.")
    return names


def select(
    pairs: dict[str, tuple[Path, Path | None]],
    names: list[str],
    split_file: Path,
    image_dir: Path,
    unpaired: list[tuple[Path, str]] | None = None,
) -> list[str]:
    """Check that every name of a split file has an image.

    Arguments:
      pairs (dict): output of :func:`pair_files`.
      names (list[str]): names read from ``split_file``.
      split_file (Path): the file they come from (for the message).
      image_dir (Path): the image folder (for the message).
      unpaired (list[tuple[Path, str]] | None): None raises on names without an image; a list
        collects one ``(split_file, problem)`` entry per such name instead (the pre-flight check
        reports them with every other problem of the dataset).
    Returns:
      list[str]: ``names`` (without the collected names that have no image).
    Raises:
      DatasetError: some names have no image file (without ``unpaired``).
    """
    missing = [name for name in names if name not in pairs]
    if missing and unpaired is not None:
        unpaired.extend(
            (
                split_file,
                f"lists {name!r}, which has no image in {image_dir}: fix the split file or add "
                + "the image",
            )
            for name in missing
        )
        return [name for name in names if name in pairs]
    if missing:
        raise DatasetError(
            f"split file {split_file} lists {len(missing)} name(s) with no image in {image_dir}:\n"
            f"{format_paths(missing)}\nFix the split file or add the images."
        )
    return names


def carve_validation(names: list[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Split names into train and validation with a fixed seed (independent of the global seed).

    Arguments:
      names (list[str]): the trainval names.
      fraction (float): share of names moved to validation, in [0, 1). At least one image goes
        to validation when the fraction is positive.
      seed (int): seed of the permutation, so the split is the same for every run.
    Returns:
      tuple[list[str], list[str]]: (train names, validation names), each in sorted order.
    """
    if not 0.0 <= fraction < 1.0:
        raise DatasetError(f"dataset.val_fraction={fraction} must be in [0, 1).")
    if fraction == 0.0:
        return sorted(names), []
    count = max(1, round(len(names) * fraction))
    order = np.random.default_rng(seed).permutation(len(names))
    ordered = sorted(names)
    val = sorted(ordered[i] for i in order[:count])
    train = sorted(ordered[i] for i in order[count:])
    return train, val


SplitSpec = Mapping[str, str | list[str] | None]
"""One entry of ``dataset.splits``: ``trainval``, optional ``val`` and ``test`` split files."""


SPLIT_KEYS: tuple[str, ...] = ("trainval", "val", "test", "exclude", "protocol", "source")
"""Keys accepted in one entry of ``dataset.splits``."""


def split_spec(splits: Mapping[str, SplitSpec], split: str) -> dict[str, Any]:
    """The entry ``split`` of ``dataset.splits``, checked.

    An entry maps ``trainval``, ``val`` and ``test`` to split files (see :func:`resolve_splits`)
    and may add ``exclude`` (a list of names dropped from every list), ``protocol`` (the
    protocol name recorded in results files; default: the entry's own name, so an alias entry
    written as ``${.standard}`` records ``standard``) and ``source`` (where the split comes
    from, for the record).

    Arguments:
      splits (Mapping[str, SplitSpec]): ``dataset.splits``.
      split (str): ``dataset.split``.
    Returns:
      dict[str, Any]: the entry with ``protocol`` filled in.
    Raises:
      DatasetError: unknown split name or unknown keys.
    """
    if split not in splits:
        raise DatasetError(
            f"dataset.split={split!r} is not defined; dataset.splits has {sorted(splits)}."
        )
    spec = dict(splits[split] or {})
    unknown = set(spec) - set(SPLIT_KEYS)
    if unknown:
        raise DatasetError(
            f"dataset.splits.{split} has unknown key(s) {sorted(unknown)}; use "
            f"{', '.join(SPLIT_KEYS)}."
        )
    exclude = spec.get("exclude") or []
    if isinstance(exclude, str):
        raise DatasetError(
            f"dataset.splits.{split}.exclude must be a list of names, got the string {exclude!r}"
        )
    spec.setdefault("protocol", split)
    if spec["protocol"] is None:
        spec["protocol"] = split
    return spec


def split_files(root: str | os.PathLike, spec: Mapping[str, Any]) -> dict[str, Path | None]:
    """The split file each part of a split entry resolves to under ``root``.

    Arguments:
      root (str | PathLike): dataset root.
      spec (Mapping[str, Any]): one entry of ``dataset.splits`` (see :func:`split_spec`).
    Returns:
      dict[str, Path | None]: ``trainval``, ``val``, ``test`` → the file found, or None where
      the entry has null.
    Raises:
      DatasetError: a listed file (or every candidate) is missing.
    """
    root = Path(root)
    return {
        key: None if spec.get(key) is None else find_split_file(root, spec[key])
        for key in ("trainval", "val", "test")
    }


def resolve_splits(
    root: str | os.PathLike,
    *,
    layout: str = "auto",
    splits: Mapping[str, SplitSpec],
    split: str,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    unpaired: list[tuple[Path, str]] | None = None,
) -> dict[str, list[Sample]]:
    """Find the files of the train, validation and test sets of a dataset on disk.

    Checks the cheap things: the root and layout, image/mask pairing, split files and the
    names they list. Sizes are checked when images load.

    Arguments:
      root (str | PathLike): dataset root.
      layout (str): ``auto`` or a key of :data:`LAYOUTS`.
      splits (Mapping[str, SplitSpec]): named split definitions; each maps ``trainval``,
        ``val`` and ``test`` to a split file (relative to ``root``), a list of candidate files
        (first existing wins; ``*`` patterns allowed; paths relative to ``root`` or absolute) or
        null. ``trainval: null`` takes every image not in val/test; ``val: null`` carves
        validation from trainval (``val_fraction``, ``split_seed``); ``test: null`` means no
        test set. Optional keys: ``exclude`` (names dropped from every list, e.g. IRSAM's
        IRSTD-1k test list without XDU997), ``protocol`` and ``source`` (recorded in results,
        see :func:`split_spec`).
      split (str): which entry of ``splits`` to use.
      val_fraction (float): share of trainval used for validation when ``val`` is null.
      split_seed (int): seed of that carve (fixed, so the split is identical across runs).
      unpaired (list[tuple[Path, str]] | None): collect unpaired files instead of raising (see
        :func:`pair_files`; the data module passes one when its pre-flight check is on).
    Returns:
      dict[str, list[Sample]]: ``train``, ``val`` and ``test`` samples (``val``/``test`` may be
      empty), each sorted by name.
    Raises:
      DatasetError: missing root, unknown split, unpaired files, missing or empty split files,
        names without images, or an empty training set.
    """
    root = Path(root)
    chosen = detect_layout(root, layout)
    if split not in splits:
        raise DatasetError(
            f"dataset.split={split!r} is not defined; dataset.splits has {sorted(splits)}."
        )
    spec = split_spec(splits, split)
    image_dir, mask_dir = root / chosen.image_dir, root / chosen.mask_dir
    pairs = pair_files(image_dir, mask_dir, unpaired=unpaired)
    files = split_files(root, spec)
    exclude = [strip_image_suffix(str(name)) for name in spec.get("exclude") or []]
    excluded: set[str] = set()

    def names_of(key: str) -> list[str] | None:
        path = files[key]
        if path is None:
            return None
        names = select(pairs, read_split_file(path), path, image_dir, unpaired)
        excluded.update(name for name in names if name in exclude)
        return [name for name in names if name not in exclude]

    test = names_of("test") or []
    val = names_of("val")
    trainval = names_of("trainval")
    not_listed = sorted(set(exclude) - excluded)
    if not_listed:
        log.warning(
            "dataset.splits.%s.exclude names %s, which no split file of %s lists",
            split,
            not_listed,
            root,
        )
    if trainval is None:
        held_out = set(test) | set(val or [])
        trainval = [name for name in pairs if name not in held_out and name not in exclude]
    if val is None:
        train, val = carve_validation(trainval, val_fraction, split_seed)
    else:
        train = sorted(trainval)
    if not train:
        raise DatasetError(
            f"the training set of {root} (split {split!r}) is empty. Check the split files and "
            "dataset.val_fraction."
        )
    overlap = sorted(set(train + val) & set(test))
    if overlap:
        log.warning(
            "%d image(s) of %s are in both trainval and test (e.g. %s)",
            len(overlap),
            root,
            overlap[0],
        )

    def samples(names: list[str]) -> list[Sample]:
        return [Sample(name, *pairs[name]) for name in sorted(names)]

    return {"train": samples(train), "val": samples(val), "test": samples(test)}


def _stratum_counts(count: int, total: int, free: int) -> tuple[int, int]:
    """(target-free, with-target) images of a budget of ``count`` among ``total`` (rule below)."""
    share = (2 * count * free + total) // (2 * total)
    low = 1 if free and count >= 2 else 0
    high = count - 1 if free < total else count
    chosen_free = min(max(share, low), high)
    return chosen_free, count - chosen_free


LABEL_BUDGET_KEYS: tuple[str, ...] = ("train_fraction", "train_count", "train_subset_seed")
"""Data-module settings of a label budget (:func:`label_budget`)."""


def label_budget(
    names: Sequence[str],
    has_target: Sequence[bool],
    fraction: float | None = None,
    count: int | None = None,
    seed: int = 0,
) -> list[str]:
    """A seeded, nested and stratified subset of the training names (the label budget).

    The budget is ``k = count`` images, or ``k = max(1, round(len(names) * fraction))`` with
    halves rounded up. Images with a target and target-free images are two strata; each stratum
    is sorted by name and permuted once by ``numpy.random.default_rng([seed, s])`` (``s`` = 0 for
    target-free, 1 for with-target images), and the subset is a prefix of each permutation, so for
    one seed a smaller budget is always contained in a larger one. Of ``n`` names with ``e``
    target-free ones, the subset holds ``round(k * e / n)`` target-free images (halves rounded
    up), then clamped: at least one target-free image when ``e > 0`` and ``k >= 2``, and at least
    one image with a target when ``e < n``; the rest have a target. Both stratum counts grow with
    ``k``, which keeps the subsets nested.

    Arguments:
      names (Sequence[str]): the training names, in the order of the training split.
      has_target (Sequence[bool]): per name, whether its mask has a target pixel.
      fraction (float | None): share of the names to keep, in (0, 1]; None when ``count`` is
        given or for no budget.
      count (int | None): number of names to keep, 1 to ``len(names)``; None when ``fraction``
        is given or for no budget.
      seed (int): seed of the permutations (``dataset.train_subset_seed``), independent of the
        run seed so that subsets are comparable across models.
    Returns:
      list[str]: the chosen names in the order of ``names``; all of them without a budget.
    Raises:
      ConfigError: both ``fraction`` and ``count`` are set, one is out of range, or ``seed`` is
        not a non-negative integer.
      ValueError: ``names`` and ``has_target`` differ in length.
    """
    if len(names) != len(has_target):
        raise ValueError(f"{len(names)} names but {len(has_target)} has_target flags")
    if fraction is not None and count is not None:
        raise ConfigError(
            f"dataset.train_fraction={fraction} and dataset.train_count={count} are both set; "
            "set one of them and leave the other null."
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"dataset.train_subset_seed={seed!r} must be a non-negative integer.")
    total = len(names)
    if fraction is not None:
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
            raise ConfigError(f"dataset.train_fraction={fraction!r} must be a number in (0, 1].")
        if not 0.0 < fraction <= 1.0:
            raise ConfigError(
                f"dataset.train_fraction={fraction} must be in (0, 1] (null = all training images)."
            )
        count = max(1, math.floor(total * fraction + 0.5))
    elif count is None:
        return list(names)
    elif isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= total:
        raise ConfigError(
            f"dataset.train_count={count!r} must be an integer from 1 to {total} (the training "
            "images available; null = all of them)."
        )
    strata = {
        stratum: sorted(name for name, flag in zip(names, has_target) if bool(flag) == stratum)
        for stratum in (False, True)
    }
    taken = dict(zip((False, True), _stratum_counts(count, total, len(strata[False]))))
    chosen: set[str] = set()
    for stratum, members in strata.items():
        order = np.random.default_rng([seed, int(stratum)]).permutation(len(members))
        chosen.update(members[i] for i in order[: taken[stratum]])
    return [name for name in names if name in chosen]
