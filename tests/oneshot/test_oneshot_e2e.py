# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""End-to-end runs of ``oneshot.py`` on synthetic sequences with a tiny random SAM (CPU)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT
from hydra import compose, initialize_config_dir

from irsam.data.io import list_images, read_mask
from irsam.oneshot.synthetic_sequence import make_synthetic_sequence, write_synthetic_sequence
from irsam.tasks.oneshot import run_oneshot
from irsam.utils import ConfigError

TINY = [
    "backbone.encoder=debug",
    "backbone.allow_random_weights=true",
    "backbone.device=cpu",
    "backbone.encoder_size=128",
    "progress=false",
]


def test_cli_single_sequence_writes_masks_and_metrics(tmp_path):
    root = write_synthetic_sequence(
        make_synthetic_sequence(num_frames=6, height=64, width=64, seed=1), tmp_path / "seq"
    )
    out = tmp_path / "out"
    command = [
        sys.executable,
        str(PROJECT_ROOT / "oneshot.py"),
        f"sequence={root / 'frames'}",
        "reference=frame_0000",
        f"annotation={root / 'masks' / 'frame_0000.png'}",
        f"gt={root / 'masks'}",
        f"output={out}",
        f"hydra.run.dir={tmp_path / 'run'}",
        *TINY,
    ]
    result = subprocess.run(
        command, check=False, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    masks = list_images(out / "masks")
    assert [p.name for p in masks] == [p.name for p in list_images(root / "frames")]
    assert read_mask(masks[0]).shape == (64, 64) and len(list_images(out / "overlays")) == 6
    metrics = json.loads((out / "metrics.json").read_text())["sequences"]["frames"]
    assert metrics["scored_frames"] == 5 and set(metrics) >= {"IoU", "nIoU", "Pd", "Fa"}
    assert (out / "reference_state.pt").is_file() and (out / "metrics.csv").is_file()


def test_sequences_mode_macro_average_and_point_reference(tmp_path):
    for i, name in enumerate(["seq_a", "seq_b"]):
        seq = make_synthetic_sequence(num_frames=3, height=48, width=48, num_targets=1, seed=i)
        write_synthetic_sequence(seq, tmp_path / "tmp" / name)
        (tmp_path / "images").mkdir(exist_ok=True)
        (tmp_path / "tmp" / name / "frames").rename(tmp_path / "images" / name)
        (tmp_path / "masks").mkdir(exist_ok=True)
        (tmp_path / "tmp" / name / "masks").rename(tmp_path / "masks" / name)
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            config_name="oneshot",
            overrides=[
                f"sequences={tmp_path / 'images'}",
                f"gt={tmp_path / 'masks'}",
                "annotation_kind=point",
                f"output={tmp_path / 'out'}",
                "include_reference=true",
                "save_overlays=false",
                *TINY,
            ],
        )
    result = run_oneshot(cfg)
    assert set(result["sequences"]) == {"seq_a", "seq_b"} and result["fps"] > 0
    rows = list(csv.DictReader((tmp_path / "out" / "metrics.csv").open()))
    assert [r["sequence"] for r in rows] == ["seq_a", "seq_b", "macro"]
    assert rows[0]["scored_frames"] == "3"
    for key in ("IoU", "Pd", "Fa"):
        expected = (float(rows[0][key]) + float(rows[1][key])) / 2
        assert float(rows[2][key]) == pytest.approx(expected)
    assert len(list_images(tmp_path / "out" / "seq_b" / "masks")) == 3


