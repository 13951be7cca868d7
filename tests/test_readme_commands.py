# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Documentation is executable: every shell command in the code blocks of README.md and
data/README.md runs here, as a subprocess, with tiny overrides appended (one batch, small images,
temporary output folders) and placeholders replaced by files the tests make: a checkpoint trained
here, a random ``mobile_sam.pt``-layout file, a generated IRSTD-1k tree, the real NUAA-SIRST and
NUDT-SIRST folders of ``../shared/data``.

A command is skipped, with its reason, only when it needs what this machine cannot have (a GPU,
several nodes, multi-GB SAM ViT weights) or when it is an install step or this very test suite (CI
runs those lines itself). A command that no rule below knows fails the test, so a new README
command cannot go untested.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from conftest import PROJECT_ROOT, SHARED_DATA

pytestmark = pytest.mark.slow

DOCUMENTS = ("README.md", "data/README.md")
TIMEOUT_S = 600


@dataclass(frozen=True)
class Command:
    """One shell command of a README code block.

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


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> dict[str, Path]:
    """Files that stand in for the README's placeholders (built once per test module)."""
    root = tmp_path_factory.mktemp("readme")
    from irsam.data.io import encode_png
    from irsam.data.synthetic import render_synthetic_sample
    from irsam.models import build_prompt_sam

    sam = build_prompt_sam(encoder="tiny", image_size=64)
    state = sam.state_dict()
    state["image_encoder.norm_head.weight"] = torch.ones(320)
    state["image_encoder.norm_head.bias"] = torch.zeros(320)
    state["image_encoder.head.weight"] = torch.zeros(1000, 320)
    state["image_encoder.head.bias"] = torch.zeros(1000)
    weights = root / "mobile_sam.pt"
    torch.save(state, weights)

    irstd = root / "IRSTD-1k"
    (irstd / "IRSTD1k_Img").mkdir(parents=True)
    (irstd / "IRSTD1k_Label").mkdir()
    names = [f"XDU{i}" for i in range(8)]
    for i, name in enumerate(names):
        image, mask = render_synthetic_sample(i, "train", i, 48, 48)
        (irstd / "IRSTD1k_Img" / f"{name}.png").write_bytes(encode_png(image))
        (irstd / "IRSTD1k_Label" / f"{name}.png").write_bytes(encode_png(mask * 255))
    (irstd / "trainval.txt").write_text("\n".join(names[:6]))
    (irstd / "test.txt").write_text("\n".join(names[6:]))

    frames, masks = root / "frames", root / "masks"
    frames.mkdir()
    masks.mkdir()
    for i in range(3):
        image, mask = render_synthetic_sample(i, "test", i, 48, 48)
        (frames / f"f{i}.png").write_bytes(encode_png(image))
        (masks / f"f{i}.png").write_bytes(encode_png(mask * 255))

    run = root / "trained"
    result = subprocess.run(
        [sys.executable, "train.py", f"hydra.run.dir={run}", *TINY_TRAIN, "test=false"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return {
        "root": root,
        "weights": weights,
        "irstd1k": irstd,
        "frames": frames,
        "masks": masks,
        "checkpoint": run / "checkpoints" / "last.ckpt",
    }


TINY_TRAIN = [
    "trainer.accelerator=cpu",
    "trainer.devices=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.num_sanity_val_steps=0",
    "trainer.max_epochs=1",
    "~logger",
    "extras.print_config=false",
    "dataset.image_size=64",
    "dataset.synthetic.image_size=64",
    "dataset.synthetic.num_train=8",
    "dataset.synthetic.num_val=4",
    "dataset.synthetic.num_test=4",
    "dataset.batch_size=4",
    "dataset.eval_batch_size=4",
    "model.net.image_size=64",
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
    "dataset.image_size=64",
    "dataset.batch_size=2",
    "dataset.eval_batch_size=2",
    "dataset.num_workers=0",
    "dataset.persistent_workers=false",
    "model.net.image_size=64",
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
    "dataset.synthetic.image_size=64",
    "dataset.synthetic.num_test=4",
]
"""Overrides for ``evaluate.py``: two test batches."""

PLACEHOLDERS = (
    (r"^/data/NUDT-SIRST$", "nudt"),
    (r"^/data/NUAA-SIRST$", "nuaa"),
    (r"^/data/IRSTD-1k$", "irstd1k"),
    (r"^/weights/mobile_sam\.pt$", "weights"),
    (r"\.ckpt$|^\.\.\.$|^<file\.ckpt>$", "checkpoint"),
    (r"^<image or folder>$|^frames/?$|^<frames/?>$", "frames"),
    (r"^masks/?$", "masks"),
)
"""(value pattern, workspace entry) replacing README placeholders in ``key=value`` arguments."""


def _substitute(value: str, workspace: dict[str, Path]) -> str:
    """The file a README placeholder value stands for (or the value unchanged)."""
    for pattern, entry in PLACEHOLDERS:
        if re.search(pattern, value):
            if entry in ("nudt", "nuaa"):
                folder = SHARED_DATA / ("NUDT-SIRST" if entry == "nudt" else "NUAA-SIRST")
                if not folder.is_dir():
                    pytest.skip(f"needs the real dataset {folder} (absent here)")
                return str(folder)
            return str(workspace[entry])
    if re.search(r"^/weights/sam_vit_|^/weights/sam2", value):
        pytest.skip(f"needs SAM weights ({value}), which this machine cannot have")
    return value


def adapt(command: Command, workspace: dict[str, Path], out: Path) -> list[str]:
    """The argv that runs ``command`` here (tiny settings, temporary outputs), or a skip.

    Arguments:
      command (Command): the README command.
      workspace (dict): files from the ``workspace`` fixture.
      out (Path): a fresh folder for this command's outputs.
    Returns:
      list[str]: the argv (``python`` replaced by this interpreter).
    """
    words = shlex.split(command.text)
    head = words[0]
    if head in ("pip", ".", "source") or words[:3] == ["python", "-m", "venv"]:
        pytest.skip("an install step: .ci/run runs the README's install lines itself")
    if words[:3] == ["python", "-m", "pytest"]:
        pytest.skip("the test suite itself (what CI runs)")
    if head in ("torchrun", "srun", "sbatch"):
        pytest.skip(f"{head} launches several GPU processes; no GPU on this machine")
    if any(w in ("trainer=gpu", "trainer=ddp") for w in words):
        pytest.skip("needs a CUDA GPU (trainer=gpu / trainer=ddp)")
    if head != "python":
        raise AssertionError(f"{command.source}: no rule for {head!r} in {__file__}; add one")
    script = words[1]
    args = []
    for word in words[2:]:
        key, sep, value = word.partition("=")
        args.append(f"{key}={_substitute(value, workspace)}" if sep else word)
    argv = [sys.executable, script]
    paths = [f"paths.log_dir={out / 'logs'}"]
    if script == "-c":
        return [sys.executable, "-c", words[2]]
    if script == "train.py":
        multirun = "-m" in args or any(a.startswith("hparams_search=") for a in args)
        real = any(a.startswith("dataset.root=") for a in args)
        tiny = REAL_DATA_TRAIN if real else TINY_TRAIN
        if multirun:
            tiny = [t for t in tiny if t != "trainer.fast_dev_run=true"] + [
                "trainer.limit_train_batches=1",
                "trainer.limit_val_batches=1",
                "trainer.max_epochs=1",
                "test=false",
            ]
            if any("hparams_search=" in a for a in args):
                tiny += ["hydra.sweeper.n_trials=2", "hydra.sweeper.sampler.n_startup_trials=2"]
            return argv + args + tiny + paths + [f"hydra.sweep.dir={out / 'sweep'}"]
        return argv + args + tiny + paths + [f"hydra.run.dir={out / 'run'}"]
    if script == "evaluate.py":
        return argv + args + EVALUATION + paths + [f"hydra.run.dir={out / 'run'}"]
    if script == "predict.py":
        args = [f"output={out / 'pred'}" if a.startswith("output=") else a for a in args]
        extra = ["trainer.accelerator=cpu", "trainer.enable_progress_bar=false"]
        return argv + args + extra + ["extras.print_config=false"] + paths + [
            f"hydra.run.dir={out / 'run'}"
        ]
    raise AssertionError(f"{command.source}: no rule for {script!r} in {__file__}; add one")


COMMANDS = readme_commands()


def test_readme_has_commands() -> None:
    """The parser finds the README's commands (guards against a silent empty parametrisation)."""
    texts = [c.text for c in COMMANDS]
    assert any(t.startswith("python train.py") for t in texts)
    assert any(t.startswith("python evaluate.py") for t in texts)
    assert any(t.startswith("python predict.py") for t in texts)


@pytest.mark.parametrize("command", COMMANDS, ids=[f"{c.source} {c.text[:60]}" for c in COMMANDS])
def test_readme_command_runs(command: Command, workspace: dict[str, Path], tmp_path: Path) -> None:
    argv = adapt(command, workspace, tmp_path)
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    result = subprocess.run(
        argv,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
        env=env,
    )
    assert result.returncode == 0, (
        f"{command.source}: `{command.text}` failed as\n{shlex.join(argv)}\n"
        f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    )
