# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Documentation is executable: every shell command in the ``bash`` code blocks of the
documents in :data:`DOCUMENTS` (README.md, data/README.md and the docs pages that hold commands),
and every ``python`` code block of them, runs here, as a subprocess, with tiny overrides appended
(one batch, small images, temporary output folders) and placeholders replaced by files the tests
make: a checkpoint trained here, a random ``mobile_sam.pt``-layout file, a generated IRSTD-1k
tree, the real NUAA-SIRST and NUDT-SIRST folders of ``../shared/data``.

A command is skipped, with its reason, only when it needs what this machine cannot have (a GPU,
several nodes, multi-GB SAM ViT weights) or when it is an install step or this very test suite (CI
runs those lines itself). A command that no rule below knows fails the test, so a new documented
command cannot go untested.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import PROJECT_ROOT, SHARED_DATA

pytestmark = pytest.mark.slow

DOCUMENTS = (
    "README.md",
    "data/README.md",
    "docs/training.md",
    "docs/model.md",
    "docs/sam2.md",
    "docs/peft-export.md",
    "docs/oneshot.md",
    "docs/benchmarks.md",
    "docs/python-api.md",
    "docs/studies.md",
)
"""Documents whose commands run, in this order (a command may read what an earlier one wrote)."""
TIMEOUT_S = 600
CONSOLE_SCRIPTS = frozenset(
    script.name
    for script in entry_points(group="console_scripts")
    if script.value.startswith("irsam.")
)
"""The installed irsam commands (``[project.scripts]``), run from the environment's bin folder."""


@dataclass(frozen=True)
class Command:
    """One shell command of a documentation code block.

    Arguments:
      source (str): ``<file>:<line>`` of its first line.
      text (str): the command with continuation lines joined and comments removed.
    """

    source: str
    text: str


def readme_commands() -> list[Command]:
    """Every command of the ``bash``/``sh``/``shell`` code blocks of :data:`DOCUMENTS`; ``&&``
    chains are split into their commands."""
    commands: list[Command] = []
    for document in DOCUMENTS:
        lines = (PROJECT_ROOT / document).read_text(encoding="utf-8").splitlines()
        in_block, pending, start = False, "", 0
        for number, line in enumerate(lines, start=1):
            if line.startswith("```"):
                in_block = not in_block and line.strip("`").strip() in ("bash", "sh", "shell")
                continue
            if not in_block:
                continue
            code = re.sub(r"(^|\s)#.*$", "", line).rstrip()
            if not pending:
                start = number
            if code.endswith("\\"):
                pending += code[:-1] + " "
                continue
            text = (pending + code).strip()
            pending = ""
            for part in (p.strip() for p in text.split("&&")):
                if part:
                    commands.append(Command(f"{document}:{start}", part))
    return commands


# ------------------------------------------------------------------------ files the commands use


def _write_pairs(images: Path, masks: Path, count: int, split: str, size: int = 48) -> list[str]:
    """``count`` synthetic image/mask pairs (PNG) named ``f0``, ``f1``, ..., each with a target
    (so any of them can be a one-shot reference)."""
    from irsam.data.io import encode_png
    from irsam.data.synthetic import render_synthetic_sample

    images.mkdir(parents=True, exist_ok=True)
    masks.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    index = 0
    while len(names) < count:
        image, mask = render_synthetic_sample(0, split, index, size, size)
        index += 1
        if not mask.any():
            continue
        name = f"f{len(names)}"
        (images / f"{name}.png").write_bytes(encode_png(image))
        (masks / f"{name}.png").write_bytes(encode_png(mask * 255))
        names.append(name)
    return names