def test_cli_with_an_irsam_checkpoint_trained_by_train_py(tmp_path):
    """encoder=irsam with its own prompt-free decoder: no SAM weights, one mask per frame."""
    from conftest import TINY_TRAIN_OVERRIDES, compose_config

    from irsam.tasks.train import train

    cfg = compose_config("train", tmp_path / "train", [*TINY_TRAIN_OVERRIDES, "test=false"])
    train(cfg)
    checkpoint = tmp_path / "train" / "checkpoints" / "last.ckpt"
    root = write_synthetic_sequence(
        make_synthetic_sequence(num_frames=4, height=64, width=64, seed=3), tmp_path / "seq"
    )
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            config_name="oneshot",
            overrides=[
                f"sequence={root / 'frames'}",
                f"gt={root / 'masks'}",
                f"output={tmp_path / 'out'}",
                "backbone.encoder=irsam",
                f"backbone.irsam_checkpoint={checkpoint}",
                "backbone.device=cpu",
                "progress=false",
            ],
        )
    run_oneshot(cfg)
    assert len(list_images(tmp_path / "out" / "masks")) == 4
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())["sequences"]["frames"]
    assert metrics["scored_frames"] == 3 and set(metrics) >= {"IoU", "Pd", "Fa"}


def fake_sirst_root(root: Path, count: int = 4, size: int = 80) -> Path:
    """A data root with NUAA-SIRST's layout (images/X.png, masks/X_pixels0.png), synthetic."""
    import numpy as np

    from irsam.data.io import write_png

    rng = np.random.default_rng(0)
    for i in range(count):
        image = np.clip(rng.normal(100, 10, (size, size)), 0, 255)
        mask = np.zeros((size, size), np.uint8)
        y, x = rng.integers(10, size - 10, 2)
        image[y - 1 : y + 2, x - 2 : x + 2] += 80
        mask[y - 1 : y + 2, x - 2 : x + 2] = 255
        write_png(root / "NUAA-SIRST" / "images" / f"Misc_{i}.png", image.astype(np.uint8))
        write_png(root / "NUAA-SIRST" / "masks" / f"Misc_{i}_pixels0.png", mask)
    return root


def test_real_background_benchmark_is_deterministic_with_exact_ground_truth(tmp_path):
    import numpy as np

    from irsam.oneshot.real_sequence import write_real_benchmark

    data = fake_sirst_root(tmp_path / "data")
    kwargs = {"num_sequences": 2, "num_frames": 11, "size": 48, "seed": 4}
    a = write_real_benchmark(data, tmp_path / "a", **kwargs)
    b = write_real_benchmark(data, tmp_path / "b", **kwargs)
    names = [p.name for p in list_images(a / "images" / "seq_00")]
    assert len(names) == 11 and sorted((a / "images").iterdir())[1].name == "seq_01"
    for seq in ("seq_00", "seq_01"):
        for name in names:
            for kind in ("images", "masks"):
                x = (a / kind / seq / name).read_bytes()
                assert x == (b / kind / seq / name).read_bytes()
        masks = [read_mask(a / "masks" / seq / n) for n in names]
        assert masks[0].any() and not masks[10].any()  # frame 10 is target-free
        assert all(m.any() for m in masks[1:10])
        assert len({int(np.argmax(m)) for m in masks[:10]}) > 1  # the target moves
    other = write_real_benchmark(data, tmp_path / "c", **{**kwargs, "seed": 5})
    assert (other / "images/seq_00" / names[3]).read_bytes() != (
        a / "images/seq_00" / names[3]
    ).read_bytes()


