# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Pre-flight check of a dataset's files: every image and mask decoded once before the first step.

Found in seconds at ``setup``, not when a file is first loaded, and listed together in one
:class:`~irsam.data.errors.DatasetError` for every split the stage uses:

* an image without a mask;
* a zero-byte, truncated or non-image file, an unsupported array shape, NaN/Inf pixels;
* an image/mask size mismatch that the loader would reject;
* a mask whose stored values vary but which holds no target under the mask rule
  (:data:`irsam.data.io.MASK_RULE`), e.g. a faint soft mask: it would train on empty truth.

Soft masks (several non-zero levels, cut at half their full scale) pass with one warning that
names them and the rule.

Each file is fully decoded with the loader's own decoder (:func:`irsam.data.io.probe_image`,
:func:`irsam.data.io.inspect_mask`; a header read alone misses truncated JPEG/TIFF/BMP data), in
a thread pool, with a progress bar when many files are new. Files that pass are remembered in a
small JSON cache keyed by (absolute path, size in bytes, modification time), so later runs check
only new or changed files. Switch: ``dataset.preflight``; cache file: ``dataset.preflight_cache``
(default :func:`default_cache_path`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from irsam.data.errors import DatasetError
from irsam.data.io import MASK_RULE, ImageReadError, inspect_mask, probe_image
from irsam.data.layouts import Sample
from irsam.utils import atomic_write_bytes, get_logger

log = get_logger(__name__)

CACHE_VERSION = 2
"""Format version of the cache file; a file of another version is ignored."""
MAX_LISTED = 50
"""At most this many bad files are listed in the error message (the rest are counted)."""
PROGRESS_MIN_FILES = 200
"""A progress bar is shown when at least this many files are not in the cache."""
EMPTY_MASK = (
    "its values vary but none is target under the mask rule (a faint soft mask, or small label "
    "ids cut at half scale): re-export it with 0 for background and 255 for target"
)
"""The problem of a non-constant mask that decodes as empty."""

Probed = tuple[int, int, bool]
"""What the check learns from a good file: (height, width, soft mask)."""


def default_cache_path() -> Path:
    """``$XDG_CACHE_HOME/irsam/preflight.json`` (``~/.cache/irsam/preflight.json``).

    Returns:
      Path: the cache file (outside any dataset folder, which may be read-only).
    """
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "irsam" / "preflight.json"


@dataclass(frozen=True)
class BadFile:
    """One file the loader would reject.

    Arguments:
      path (Path): the file.
      problem (str): what is wrong with it.
      split (str): the split (``train``, ``val``, ``test``) that uses it.
      list_file (Path | None): the split file that lists it, when there is one.
      mask_rule (bool): the problem is about how the mask rule reads the file.
    """

    path: Path
    problem: str
    split: str
    list_file: Path | None = None
    mask_rule: bool = False


def _key(path: Path) -> tuple[str, list[int]] | None:
    """Cache key and stamp of a file: (absolute path, [size, mtime_ns]); None when missing."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return str(path.resolve()), [int(stat.st_size), int(stat.st_mtime_ns)]


class _Cache:
    """The JSON cache of files that passed: ``{path: [size, mtime_ns, height, width, soft]}``."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.entries: dict[str, list[int]] = {}
        self.changed = False
        if path is None or not path.is_file():
            return
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            log.warning("ignoring the unreadable pre-flight cache %s (%s)", path, err)
            return
        if isinstance(data, dict) and data.get("version") == CACHE_VERSION:
            self.entries = dict(data.get("files") or {})

    def get(self, path: Path) -> Probed | None:
        """The cached result of an unchanged file, or None."""
        key = _key(path)
        entry = None if key is None else self.entries.get(key[0])
        if key is None or entry is None or list(entry[:2]) != key[1]:
            return None
        return int(entry[2]), int(entry[3]), bool(entry[4])

    def put(self, path: Path, probed: Probed) -> None:
        """Remember a file that passed."""
        key = _key(path)
        if key is not None:
            self.entries[key[0]] = [*key[1], probed[0], probed[1], int(probed[2])]
            self.changed = True

    def save(self) -> None:
        """Write the cache atomically when it changed (a failure only warns)."""
        if self.path is None or not self.changed:
            return
        payload = {"version": CACHE_VERSION, "files": self.entries}
        try:
            atomic_write_bytes(self.path, json.dumps(payload).encode(), what="pre-flight cache")
        except OSError as err:  # the cache only saves time: never fail a run over it
            log.warning("could not write the pre-flight cache %s (%s)", self.path, err)


def _probe(path: Path, is_mask: bool) -> Probed | str:
    """(height, width, soft) of a usable file, or the problem as text."""
    try:
        if not is_mask:
            return (*probe_image(path), False)
        reading = inspect_mask(path)
        if not reading.constant and not reading.mask.any():
            return EMPTY_MASK
        height, width = reading.mask.shape
        return height, width, reading.soft
    except ImageReadError as err:
        return err.reason
    except (OSError, MemoryError) as err:  # unreadable file system entries, absurd headers
        return f"cannot read it ({err})"


def probe_files(
    paths: Iterable[Path],
    cache_path: Path | None = None,
    workers: int | None = None,
    masks: Collection[Path] = (),
) -> dict[Path, Probed | str]:
    """Decode every file once (in threads, skipping cached ones) and return what it holds.

    Arguments:
      paths (Iterable[Path]): image and mask files.
      cache_path (Path | None): JSON cache of files that passed (None = no cache).
      workers (int | None): threads (None = min(8, CPU count)).
      masks (Collection[Path]): the files of ``paths`` that are masks (read by the mask rule).
    Returns:
      dict[Path, tuple[int, int, bool] | str]: per file, (height, width, soft mask) or what is
      wrong.
    """
    unique = list(dict.fromkeys(Path(p) for p in paths))
    mask_set = {Path(p) for p in masks}
    cache = _Cache(cache_path)
    result: dict[Path, Probed | str] = {}
    todo: list[Path] = []
    for path in unique:
        cached = cache.get(path)
        if cached is None:
            todo.append(path)
        else:
            result[path] = cached
    if todo:
        threads = workers or min(8, os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=threads) as pool:
            outcomes = pool.map(lambda p: _probe(p, p in mask_set), todo)
            bar = tqdm(
                outcomes,
                total=len(todo),
                desc="pre-flight check",
                unit="file",
                disable=len(todo) < PROGRESS_MIN_FILES,
            )
            for path, outcome in zip(todo, bar, strict=True):
                result[path] = outcome
                if not isinstance(outcome, str):
                    cache.put(path, outcome)
        cache.save()
    return result


def _pair_problem(
    sample: Sample,
    image: tuple[int, int],
    mask: tuple[int, int],
    mask_size_mismatch: str,
) -> str | None:
    """The size problem of an image/mask pair that the loader would reject, or None."""
    if image == mask:
        return None
    (height, width), (mask_height, mask_width) = image, mask
    same_aspect = abs(height * mask_width - width * mask_height) <= 0.02 * height * mask_width
    if mask_size_mismatch == "resize" and same_aspect:
        return None
    hint = (
        "set dataset.mask_size_mismatch=resize (same aspect ratio) or re-export the mask"
        if same_aspect
        else "the aspect ratios differ: re-export the mask at the image's size"
    )
    return f"image is {image} (H, W) but its mask {sample.mask_path} is {mask}; {hint}"


def check_samples(
    parts: dict[str, Sequence[Sample]],
    *,
    mask_size_mismatch: str = "error",
    cache_path: Path | None = None,
    list_files: dict[str, Path | None] | None = None,
    workers: int | None = None,
    require_masks: bool = True,
) -> tuple[list[BadFile], list[Path]]:
    """Find every problem of the given splits in one pass, and the soft masks.

    Arguments:
      parts (dict[str, Sequence[Sample]]): split name → samples (image and optional mask).
      mask_size_mismatch (str): ``error`` or ``resize`` (as the dataset's option).
      cache_path (Path | None): the JSON cache (None = no cache).
      list_files (dict[str, Path | None] | None): split name → the split file listing it.
      workers (int | None): threads.
      require_masks (bool): an image without a mask (``mask_path`` None) is a problem.
    Returns:
      tuple[list[BadFile], list[Path]]: the problems in split then sample order (empty when all
      pass), and the soft masks (several non-zero levels; usable, worth a warning).
    """
    masks = [s.mask_path for samples in parts.values() for s in samples if s.mask_path]
    images = [sample.image_path for samples in parts.values() for sample in samples]
    probed = probe_files([*images, *masks], cache_path, workers, masks=masks)
    bad: list[BadFile] = []
    soft: list[Path] = []
    for split, samples in parts.items():
        listed = (list_files or {}).get(split)
        for sample in samples:
            image = probed[Path(sample.image_path)]
            if sample.mask_path is None:
                if require_masks:
                    problem = (
                        f"no mask: add {sample.name}.png (or {sample.name}_pixels0.png) to the "
                        "mask folder, or remove the image"
                    )
                    bad.append(BadFile(Path(sample.image_path), problem, split, listed))
                mask = None
            else:
                mask = probed[Path(sample.mask_path)]
            for path, outcome in ((sample.image_path, image), (sample.mask_path, mask)):
                if isinstance(outcome, str):
                    rule = outcome == EMPTY_MASK
                    bad.append(BadFile(Path(path), outcome, split, listed, rule))
            if isinstance(mask, tuple) and mask[2]:
                soft.append(Path(sample.mask_path))  # type: ignore[arg-type]
            if isinstance(image, tuple) and isinstance(mask, tuple):
                problem = _pair_problem(sample, image[:2], mask[:2], mask_size_mismatch)
                if problem is not None:
                    bad.append(BadFile(Path(sample.image_path), problem, split, listed))
    return bad, list(dict.fromkeys(soft))


def format_bad_files(bad: Sequence[BadFile], dataset: str) -> str:
    """The one error message listing every problem, what is wrong and the fix.

    Arguments:
      bad (Sequence[BadFile]): from :func:`check_samples` (not empty).
      dataset (str): dataset name and root, for the first line.
    Returns:
      str: the message.
    """
    lines = [
        (
            f"pre-flight check of {dataset}: {len(bad)} problem(s); the run would fail when it "
            "reaches them or learn from wrong data:"
        )
    ]
    for item in bad[:MAX_LISTED]:
        where = f"{item.split} split" + (f", listed in {item.list_file}" if item.list_file else "")
        lines.append(f"    {item.path} ({where}): {item.problem}")
    if len(bad) > MAX_LISTED:
        lines.append(f"    ... and {len(bad) - MAX_LISTED} more")
    if any(item.mask_rule for item in bad):
        lines.append(f"Mask rule: {MASK_RULE}.")
    lines.append(
        "Fix: replace each file with a good copy (re-export or re-download it), add the missing "
        "masks, or remove its name from the split file named above. To skip this check: "
        "dataset.preflight=false."
    )
    return "\n".join(lines)


def warn_soft_masks(soft: Sequence[Path]) -> None:
    """Log one warning naming the soft masks (several non-zero levels) and the rule they follow.

    Arguments:
      soft (Sequence[Path]): the soft masks (nothing is logged when empty).
    """
    if not soft:
        return
    shown = "\n".join(f"    {path}" for path in soft[:MAX_LISTED])
    more = f"\n    ... and {len(soft) - MAX_LISTED} more" if len(soft) > MAX_LISTED else ""
    log.warning(
        "%d mask(s) have several non-zero levels (soft, anti-aliased or JPEG-smeared) and are "
        "cut at half their full scale; mask rule: %s.\n%s%s",
        len(soft),
        MASK_RULE,
        shown,
        more,
    )


def preflight(
    parts: dict[str, Sequence[Sample]],
    *,
    dataset: str,
    mask_size_mismatch: str = "error",
    cache_path: Path | None = None,
    list_files: dict[str, Path | None] | None = None,
    extra: Sequence[BadFile] = (),
) -> None:
    """Check every file of ``parts`` and raise one error listing every problem.

    Arguments:
      parts (dict[str, Sequence[Sample]]): split name → samples.
      dataset (str): dataset name and root, for the message.
      mask_size_mismatch (str): ``error`` or ``resize``.
      cache_path (Path | None): the JSON cache (None = no cache).
      list_files (dict[str, Path | None] | None): split name → the split file listing it.
      extra (Sequence[BadFile]): problems found before decoding (e.g. masks without an image),
        listed first in the same message.
    Raises:
      DatasetError: at least one problem (message from :func:`format_bad_files`).
    """
    bad, soft = check_samples(
        parts,
        mask_size_mismatch=mask_size_mismatch,
        cache_path=cache_path,
        list_files=list_files,
    )
    warn_soft_masks(soft)
    if extra or bad:
        raise DatasetError(format_bad_files([*extra, *bad], dataset))
    count = sum(len(samples) for samples in parts.values())
    log.info("pre-flight check: %d samples of %s (%s) decode", count, dataset, ", ".join(parts))


class SkippedFiles:
    """Files left out before a prediction run, reported like a stream's skipped frames.

    Arguments:
      skipped (dict[str, str]): file → reason.
    """

    def __init__(self, skipped: dict[str, str]) -> None:
        self.skipped = dict(skipped)

    def missing(self, written: set[str]) -> dict[str, str]:
        """The skipped files (``written`` is not needed: they were never loaded).

        Arguments:
          written (set[str]): names the prediction wrote.
        Returns:
          dict[str, str]: file → reason.
        """
        return dict(self.skipped)


def drop_unreadable(
    samples: Sequence[Sample], on_error: str = "skip"
) -> tuple[list[Sample], SkippedFiles]:
    """Pre-flight check of prediction inputs (images with ground truth): leave bad pairs out.

    Arguments:
      samples (Sequence[Sample]): images and their ground-truth masks.
      on_error (str): ``skip`` (warn per bad file, drop its sample) or ``stop`` (raise).
    Returns:
      tuple[list[Sample], SkippedFiles]: the readable samples and the skipped files with reasons.
    Raises:
      DatasetError: ``on_error=stop`` and a file cannot be read (all are listed).
    """
    if on_error not in ("skip", "stop"):
        raise ValueError(f"on_error={on_error!r} is not one of skip, stop.")
    bad, soft = check_samples({"input": samples})
    warn_soft_masks(soft)
    if bad and on_error == "stop":
        lines = [f"    {item.path}: {item.problem}" for item in bad]
        rule = [f"Mask rule: {MASK_RULE}."] if any(item.mask_rule for item in bad) else []
        raise DatasetError(
            f"{len(bad)} input file(s) cannot be used:\n"
            + "\n".join([*lines, *rule])
            + "\nReplace them or move them out of the input, or pass on_error=skip."
        )
    names = {item.path for item in bad}
    for item in bad:
        log.warning("skipping %s (on_error=skip): %s", item.path, item.problem)
    kept = [s for s in samples if Path(s.image_path) not in names and s.mask_path not in names]
    return kept, SkippedFiles({str(item.path): item.problem for item in bad})