def _run_python(args: list[str], cwd: Path) -> None:
    result = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, f"{args}:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> dict[str, Path]:
    """Files that stand in for the documents' placeholders, and one working folder shared by all
    commands in document order (a command may read what an earlier one wrote, as a user's would)."""
    import cv2

    from irsam.models import build_prompt_sam

    root = tmp_path_factory.mktemp("readme")
    sam = build_prompt_sam(encoder="tiny", encoder_size=64)
    state = sam.state_dict()
    state["image_encoder.norm_head.weight"] = torch.ones(320)
    state["image_encoder.norm_head.bias"] = torch.zeros(320)
    state["image_encoder.head.weight"] = torch.zeros(1000, 320)
    state["image_encoder.head.bias"] = torch.zeros(1000)
    torch.save(state, root / "mobile_sam.pt")

    irstd = root / "IRSTD-1k"
    names = _write_pairs(irstd / "IRSTD1k_Img", irstd / "IRSTD1k_Label", 8, "train")
    (irstd / "trainval.txt").write_text("\n".join(names[:6]))
    (irstd / "test.txt").write_text("\n".join(names[6:]))
    my_set = root / "my_set"
    names = _write_pairs(my_set / "images", my_set / "masks", 8, "train")
    (my_set / "lists").mkdir()
    (my_set / "lists" / "train.txt").write_text("\n".join(names[:6]))
    (my_set / "lists" / "test.txt").write_text("\n".join(names[6:]))
    _write_pairs(root / "frames", root / "masks", 3, "test", size=160)  # README clicks fit
    _write_pairs(root / "sequences" / "s1", root / "sequence_masks" / "s1", 3, "val")

    from PIL import Image

    frames = [
        np.asarray(Image.open(root / "frames" / f"f{i}.png").convert("RGB")) for i in range(3)
    ]
    video = cv2.VideoWriter(
        str(root / "flight.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 160)
    )
    for frame in frames:
        video.write(frame[..., ::-1].copy())
    video.release()
    np.save(root / "sensor_stack.npy", np.stack([f[..., 0] for f in frames]).astype(np.uint16) * 64)
    np.save(root / "sensor_frame.npy", frames[0][..., 0].astype(np.uint16) * 64)

    run = root / "trained"
    _run_python(["train.py", f"hydra.run.dir={run}", *TINY_TRAIN, "test=false"], PROJECT_ROOT)
    checkpoint = run / "checkpoints" / "last.ckpt"
    entries = {
        "root": root,
        "cwd": root / "cwd",
        "weights": root / "mobile_sam.pt",
        "irstd1k": irstd,
        "my_set": my_set,
        "frames": root / "frames",
        "frame": Path("f0"),
        "mask": root / "masks" / "f0.png",
        "masks": root / "masks",
        "sequences": root / "sequences",
        "sequence_masks": root / "sequence_masks",
        "video": root / "flight.avi",
        "stack": root / "sensor_stack.npy",
        "frame_array": root / "sensor_frame.npy",
        "checkpoint": checkpoint,
    }
    entries["cwd"].mkdir()
    return entries


TINY_TRAIN = [
    "trainer.accelerator=cpu",
    "trainer.devices=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.num_sanity_val_steps=0",
    "trainer.max_epochs=1",
    "~logger",
    "extras.print_config=false",
    "dataset.loader_size=64",
    "dataset.synthetic.native_size=64",
    "dataset.synthetic.num_train=8",
    "dataset.synthetic.num_val=4",
    "dataset.synthetic.num_test=4",
    "dataset.batch_size=4",
    "dataset.eval_batch_size=4",
    "model.net.encoder_size=64",
]
"""Overrides that shrink ``python train.py`` on the synthetic default to seconds."""

REAL_DATA_TRAIN = [
    "trainer.accelerator=cpu",
    "trainer.devices=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.fast_dev_run=true",
    "~logger",
    "extras.print_config=false",
    "dataset.loader_size=64",
    "dataset.batch_size=2",
    "dataset.eval_batch_size=2",
    "dataset.num_workers=0",
    "dataset.persistent_workers=false",
    "model.net.encoder_size=64",
]
"""Overrides for training commands on a dataset folder: one batch of each loop at 64²."""

EVALUATION = [
    "trainer.accelerator=cpu",
    "trainer.devices=1",
    "trainer.enable_progress_bar=false",
    "trainer.limit_test_batches=2",
    "extras.print_config=false",
    "dataset.num_workers=0",
    "dataset.persistent_workers=false",
    "dataset.eval_batch_size=2",
]
"""Overrides for ``evaluate.py``: two test batches."""

SYNTHETIC_EVALUATION = ["dataset.synthetic.native_size=64", "dataset.synthetic.num_test=4"]
"""Added for ``evaluate.py`` on the synthetic default (no ``dataset=`` given)."""

ONESHOT = ["backbone.encoder_size=64", "backbone.device=cpu", "progress=false"]
"""Overrides for ``oneshot.py``: a 64² encoder input (the algorithm is size-independent)."""

PLACEHOLDERS = (
    (r"^/data/NUDT-SIRST$", "shared:NUDT-SIRST"),
    (r"^/data/NUAA-SIRST$", "shared:NUAA-SIRST"),
    (r"^/data$|^\$IRSAM_SHARED_DATA$", "shared:"),
    (r"^/data/IRSTD-1k$", "irstd1k"),
    (r"^/data/my_set$", "my_set"),
    (r"^/weights/mobile_sam\.pt$", "weights"),
    (r"\.ckpt$|^<file\.ckpt>$", "checkpoint"),
    (r"^<image\|folder>$|^frames/?$|^<frames/?>$", "frames"),
    (r"^<frame-name>$", "frame"),
    (r"^<mask\.png>$", "mask"),
    (r"^masks/?$", "masks"),
    (r"^<root/?>$", "sequences"),
    (r"^<masks-root/?>$", "sequence_masks"),
    (r"^flight\.mp4$", "video"),
    (r"^sensor_stack\.npy$", "stack"),
)
"""(value pattern, workspace entry) replacing documentation placeholders in arguments."""

SHRINK = {"--frames": "3", "--size": "64", "--sequences": "1"}
"""Option values of ``irsam-synthetic-sequence`` replaced by tiny ones."""


def _substitute(value: str, workspace: dict[str, Path]) -> str:
    """The file a documentation placeholder value stands for (or the value unchanged)."""
    if re.search(r"^/weights/(sam_vit_|sam2)", value):
        pytest.skip(f"needs SAM weights ({value}), which this machine cannot have")
    for pattern, entry in PLACEHOLDERS:
        if re.search(pattern, value):
            if entry.startswith("shared:"):
                folder = SHARED_DATA / entry.split(":", 1)[1]
                if not folder.is_dir():
                    pytest.skip(f"needs the real data in {folder} (absent here)")
                return str(folder)
            return str(workspace[entry])
    return value


def _first_values(override: str) -> str:
    """A swept override cut to its first value (``seed`` to its first two), so that a
    documented sweep runs one or two jobs here."""
    key, sep, value = override.partition("=")
    if not sep or key.startswith(("-", "hydra.")) or value.startswith(("[", "{")):
        return override
    values = value.split(",")
    return f"{key}={','.join(values[: 2 if key == 'seed' else 1])}"


def _is_optuna(override: str) -> bool:
    """Whether an ``hparams_search=<preset>`` override picks an Optuna preset."""
    key, _, value = override.partition("=")
    preset = PROJECT_ROOT / "conf" / "hparams_search" / f"{value}.yaml"
    return key == "hparams_search" and preset.is_file() and "optuna" in preset.read_text()


def _unless_given(args: list[str], defaults: list[str]) -> list[str]:
    """``defaults`` (``key=value`` overrides) without the keys the command already sets."""
    given = {a.partition("=")[0] for a in args}
    return [d for d in defaults if d.partition("=")[0] not in given]


def adapt(command: Command, workspace: dict[str, Path], index: int) -> tuple[list[str], Path]:
    """The argv that runs ``command`` here (tiny settings), and its working folder; or a skip.

    Arguments:
      command (Command): the documented command.
      workspace (dict): files from the ``workspace`` fixture.
      index (int): the command's position, naming its run folder.
    Returns:
      tuple[list[str], Path]: the argv (``python`` replaced by this interpreter) and the cwd.
    """
    words = shlex.split(command.text)
    while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):  # VAR=value prefixes
        words = words[1:]
    head, cwd = words[0], workspace["cwd"]
    if head in ("pip", ".", "source") or words[:3] == ["python", "-m", "venv"]:
        pytest.skip("an install step: .ci/run runs the README's install lines itself")
    if words[:3] == ["python", "-m", "pytest"]:
        pytest.skip("the test suite itself (what CI runs)")
    if head in ("torchrun", "srun", "sbatch", "trtexec"):
        pytest.skip(f"{head} needs GPUs / TensorRT, which this machine cannot have")
    if any(w in ("trainer=gpu", "trainer=ddp") for w in words):
        pytest.skip("needs a CUDA GPU (trainer=gpu / trainer=ddp)")
    if head == "git" and words[1:2] == ["clone"]:
        pytest.skip("downloads a repository (the authors' code for the side-by-side benchmark)")
    if any(w == "--authors-code" for w in words):
        pytest.skip("needs a local clone of the authors' code (not part of irsam)")
    if words[:2] == ["bash", "benchmarks/prepare_gpu.sh"]:
        pytest.skip(
            "prepares the GPU benchmark: downloads wheels, copies NUDT-SIRST into the checkout"
        )
    if words[:3] == ["bash", "benchmarks/gpu.sh", "--smoke"]:
        pytest.skip("run by tests/test_benchmarks.py::test_gpu_script_smoke_mode_runs_every_step")
    if "cuda" in words or any(w.startswith("--device=cuda") for w in words):
        pytest.skip("needs a CUDA GPU (--device cuda)")
    if "hydra/launcher=local" in words:
        pytest.skip(
            "run by tests/runs/test_cluster_launcher.py::test_submitit_local_sweep_runs_two_jobs"
        )
    if "hydra/launcher=slurm" in words:
        pytest.skip("needs a SLURM cluster (hydra/launcher=slurm)")
    if head == "ruff":  # the environment's ruff, also when its bin folder is not on PATH
        return [str(Path(sys.executable).parent / head), *words[1:]], PROJECT_ROOT
    args: list[str] = []
    for position, word in enumerate(words[1:], start=1):
        key, sep, value = word.partition("=")
        if sep and not key.startswith("-"):
            args.append(f"{key}={_substitute(value, workspace)}")
        elif words[position - 1] in SHRINK:
            args.append(SHRINK[words[position - 1]])
        elif "*" in word:
            args.extend(sorted(str(p) for p in cwd.glob(word)) or [word])
        else:
            args.append(_substitute(word, workspace))
    if head in CONSOLE_SCRIPTS:
        return [str(Path(sys.executable).parent / head), *args], cwd
    if head != "python":
        raise AssertionError(f"{command.source}: no rule for {head!r} in {__file__}; add one")
    if args[0] == "-c":
        return [sys.executable, *args], cwd
    script, args = args[0], args[1:]
    argv = [sys.executable, str(PROJECT_ROOT / script)]
    stem = Path(script).stem
    paths = [f"paths.log_dir={cwd / 'logs'}"]
    run_dir = [f"hydra.run.dir={cwd / 'logs' / stem / 'runs' / str(index)}"]
    if script.startswith("benchmarks/"):
        return argv + args, cwd
    if stem == "train":
        multirun = "-m" in args or any(a.startswith("hparams_search=") for a in args)
        real = any(a.startswith(("dataset.root=", "paths.data_dir=")) for a in args)
        tiny = REAL_DATA_TRAIN if real else TINY_TRAIN
        if multirun:
            args = [_first_values(a) for a in args]
            tiny = [t for t in tiny if t != "trainer.fast_dev_run=true"] + [
                "trainer.limit_train_batches=1",
                "trainer.limit_val_batches=1",
                "trainer.limit_test_batches=1",
                "trainer.val_check_interval=1",
                "trainer.max_epochs=1",
            ]
            if any(_is_optuna(a) for a in args):
                tiny += ["hydra.sweeper.n_trials=2", "hydra.sweeper.sampler.n_startup_trials=2"]
            sweep = [f"hydra.sweep.dir={cwd / 'logs' / stem / 'multiruns' / str(index)}"]
            return argv + args + tiny + paths + _unless_given(args, sweep), cwd
        return argv + args + tiny + paths + _unless_given(args, run_dir), cwd
    if stem == "evaluate":
        named = any(a.startswith(("dataset=", "datasets=")) for a in args)
        synthetic = [] if named else SYNTHETIC_EVALUATION
        return argv + args + EVALUATION + synthetic + paths + _unless_given(args, run_dir), cwd
    if stem == "predict":
        extra = ["trainer.accelerator=cpu", "trainer.enable_progress_bar=false", "overwrite=true"]
        return argv + args + extra + ["extras.print_config=false"] + paths + run_dir, cwd
    if stem == "export":
        return argv + args + ["extras.print_config=false"] + paths + run_dir, cwd
    if stem == "oneshot":
        return argv + args + ONESHOT + paths + run_dir, cwd
    raise AssertionError(f"{command.source}: no rule for {script!r} in {__file__}; add one")


