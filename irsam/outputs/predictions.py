# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Prediction outputs on disk, written one way by every tool (evaluate, predict, one-shot).

Per image ``<name>``: ``masks/<name>.png`` (0/255), ``overlays/<name>.png`` (colour overlay) and
optionally ``probs/<name>.tif`` (float32 probabilities); per run ``targets.csv``, one row per
detected target. Every file is written atomically (temporary name, then rename).

Outputs of two runs never mix: :func:`clear_output_dir` refuses a folder that is not empty, or,
when asked to overwrite, deletes the previous run's files one by one (and refuses a folder that
holds anything else).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from scipy import ndimage
from scipy.special import expit

from irsam.data.io import write_png
from irsam.metrics import label_components
from irsam.outputs.pictures import overlay
from irsam.utils import atomic_path, atomic_write_bytes
from irsam.utils.errors import OutputExistsError

TARGET_COLUMNS = (
    "image",
    "target",
    "centroid_x",
    "centroid_y",
    "area",
    "score_max",
    "score_mean",
    "bbox_x0",
    "bbox_y0",
    "bbox_x1",
    "bbox_y1",
)
"""Columns of ``targets.csv``: one row per detected target (8-connected component, raster order);
centroids are unweighted pixel means, scores are sigmoid probabilities, the box is in pixels with
x1/y1 exclusive."""


