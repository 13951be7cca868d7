# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Reliability through the entry points, on one tiny 2-epoch run: a sample panel in a short run,
predict.py skipping an unreadable frame, and an unwritable prediction folder; errors a user can
fix as one line with exit code 2."""

from __future__ import annotations

import csv
import errno
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from conftest import PROJECT_ROOT, TINY_TRAIN_OVERRIDES, compose_config

from irsam.data.io import ImageReadError, encode_png
from irsam.tasks.predict import predict
from irsam.tasks.train import train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def short_run(tmp_path_factory) -> Path:
    """A 2-epoch synthetic run whose sample-panel interval (5) is longer than the run."""
    run = tmp_path_factory.mktemp("short_run")
    overrides = [o for o in TINY_TRAIN_OVERRIDES if "every_n_epochs" not in o] + [
        "trainer.max_epochs=2",
        "callbacks.sample_predictions.every_n_epochs=5",
        "test=false",
    ]
    train(compose_config("train", run, overrides))
    return run


def test_two_epoch_run_logs_a_sample_panel(short_run: Path) -> None:
    """every_n_epochs=5 in a 2-epoch run: panels at the first and the last epoch, and the
    training-batch panel."""
    panels = sorted(p.name for p in (short_run / "samples").glob("*.png"))
    assert panels == ["epoch_000.png", "epoch_001.png", "train_batch.png"]


def _frames(folder: Path, count: int = 7, corrupt: int = 4) -> Path:
    """``count`` 48×48 PNG frames; frame ``corrupt`` is truncated."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for k in range(count):
        data = encode_png(rng.integers(0, 255, (48, 48), dtype=np.uint8))
        (folder / f"f{k:02d}.png").write_bytes(data[: len(data) // 3] if k == corrupt else data)
    return folder


def _predict_config(short_run: Path, tmp_path: Path, inputs: Path, *extra: str):
    return compose_config(
        "predict",
        tmp_path / "predict_run",
        [
            f"ckpt_path={short_run / 'checkpoints' / 'last.ckpt'}",
            f"input={inputs}",
            f"output={tmp_path / 'pred'}",
            "trainer=cpu",
            "extras.print_config=false",
            "trainer.enable_progress_bar=false",
            "batch_size=2",
            *extra,
        ],
    )


def test_predict_skips_an_unreadable_frame_and_reports_it(
    short_run: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """One corrupt image of 7: a warning naming it, the 6 others written, targets.csv written,
    skipped.txt and the summary list it, and the final log line counts it."""
    inputs = _frames(tmp_path / "frames")
    bad = inputs / "f04.png"
    with caplog.at_level(logging.INFO):
        summary, _ = predict(_predict_config(short_run, tmp_path, inputs))
    out = tmp_path / "pred"
    assert summary["images"] == 6
    assert sorted(p.stem for p in (out / "masks").glob("*.png")) == [
        f"f{k:02d}" for k in range(7) if k != 4
    ]
    with open(out / "targets.csv") as handle:
        assert next(csv.reader(handle))[:2] == ["image", "target"]
    assert list(summary["skipped"]) == [str(bad)] and "truncated" in summary["skipped"][str(bad)]
    lines = (out / "skipped.txt").read_text().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{bad}\t")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("skipping frame" in m and str(bad) in m for m in warnings)
    assert any("skipped or repaired 1 frame" in r.getMessage() for r in caplog.records)


def test_predict_with_ground_truth_skips_an_unreadable_mask(
    short_run: Path, tmp_path: Path
) -> None:
    """With gt=<masks>, a corrupt mask leaves its image out (not scored), listed in skipped.txt;
    the other images are written and scored."""
    inputs = _frames(tmp_path / "frames", count=3, corrupt=-1)
    masks = tmp_path / "gt"
    masks.mkdir()
    for k in range(3):
        mask = np.zeros((48, 48), np.uint8)
        mask[10:14, 10:14] = 255
        (masks / f"f{k:02d}.png").write_bytes(b"" if k == 1 else encode_png(mask))
    summary, _ = predict(_predict_config(short_run, tmp_path, inputs, f"gt={masks}"))
    out = tmp_path / "pred"
    assert summary["images"] == 2 and list(summary["skipped"]) == [str(masks / "f01.png")]
    assert "empty (0 bytes)" in (out / "skipped.txt").read_text()
    assert (out / "results.json").is_file() and 0.0 <= summary["test/IoU"] <= 1.0


def test_predict_on_error_stop_names_the_frame_and_the_switch(
    short_run: Path, tmp_path: Path
) -> None:
    """on_error=stop raises at the corrupt frame; the fix offered fits predict (no split file)."""
    inputs = _frames(tmp_path / "frames")
    with pytest.raises(ImageReadError) as info:
        predict(_predict_config(short_run, tmp_path, inputs, "on_error=stop"))
    message = str(info.value)
    assert str(inputs / "f04.png") in message and "on_error=skip" in message
    assert "split file" not in message


def test_predict_into_an_unwritable_folder_fails_up_front(
    short_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Permission denied on the output folder (simulated: also runs as root): one message naming
    the folder and the fix, before any frame is segmented; no file is written."""
    from irsam.utils import OutputWriteError, atomic

    inputs = _frames(tmp_path / "frames", corrupt=-1)
    out = tmp_path / "pred"
    real_mkstemp = tempfile.mkstemp

    def refusing(*args: object, dir: str | None = None, **kwargs: object) -> tuple[int, str]:
        if dir is not None and Path(dir).is_relative_to(out):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(dir))
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(atomic.tempfile, "mkstemp", refusing)
    with pytest.raises(OutputWriteError) as info:
        predict(_predict_config(short_run, tmp_path, inputs))
    message = str(info.value)
    assert f"prediction output folder {out}: permission denied" in message
    assert "output=<folder>" in message
    assert not [p for p in out.rglob("*") if p.is_file()]


def _entry_point(tmp_path: Path, script: str, *overrides: str) -> subprocess.CompletedProcess:
    """``python <script> <overrides>`` from ``tmp_path``, its runs under ``tmp_path/logs``."""
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / script), *overrides, f"paths.log_dir={tmp_path}/logs"],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_misspelt_trainer_key_is_one_line_with_the_right_key(tmp_path: Path) -> None:
    """train.py trainer.max_epoch=1: exit code 2 and one line naming trainer.max_epochs (Hydra
    would suggest +trainer.max_epoch=1, which fails inside the Trainer)."""
    result = _entry_point(tmp_path, "train.py", "trainer.max_epoch=1")
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: trainer.max_epoch is not")
    assert lines[0].endswith("did you mean trainer.max_epochs?")


def test_a_missing_checkpoint_is_one_line_and_verbose_shows_the_traceback(tmp_path: Path) -> None:
    """evaluate.py with a checkpoint that does not exist: one line, exit code 2, the traceback
    kept in the run's log file; verbose=true prints Hydra's traceback instead (exit code 1)."""
    missing = tmp_path / "nope.ckpt"
    result = _entry_point(tmp_path, "evaluate.py", f"ckpt_path={missing}")
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr == f"error: checkpoint file {missing} does not exist\n"
    (log_file,) = (tmp_path / "logs" / "evaluate" / "runs").glob("*/evaluate.log")
    assert "Traceback" in log_file.read_text() and "MissingFileError" in log_file.read_text()
    result = _entry_point(tmp_path, "evaluate.py", f"ckpt_path={missing}", "verbose=true")
    assert result.returncode == 1 and "Traceback" in result.stderr
