# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Frame streams (irsam.data.streams), the nearest-centroid tracker and the overlay video
writer (irsam.outputs.tracking)."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
import torch
from PIL import Image
from torch.utils.data import DataLoader

from irsam.data.io import ImageReadError, write_png
from irsam.data.streams import (
    FolderFrames,
    NpyFrames,
    TiffFrames,
    VideoFrames,
    open_stream,
)
from irsam.outputs.tracking import (
    OverlayVideoWriter,
    TrackerState,
    assign_track_ids,
    draw_track_ids,
    update_tracks,
    write_overlay_video,
)

S = 32  # loader size


def _frames(count: int, height: int = 40, width: int = 48) -> list[np.ndarray]:
    """Grey RGB uint8 frames with a bright square moving right."""
    frames = []
    for index in range(count):
        frame = np.full((height, width, 3), 30, np.uint8)
        frame[10:16, 5 + 3 * index : 11 + 3 * index] = 220
        frames.append(frame)
    return frames


def _check_items(items: list[dict], count: int, size: tuple[int, int], path: Path) -> None:
    assert [item["frame_index"] for item in items] == list(range(count))
    for item in items:
        assert item["image"].shape == (3, S, S) and item["image"].dtype == torch.float32
        assert 0.0 <= float(item["image"].min()) and float(item["image"].max()) <= 255.0
        assert tuple(item["orig_size"].tolist()) == size
        assert tuple(item["valid_size"].tolist()) == (S, S)
        assert item["path"] == str(path)
    assert len({item["name"] for item in items}) == count


def test_generated_video_gives_every_frame(tmp_path: Path) -> None:
    video = tmp_path / "clip.avi"
    assert write_overlay_video(_frames(7), video, fps=10) == 7
    stream = open_stream(video, S)
    assert isinstance(stream, VideoFrames) and stream.fps == pytest.approx(10)
    items = list(stream)
    _check_items(items, 7, (40, 48), video)
    assert items[3]["name"] == "clip_000003"
    # the moving square is found in the decoded frame (MJPG is lossy: compare coarsely)
    frame = items[0]["image"].permute(1, 2, 0).numpy()
    assert frame[:, :, 0].max() > 150 and np.median(frame) < 60
    batches = list(DataLoader(stream, batch_size=3))
    assert [b["image"].shape[0] for b in batches] == [3, 3, 1]
    assert batches[1]["frame_index"].tolist() == [3, 4, 5]