def binarise_logits(logit_map: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The mask and the probability map of one native-resolution logit map: what every
    prediction output (files, ``targets.csv``, :class:`irsam.predictor.Predictor`) is made of.

    Arguments:
      logit_map (np.ndarray): H×W float32 mask logits.
      threshold (float): logit threshold of a target pixel (the metrics' ``threshold``).
    Returns:
      tuple[np.ndarray, np.ndarray]: H×W bool mask (``logit > threshold``) and H×W float32
      sigmoid probabilities.
    """
    return logit_map > threshold, expit(logit_map)


def target_rows(name: str, pred: np.ndarray, prob: np.ndarray) -> list[tuple[Any, ...]]:
    """One ``targets.csv`` row per 8-connected component of a binary prediction.

    Arguments:
      name (str): image name (first column).
      pred (np.ndarray): H×W bool prediction.
      prob (np.ndarray): H×W float probabilities in [0, 1].
    Returns:
      list[tuple]: rows in :data:`TARGET_COLUMNS` order, components in raster label order.
    """
    labels, count = label_components(pred)
    if count == 0:
        return []
    index = np.arange(1, count + 1)
    rows_idx, cols_idx = np.nonzero(labels)
    ids = labels[rows_idx, cols_idx]
    areas = np.bincount(ids, minlength=count + 1)[1:]
    centre_rows = np.bincount(ids, weights=rows_idx, minlength=count + 1)[1:] / areas
    centre_cols = np.bincount(ids, weights=cols_idx, minlength=count + 1)[1:] / areas
    score_max = ndimage.maximum(prob, labels, index)
    score_mean = ndimage.mean(prob, labels, index)
    rows = []
    for k, box in enumerate(ndimage.find_objects(labels)):
        rows.append(
            (
                name,
                k + 1,
                round(float(centre_cols[k]), 2),
                round(float(centre_rows[k]), 2),
                int(areas[k]),
                round(float(score_max[k]), 4),
                round(float(score_mean[k]), 4),
                box[1].start,
                box[0].start,
                box[1].stop,
                box[0].stop,
            )
        )
    return rows


def write_prediction(
    output_dir: str | Path,
    name: str,
    image: np.ndarray,
    pred: np.ndarray,
    *,
    gt: np.ndarray | None = None,
    prob: np.ndarray | None = None,
    overlays: bool = True,
) -> np.ndarray | None:
    """Write the mask, the overlay and optionally the probability map of one image.

    Arguments:
      output_dir (str | Path): run output folder (receives ``masks/``, ``overlays/``, ``probs/``).
      name (str): file stem.
      image (np.ndarray): H×W×3 (or H×W) image, float 0–255 or uint8, at the mask's size.
      pred (np.ndarray): H×W bool prediction.
      gt (np.ndarray | None): H×W bool ground truth (colours hits, false alarms and misses).
      prob (np.ndarray | None): H×W float32 probabilities, written as ``probs/<name>.tif``.
      overlays (bool): write ``overlays/<name>.png``.
    Returns:
      np.ndarray | None: the H×W×3 uint8 overlay (None when ``overlays`` is off).
    """
    output_dir = Path(output_dir)
    write_png(output_dir / "masks" / f"{name}.png", pred.astype(np.uint8) * 255)
    picture = None
    if overlays:
        picture = overlay(image, pred, gt)
        write_png(output_dir / "overlays" / f"{name}.png", picture)
    if prob is not None:
        with atomic_path(output_dir / "probs" / f"{name}.tif") as tmp:
            tifffile.imwrite(tmp, prob.astype(np.float32))
    return picture


OUTPUT_FOLDERS = {"masks": ".png", "overlays": ".png", "probs": ".tif"}
"""The per-image folders of a prediction run and the suffix of their files."""
RUN_FILES = ("targets.csv", "skipped.txt", "overlay.avi", "results.json", "results.md")
"""The per-run files of a prediction run."""


def _is_temporary(path: Path) -> bool:
    """A temporary file left by an interrupted atomic write (``.<name>.<random>.tmp``)."""
    return path.name.startswith(".") and path.name.endswith(".tmp")


def count_masks(output_dir: str | Path) -> int:
    """Number of mask files on disk in a prediction folder.

    Arguments:
      output_dir (str | Path): the run output folder.
    Returns:
      int: the ``masks/*.png`` files.
    """
    return sum(1 for _ in (Path(output_dir) / "masks").glob("*.png"))


def clear_output_dir(output_dir: str | Path, overwrite: bool, key: str = "output") -> int:
    """Make sure a new run's predictions cannot mix with files already in ``output_dir``.

    An empty or missing folder is used as it is. A folder with files is refused unless
    ``overwrite``; then the files a prediction run writes (:data:`OUTPUT_FOLDERS`,
    :data:`RUN_FILES`, interrupted temporary files) are deleted one by one, and the per-image
    folders too when empty. A folder that holds anything else is refused even with ``overwrite``
    (it is not a prediction folder) and nothing is deleted.

    Arguments:
      output_dir (str | Path): the run output folder.
      overwrite (bool): delete the previous run's predictions instead of refusing.
      key (str): the config key of the folder, named in the messages.
    Returns:
      int: the number of files deleted.
    Raises:
      OutputExistsError: the folder is not empty (without ``overwrite``), or holds files that a
        prediction run does not write (a ``FileExistsError`` and a user error: one line, exit 2).
    """
    folder = Path(output_dir)
    if not folder.is_dir() or not any(folder.iterdir()):
        return 0
    ours: list[Path] = []
    foreign: list[Path] = []
    for entry in sorted(folder.iterdir()):
        if entry.is_dir() and entry.name in OUTPUT_FOLDERS:
            for file in sorted(entry.iterdir()):
                known = file.suffix == OUTPUT_FOLDERS[entry.name] or _is_temporary(file)
                (ours if known and file.is_file() else foreign).append(file)
        elif entry.is_file() and (entry.name in RUN_FILES or _is_temporary(entry)):
            ours.append(entry)
        else:
            foreign.append(entry)
    if not ours and not foreign:  # empty per-image folders only
        return 0
    if foreign:
        shown = ", ".join(str(p) for p in foreign[:3]) + (" ..." if len(foreign) > 3 else "")
        raise OutputExistsError(
            f"{key}={folder} holds {len(foreign)} file(s) that a prediction run does not write "
            f"({shown}); it is not a prediction folder, so nothing was deleted. Choose an empty "
            f"or new folder: {key}=<folder>."
        )
    if not overwrite:
        raise OutputExistsError(
            f"{key}={folder} already holds {len(ours)} prediction file(s) of an earlier run; new "
            f"masks would mix with them. Choose an empty or new folder ({key}=<folder>), or pass "
            "overwrite=true to delete the earlier masks, overlays, probability maps and reports "
            "first."
        )
    for file in ours:
        file.unlink()
    for name in OUTPUT_FOLDERS:
        sub = folder / name
        if sub.is_dir() and not any(sub.iterdir()):
            os.rmdir(sub)
    return len(ours)


TRACK_COLUMNS = ("frame", "track_id")
"""Columns appended to ``targets.csv`` for frame streams: the frame index and the track id given
by :func:`irsam.outputs.tracking.update_tracks`."""


def write_targets_csv(
    path: str | Path, rows: Iterable[Sequence[Any]], columns: Sequence[str] = TARGET_COLUMNS
) -> None:
    """Write ``targets.csv`` atomically.

    Arguments:
      path (str | Path): destination file.
      rows (Iterable[Sequence]): rows from :func:`target_rows` (plus :data:`TRACK_COLUMNS`).
      columns (Sequence[str]): the header.
    """
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(columns)
    writer.writerows(rows)
    atomic_write_bytes(Path(path), text.getvalue().encode())
