# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""predict.py on a truncated video: the missing frames reported, frames in order, and an output
folder that is never mixed with an earlier run's files."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_TRAIN_OVERRIDES, compose_config

from irsam.data.io import ImageReadError
from irsam.outputs.tracking import write_overlay_video
from irsam.tasks.predict import predict
from irsam.tasks.train import train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """``last.ckpt`` of a 1-epoch tiny synthetic run."""
    run = tmp_path_factory.mktemp("run")
    overrides = [*TINY_TRAIN_OVERRIDES, "trainer.max_epochs=1", "test=false"]
    train(compose_config("train", run, overrides))
    return run / "checkpoints" / "last.ckpt"


def _truncated_video(folder: Path) -> Path:
    """A 40-frame MJPG .avi cut after about half of its bytes."""
    frames = []
    for index in range(40):
        frame = np.full((24, 32, 3), 30, np.uint8)
        frame[8:12, index % 28 : index % 28 + 4] = 220
        frames.append(frame)
    video = folder / "clip.avi"
    write_overlay_video(frames, video, fps=10)
    data = video.read_bytes()
    video.write_bytes(data[: int(len(data) * 0.55)])
    return video


def test_truncated_video_and_reused_output_folder(
    checkpoint: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    video = _truncated_video(tmp_path)
    out = tmp_path / "pred"

    def config(*extra: str):
        return compose_config(
            "predict",
            tmp_path / "predict_run",
            [
                f"ckpt_path={checkpoint}",
                f"input={video}",
                f"output={out}",
                "trainer=cpu",
                "extras.print_config=false",
                "trainer.enable_progress_bar=false",
                "batch_size=4",
                "num_workers=2",
                *extra,
            ],
        )

    with caplog.at_level(logging.INFO):
        summary, _ = predict(config())
    masks = sorted(p.stem for p in (out / "masks").glob("*.png"))
    decoded = len(masks)
    assert 0 < decoded < 40 and summary["images"] == decoded
    assert masks == [f"clip_{i:06d}" for i in range(decoded)]
    skipped = (out / "skipped.txt").read_text().splitlines()
    assert [line.split("\t")[0] for line in skipped] == [
        f"{video} frame {i}" for i in range(decoded, 40)
    ]
    assert f"ends after {decoded} of the 40 frames" in skipped[0]
    assert any(
        f"Wrote {decoded} masks" in r.getMessage()
        and f"skipped or repaired {40 - decoded} frame(s)" in r.getMessage()
        for r in caplog.records
    )
    with open(out / "targets.csv") as handle:
        frames = [int(row["frame"]) for row in csv.DictReader(handle)]
    assert frames == sorted(frames)

    with pytest.raises(FileExistsError, match="overwrite=true"):
        predict(config())
    (out / "masks" / "clip_000000.png").rename(out / "masks" / "stale.png")
    summary, _ = predict(config("overwrite=true"))
    assert not (out / "masks" / "stale.png").exists()
    assert summary["images"] == len(list((out / "masks").glob("*.png"))) == decoded
    with pytest.raises(ImageReadError, match="not decoded"):
        predict(config("overwrite=true", "on_error=stop"))