COMMANDS = readme_commands()


def test_readme_has_commands() -> None:
    """The parser finds the documented commands (guards against a silent empty parametrisation)."""
    texts = [c.text for c in COMMANDS]
    for program in ("train.py", "evaluate.py", "predict.py", "export.py", "oneshot.py"):
        assert any(t.startswith(f"python {program}") for t in texts), program


@pytest.mark.parametrize(
    "index,command",
    list(enumerate(COMMANDS)),
    ids=[f"{c.source} {c.text[:60]}" for c in COMMANDS],
)
def test_readme_command_runs(index: int, command: Command, workspace: dict[str, Path]) -> None:
    argv, cwd = adapt(command, workspace, index)
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    result = subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False, env=env
    )
    assert result.returncode == 0, (
        f"{command.source}: `{command.text}` failed as\n{shlex.join(argv)}\n"
        f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    )
    # Later commands read the fixture's checkpoint, never these (up to 144 MB each): free the disk.
    for checkpoint in workspace["cwd"].rglob("*.ckpt"):
        checkpoint.unlink()


def python_blocks() -> list[Command]:
    """Every ``python`` code block of :data:`DOCUMENTS`, whole, in document order."""
    blocks: list[Command] = []
    for document in DOCUMENTS:
        lines = (PROJECT_ROOT / document).read_text(encoding="utf-8").splitlines()
        code: list[str] | None = None
        start = 0
        for number, line in enumerate(lines, start=1):
            if line.startswith("```") and code is None:
                if line.strip("`").strip() == "python":
                    code, start = [], number + 1
            elif line.startswith("```"):
                blocks.append(Command(f"{document}:{start}", "\n".join(code)))
                code = None
            elif code is not None:
                code.append(line)
    return blocks


PYTHON_PLACEHOLDERS = (('"<file.ckpt>"', "checkpoint"), ('"sensor_frame.npy"', "frame_array"))
"""(string literal, workspace entry) replaced in ``python`` blocks."""
PYTHON_BLOCKS = python_blocks()


def test_documents_have_python_blocks() -> None:
    """The parser finds the documented Python code (guards against an empty parametrisation)."""
    assert any("Predictor.from_checkpoint" in block.text for block in PYTHON_BLOCKS)


@pytest.mark.parametrize(
    "block", PYTHON_BLOCKS, ids=[f"{b.source} {b.text[:40]}" for b in PYTHON_BLOCKS]
)
def test_python_block_runs(block: Command, workspace: dict[str, Path]) -> None:
    """A ``python`` block runs as written in a fresh interpreter, placeholders filled in."""
    code = block.text
    for literal, entry in PYTHON_PLACEHOLDERS:
        code = code.replace(literal, repr(str(workspace[entry])))
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=workspace["cwd"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, f"{block.source}:\n{code}\n{result.stderr[-4000:]}"
