# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Prediction outputs never collide and never mix (irsam.outputs.predictions, PredictionWriter)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from irsam.outputs import PredictionWriter, write_prediction, write_targets_csv
from irsam.outputs.predictions import clear_output_dir, count_masks
from irsam.utils import UserError


def _previous_run(folder: Path, names: tuple[str, ...] = ("a", "b", "c")) -> None:
    """The files of an earlier prediction run: masks, overlays, probabilities, reports."""
    image = np.zeros((8, 8, 3), np.float32)
    pred = np.zeros((8, 8), bool)
    pred[2:4, 2:4] = True
    for name in names:
        write_prediction(folder, name, image, pred, prob=pred.astype(np.float32))
    write_targets_csv(folder / "targets.csv", [])
    (folder / "skipped.txt").write_text("x\tunreadable\n")


def test_new_or_empty_folder_is_used_as_it_is(tmp_path: Path) -> None:
    assert clear_output_dir(tmp_path / "new", overwrite=False) == 0
    (tmp_path / "empty" / "masks").mkdir(parents=True)
    assert clear_output_dir(tmp_path / "empty", overwrite=False) == 0


def test_folder_of_an_earlier_run_is_refused_unless_overwrite(tmp_path: Path) -> None:
    """Without overwrite: refused, naming the key and both ways out; nothing is deleted. With
    overwrite: the earlier masks, overlays, probability maps and reports are deleted."""
    out = tmp_path / "pred"
    _previous_run(out)
    before = sorted(p for p in out.rglob("*") if p.is_file())
    with pytest.raises(FileExistsError) as info:
        clear_output_dir(out, overwrite=False)
    assert isinstance(info.value, UserError)  # the commands print it as one line, exit 2
    message = str(info.value)
    assert f"output={out} already holds {len(before)} prediction file(s)" in message
    assert "overwrite=true" in message and "output=<folder>" in message
    assert sorted(p for p in out.rglob("*") if p.is_file()) == before
    assert clear_output_dir(out, overwrite=True) == len(before) == 11
    assert list(out.iterdir()) == [] and count_masks(out) == 0


def test_folder_with_other_files_is_refused_even_with_overwrite(tmp_path: Path) -> None:
    """A folder holding files a prediction run does not write (e.g. a dataset root with images/
    and masks/) is never cleared: nothing is deleted."""
    root = tmp_path / "dataset"
    _previous_run(root, ("a",))
    (root / "images").mkdir()
    (root / "images" / "a.png").write_bytes(b"x")
    (root / "masks" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="it is not a prediction folder") as info:
        clear_output_dir(root, overwrite=True)
    assert str(root / "images") in str(info.value) and isinstance(info.value, UserError)
    assert (root / "masks" / "a.png").is_file() and (root / "images" / "a.png").is_file()


def test_writer_refuses_a_second_image_with_a_written_name(tmp_path: Path) -> None:
    """Two images named ``a`` in one loop would leave one mask on disk for two images."""
    writer = PredictionWriter(str(tmp_path / "pred"), overlays=False)
    module = SimpleNamespace(threshold=0.0)
    batch = {
        "name": ["a"],
        "image": torch.zeros(1, 3, 8, 8),
        "valid_size": torch.tensor([[8, 8]]),
    }
    outputs = {"native_logits": [torch.ones(1, 1, 8, 8)]}
    writer.on_predict_batch_end(None, module, outputs, batch, 0)
    assert count_masks(tmp_path / "pred") == 1 and writer.images == 1
    with pytest.raises(ValueError, match="two images of this run are named 'a'"):
        writer.on_predict_batch_end(None, module, outputs, batch, 1)