def test_sixteen_bit_npy_stack_is_memory_mapped(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    stack = rng.integers(0, 2**14, size=(6, 20, 24), dtype=np.uint16)  # 14-bit counts
    stack[2, 5, 5] = 16383
    path = tmp_path / "sensor.npy"
    np.save(path, stack)
    stream = open_stream(path, S, "bit_depth")
    assert isinstance(stream, NpyFrames) and stream.frame_count() == 6
    items = list(stream)
    _check_items(items, 6, (20, 24), path)
    # bit_depth: counts / 65535 * 255, the same scale in every frame
    raw = stream.frames()
    _, _, third = next(x for x in raw if x[0] == 2)
    assert third[5, 5, 0] == pytest.approx(16383 / 65535 * 255, rel=1e-5)


def test_multipage_tiff_and_folder(tmp_path: Path) -> None:
    pages = np.stack([np.full((18, 22), 1000 * (k + 1), np.uint16) for k in range(3)])
    pages[:, 3, 4] = 60000
    tif = tmp_path / "seq.tif"
    tifffile.imwrite(tif, pages, photometric="minisblack")  # 3 grey pages, not planar RGB
    stream = open_stream(tif, S)
    assert isinstance(stream, TiffFrames) and stream.frame_count() == 3
    _check_items(list(stream), 3, (18, 22), tif)
    folder = tmp_path / "frames"
    for index, frame in enumerate(_frames(4, 30, 26)):
        write_png(folder / f"f{index:03d}.png", frame)
    stream = open_stream(folder, S)
    assert isinstance(stream, FolderFrames) and stream.frame_count() == 4
    items = list(stream)
    _check_items(items, 4, (30, 26), folder)
    assert [item["name"] for item in items] == ["f000", "f001", "f002", "f003"]
    single = list(open_stream(folder / "f002.png", S))
    assert len(single) == 1 and single[0]["name"] == "f002"


class CountingFrames(NpyFrames):
    """An .npy stream that appends the index of every frame it decodes to a log file (shared by
    DataLoader worker processes)."""

    def __init__(self, path: Path, log_file: Path) -> None:
        super().__init__(path, S)
        self.log_file = log_file

    def frames(self):
        for index, name, image in super().frames():
            with open(self.log_file, "a") as handle:
                handle.write(f"{index}\n")
            yield index, name, image


@pytest.mark.parametrize("batch_size", [None, 5])
def test_workers_deliver_frames_in_order_each_decoded_once(
    tmp_path: Path, batch_size: int | None
) -> None:
    """With num_workers=2 the frames arrive in frame order as delivered (no sorting), and each
    frame is decoded exactly once across the worker processes."""
    path = tmp_path / "s.npy"
    np.save(path, np.arange(12, dtype=np.uint8)[:, None, None].repeat(16, 1).repeat(16, 2))
    log_file = tmp_path / "decoded.txt"
    loader = DataLoader(
        CountingFrames(path, log_file), batch_size=batch_size, num_workers=2, collate_fn=None
    )
    delivered: list[int] = []
    for item in loader:
        index = item["frame_index"]
        delivered.extend([int(index)] if batch_size is None else index.tolist())
    assert delivered == list(range(12))
    assert sorted(int(line) for line in log_file.read_text().split()) == list(range(12))


def _cut(path: Path, keep: float) -> Path:
    """A copy of ``path`` holding only its first ``keep`` fraction of bytes."""
    data = path.read_bytes()
    cut = path.with_name(f"cut_{path.name}")
    cut.write_bytes(data[: int(len(data) * keep)])
    return cut


def test_truncated_video_reports_its_missing_frames(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A truncated .avi decodes fewer frames than its container states: skip lists every missing
    frame (with one warning), stop raises naming the file after the frames that did decode."""
    video = tmp_path / "clip.avi"
    write_overlay_video(_frames(40, 24, 32), video, fps=10)
    cut = _cut(video, 0.55)
    stream = open_stream(cut, S)
    assert stream.frame_count() == 40
    with caplog.at_level("WARNING", logger="irsam.data.streams"):
        items = list(stream)
    decoded = len(items)
    assert 0 < decoded < 40
    missing = stream.missing({item["name"] for item in items})
    assert list(missing) == [f"{cut} frame {i}" for i in range(decoded, 40)]
    assert f"ends after {decoded} of the 40 frames" in next(iter(missing.values()))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and f"{cut} frame {decoded} to 39" in warnings[0]
    with pytest.raises(ImageReadError, match=f"{cut} frame {decoded} to 39: not decoded"):
        list(open_stream(cut, S, on_error="stop"))


def test_truncated_tiff_and_npy_report_their_missing_frames(tmp_path: Path) -> None:
    tif = tmp_path / "seq.tif"
    pages = [np.full((18, 22), 1000 * (k + 1), np.uint16) for k in range(5)]
    tifffile.imwrite(tif, np.stack(pages))
    cut = _cut(tif, 0.6)
    stream = open_stream(cut, S)
    assert stream.frame_count() == 5
    items = list(stream)
    written = {item["name"] for item in items}
    assert 0 < len(items) < 5
    assert list(stream.missing(written)) == [f"{cut} frame {i}" for i in range(len(items), 5)]
    npy = tmp_path / "stack.npy"
    np.save(npy, np.zeros((6, 8, 8), np.uint16))
    cut = _cut(npy, 0.7)
    stream = open_stream(cut, S, "bit_depth")
    items = list(stream)
    assert [item["frame_index"] for item in items] == [0, 1, 2]
    missing = stream.missing({item["name"] for item in items})
    assert list(missing) == [f"{cut} frame {i}" for i in (3, 4, 5)]
    assert "holds 3 of the 6 frames its header states" in missing[f"{cut} frame 3"]
    with pytest.raises(ImageReadError, match="truncated file"):
        list(open_stream(cut, S, on_error="stop"))


def test_nan_pixels_are_filled_and_reported(tmp_path: Path) -> None:
    """NaN/Inf pixels are replaced by the frame's finite minimum (listed as repaired); a frame
    without a finite pixel is skipped; on_error=stop raises at the first such frame."""
    stack = np.stack([np.linspace(0.0, 1.0, 64, dtype=np.float32).reshape(8, 8)] * 3)
    stack[1, 0, 0], stack[1, 7, 7] = np.nan, np.inf
    stack[2] = np.nan
    path = tmp_path / "float.npy"
    np.save(path, stack)
    stream = open_stream(path, S, "minmax")
    frames = list(stream.frames())
    assert [index for index, _, _ in frames] == [0, 1]
    repaired = frames[1][2]
    assert np.isfinite(repaired).all()
    assert repaired[0, 0, 0] == pytest.approx(repaired[..., 0].min())
    missing = stream.missing({name for _, name, _ in frames})
    assert missing == {
        f"{path} frame 1": "2 NaN/Inf pixel(s) of 64 replaced by the frame's finite minimum",
        f"{path} frame 2": "every pixel is NaN/Inf",
    }
    with pytest.raises(ImageReadError, match=f"{path} frame 1: 2 NaN/Inf"):
        list(open_stream(path, S, on_error="stop"))


def test_folder_with_two_frames_of_one_name_is_refused(tmp_path: Path) -> None:
    """a.png and a.jpg would write the same masks/a.png: refused, naming both files."""
    write_png(tmp_path / "a.png", _frames(1)[0])
    Image.fromarray(_frames(1)[0]).save(tmp_path / "a.jpg")
    with pytest.raises(ImageReadError, match="share the name 'a'") as info:
        open_stream(tmp_path, S)
    assert str(tmp_path / "a.png") in str(info.value) and str(tmp_path / "a.jpg") in str(info.value)


def test_bad_inputs_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.avi"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00AVI garbage" * 50)
    with pytest.raises(ImageReadError, match="broken.avi: unreadable video"):
        open_stream(broken, S)
    wrong = tmp_path / "counts.npy"
    np.save(wrong, np.zeros((2, 8, 8), np.int64))
    with pytest.raises(ImageReadError, match="counts.npy: pixel type int64"):
        open_stream(wrong, S)
    flat = tmp_path / "flat.npy"
    np.save(flat, np.zeros((8, 8), np.uint16))
    with pytest.raises(ImageReadError, match=r"flat.npy: stack of shape \(8, 8\)"):
        open_stream(flat, S)
    tif = tmp_path / "complex.tif"
    tifffile.imwrite(tif, np.zeros((2, 8, 8), np.int32))
    with pytest.raises(ImageReadError, match="complex.tif: pixel type int32"):
        open_stream(tif, S)
    with pytest.raises(ImageReadError, match="notes.txt: unknown input kind"):
        open_stream(tmp_path / "notes.txt", S)
    with pytest.raises(ImageReadError, match="missing.mp4: file not found"):
        open_stream(tmp_path / "missing.mp4", S)


def test_tracker_nearest_centroid_within_radius() -> None:
    frames = [
        np.array([[10.0, 10.0], [50.0, 50.0]]),  # two targets
        np.array([[52.0, 51.0], [12.0, 10.0]]),  # both move a little (order swapped)
        np.array([[14.0, 10.0]]),  # target 2 missed
        np.array([[16.0, 10.0], [54.0, 52.0], [90.0, 5.0]]),  # 2 back after a gap; a new one
    ]
    assert assign_track_ids(frames, radius=5.0, max_gap=1) == [[1, 2], [2, 1], [1], [1, 2, 3]]
    # without a gap allowance, target 2 gets a new id when it comes back
    assert assign_track_ids(frames, radius=5.0, max_gap=0) == [[1, 2], [2, 1], [1], [1, 3, 4]]
    # a jump beyond the radius starts a new track; exactly the radius still matches
    assert assign_track_ids([np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]])], radius=5.0) == [
        [1],
        [1],
    ]
    assert assign_track_ids([np.array([[0.0, 0.0]]), np.array([[3.0, 4.1]])], radius=5.0) == [
        [1],
        [2],
    ]


def test_tracker_greedy_prefers_the_closest_pair() -> None:
    state, ids = update_tracks(TrackerState(), 0, np.array([[0.0, 0.0], [6.0, 0.0]]), radius=10)
    assert ids == [1, 2]
    # detection at x=4 is 2 px from track 2 and 4 px from track 1: track 2 takes it first,
    # the other detection (x=-1) goes to track 1
    state, ids = update_tracks(state, 1, np.array([[-1.0, 0.0], [4.0, 0.0]]), radius=10)
    assert ids == [1, 2]
    state, ids = update_tracks(state, 2, np.zeros((0, 2)), radius=10)
    assert ids == [] and state.next_id == 3


def test_overlay_video_writer_and_ids(tmp_path: Path) -> None:
    frames = [draw_track_ids(f, np.array([[8.0, 12.0]]), [7]) for f in _frames(4)]
    assert not np.array_equal(frames[0], _frames(1)[0])
    path = tmp_path / "out" / "overlay.avi"
    with OverlayVideoWriter(path, fps=5) as video:
        for frame in frames:
            video.write(frame)
        with pytest.raises(ValueError, match="overlay.avi: frame 4 is 10×10"):
            video.write(np.zeros((10, 10, 3), np.uint8))
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    assert count == 4