def test_real_background_benchmark_scored_by_oneshot_py(tmp_path):
    """The command of the README: generate the set, score it with sequences=... gt=..."""
    data = fake_sirst_root(tmp_path / "data")
    bench = tmp_path / "bench"
    command = (
        f"{sys.executable} -m irsam.tasks.synthetic_sequence --mode real --data-root {data} "
        f"--out {bench} --sequences 2 --frames 3 --size 48 && "
        f"{sys.executable} oneshot.py sequences={bench}/images gt={bench}/masks "
        f"output={tmp_path / 'out'} hydra.run.dir={tmp_path / 'run'} " + " ".join(TINY)
    )
    result = subprocess.run(
        command,
        check=False,
        shell=True,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = list(csv.DictReader((tmp_path / "out" / "metrics.csv").open()))
    assert [r["sequence"] for r in rows] == ["seq_00", "seq_01", "macro"]
    assert rows[0]["scored_frames"] == "2"


@pytest.mark.slow
def test_readme_commands_through_a_shell_point_box_and_a_corrupt_frame(tmp_path):
    """Point and box references typed as in the README, a non-image file and a corrupt frame
    in the folder: the run finishes, skips the frame and lists it."""
    root = write_synthetic_sequence(
        make_synthetic_sequence(num_frames=4, height=48, width=48, num_targets=1, seed=2),
        tmp_path / "seq",
    )
    (root / "frames" / "notes.txt").write_text("not a frame")
    (root / "frames" / "frame_0002.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    mask = read_mask(root / "masks" / "frame_0000.png")
    rows, cols = mask.nonzero()
    x, y = int(cols.mean()), int(rows.mean())
    base = (
        f"{sys.executable} oneshot.py sequence={root / 'frames'} reference=frame_0000 "
        f"gt={root / 'masks'} " + " ".join(TINY)
    )
    references = {
        "p": f"'point=[{x},{y}]'",  # the README form
        "b": f"annotation={x},{y}",  # bare, rewritten by oneshot.py
        "x": f"'box=[{x - 2},{y - 2},{x + 2},{y + 2}]'",
    }
    script = " && ".join(
        f"{base} {ref} output={tmp_path / out} hydra.run.dir={tmp_path / ('run_' + out)}"
        for out, ref in references.items()
    )
    result = subprocess.run(
        script,
        check=False,
        shell=True,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "unreadable frames skipped" in result.stderr + result.stdout
    for out in ("p", "b", "x"):
        metrics = json.loads((tmp_path / out / "metrics.json").read_text())["sequences"]["frames"]
        assert metrics["skipped_frames"] == ["frame_0002.png"] and metrics["scored_frames"] == 2
        assert [p.name for p in list_images(tmp_path / out / "masks")] == [
            "frame_0000.png",
            "frame_0001.png",
            "frame_0003.png",
        ]


def test_annotation_argv_rewrite_and_exclusive_keys(tmp_path):
    from irsam.tasks.oneshot import annotation_from_config, rewrite_annotation_argv

    assert rewrite_annotation_argv(["annotation=3,4", "annotation=1.5,2,5,6.25"]) == [
        "point=[3,4]",
        "box=[1.5,2,5,6.25]",
    ]
    assert rewrite_annotation_argv(["annotation=a.png,b.png", "x=1,2"]) == [
        "annotation=a.png,b.png",
        "x=1,2",
    ]
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="oneshot", overrides=["point=[3,4]", "box=[1,2,5,6]"])
        with pytest.raises(ValueError, match="only one of"):
            annotation_from_config(cfg)
        cfg = compose(config_name="oneshot", overrides=["box=[5,2,1,6]"])
        with pytest.raises(ValueError, match="x2 ≥ x1"):
            annotation_from_config(cfg)
        cfg = compose(config_name="oneshot", overrides=["point=[3]"])
        with pytest.raises(ValueError, match=r"\[x, y\]"):
            annotation_from_config(cfg)


def test_corrupt_frame_stops_the_run_with_on_error_stop(tmp_path):
    from irsam.data.io import ImageReadError

    root = write_synthetic_sequence(
        make_synthetic_sequence(num_frames=3, height=48, width=48, seed=1), tmp_path / "seq"
    )
    (root / "frames" / "frame_0001.png").write_bytes(b"garbage")
    overrides = [
        f"sequence={root / 'frames'}",
        f"gt={root / 'masks'}",
        f"output={tmp_path / 'out'}",
        "on_error=stop",
        *TINY,
    ]
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="oneshot", overrides=overrides)
    with pytest.raises(ImageReadError, match="frame_0001.png"):
        run_oneshot(cfg)


@pytest.mark.real_data
def test_real_background_benchmark_from_the_shared_datasets(tmp_path):
    """The named set's generator on NUAA-SIRST / NUDT-SIRST (tiny: 2 sequences x 3 frames)."""
    from conftest import shared_dataset

    from irsam.oneshot.real_sequence import write_real_benchmark

    data = shared_dataset("NUAA-SIRST").parent
    out = write_real_benchmark(data, tmp_path / "bench", num_sequences=2, num_frames=3, size=64)
    for seq in ("seq_00", "seq_01"):
        masks = [read_mask(p) for p in list_images(out / "masks" / seq)]
        assert len(masks) == 3 and masks[0].shape == (64, 64) and masks[0].any()


def test_coordinate_forms_a_shell_can_deliver(tmp_path):
    """point=x,y and box=... without brackets, and point=[x, y] split in two by the shell, become
    the list Hydra reads; a point that is no list (a shell matched point=[..] to a file named
    point=1) is refused with the quoting hint."""
    from irsam.tasks.oneshot import annotation_from_config, rewrite_annotation_argv

    assert rewrite_annotation_argv(
        ["point=120,64", "box=1,2,5,6", "annotation=[3,4]", "point=[120,", "64]", "gt=g"]
    ) == ["point=[120,64]", "box=[1,2,5,6]", "point=[3,4]", "point=[120,64]", "gt=g"]
    assert rewrite_annotation_argv(["box=[1,", "2,", "5,", "6]", "x=1"]) == ["box=[1,2,5,6]", "x=1"]
    assert rewrite_annotation_argv(["point=1,2,3"]) == ["point=[1,2,3]"]
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        for override in ("point=1", "point=[1,2,3]", "box=[1,2]", "point=[a,b]"):
            cfg = compose(config_name="oneshot", overrides=[override])
            with pytest.raises(ConfigError, match=r"quote it as printed in docs/oneshot.md"):
                annotation_from_config(cfg)


@pytest.mark.slow
def test_point_and_box_through_bash_quoted_unquoted_and_a_matching_file(tmp_path):
    """Through a real bash: the README's quoted 'point=[x,y]', the unquoted point=[x,y] and
    box=[x1,y1,x2,y2], and point=[x, y] with a space all run; with a file named point=1 in the
    folder, bash turns the unquoted point=[1,2] into point=1: one line saying to quote it, exit
    code 2, before any model is built."""
    root = write_synthetic_sequence(
        make_synthetic_sequence(num_frames=3, height=48, width=48, num_targets=1, seed=2),
        tmp_path / "seq",
    )
    mask = read_mask(root / "masks" / "frame_0000.png")
    rows, cols = mask.nonzero()
    x, y = int(cols.mean()), int(rows.mean())
    base = (
        f"{sys.executable} {PROJECT_ROOT / 'oneshot.py'} sequence={root / 'frames'} "
        f"reference=frame_0000 gt={root / 'masks'} " + " ".join(TINY)
    )
    references = {
        "q": f"'point=[{x},{y}]'",
        "u": f"point=[{x},{y}]",
        "s": f"point=[{x}, {y}]",
        "b": f"box=[{x - 2},{y - 2},{x + 2},{y + 2}]",
    }
    script = " && ".join(
        f"{base} {ref} output={tmp_path / out} hydra.run.dir={tmp_path / ('run_' + out)}"
        for out, ref in references.items()
    )
    result = subprocess.run(
        ["bash", "-c", script],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for out in references:
        metrics = json.loads((tmp_path / out / "metrics.json").read_text())["sequences"]["frames"]
        assert metrics["scored_frames"] == 2
    (tmp_path / "point=1").write_text("a file bash matches to point=[1,2]")
    unquoted = f"{base} point=[1,2] output={tmp_path / 'g'} hydra.run.dir={tmp_path / 'r'}"
    result = subprocess.run(
        ["bash", "-c", unquoted],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: point=1 must be [x, y]")
    assert "'point=[x,y]'" in lines[0]
