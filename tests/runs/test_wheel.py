# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""A plain (non-editable) install trains and predicts from any folder: the wheel is built from a
copy of the sources, installed into a fresh virtual environment, and its ``irsam-train`` and
``irsam-predict`` run in a temporary folder with no repository on ``sys.path``.

Installing torch again would take minutes, so the new environment gets this environment's
third-party packages through a ``.pth`` file naming a folder of links to them, without the
packages of the wandb, tensorboard, sweep and plots extras (nor this environment's editable
irsam): the default commands must not need them, and choosing a setting that needs one must say
which ``pip install`` fixes it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import numpy as np
import pytest
from conftest import PROJECT_ROOT, TINY_TRAIN_OVERRIDES

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.name == "nt", reason="links the environment's packages with symlinks"),
]

HIDDEN_DISTRIBUTIONS = (
    "irsam",
    "wandb",
    "tensorboard",
    "tensorboard-data-server",
    "tensorboardX",
    "hydra-optuna-sweeper",
    "optuna",
    "matplotlib",
)
"""Distributions left out of the new environment: the repository's own install, and the
packages of the wandb, tensorboard, sweep and plots extras."""
EXTRA_MODULES = (
    "wandb",
    "tensorboard",
    "optuna",
    "matplotlib",
    "hydra_plugins.hydra_optuna_sweeper",
)
"""Modules that must not import in the new environment."""
TRAIN = [
    *(o for o in TINY_TRAIN_OVERRIDES if o != "~logger"),
    "trainer.limit_train_batches=1",
    "trainer.limit_val_batches=1",
    "test=false",
]
"""``irsam-train`` overrides: one tiny batch per loop; the default CSV logger and sample panels."""
TIMEOUT_S = 300


def _copy_sources(target: Path) -> Path:
    """The files a wheel is built from (a copy: the build writes build/ and *.egg-info)."""
    target.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "local")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(PROJECT_ROOT / name, target / name)
    for name in ("irsam", "conf"):
        shutil.copytree(PROJECT_ROOT / name, target / name, ignore=ignore)
    return target


def _hidden_paths(site: Path) -> set[tuple[str, ...]]:
    """Paths (relative to ``site``) that only the hidden distributions own: their shortest
    prefixes that no other installed file shares (``hydra_plugins/`` is shared, for example)."""
    from importlib.metadata import distributions

    hidden_names = {d.lower() for d in HIDDEN_DISTRIBUTIONS}
    kept_prefixes: set[tuple[str, ...]] = set()
    for dist in distributions(path=[str(site)]):
        if dist.metadata["Name"].lower() in hidden_names:
            continue
        for file in dist.files or []:
            parts = Path(file).parts
            kept_prefixes.update(parts[:k] for k in range(1, len(parts) + 1))
    hidden: set[tuple[str, ...]] = set()
    for name in HIDDEN_DISTRIBUTIONS:
        try:
            files = distribution(name).files or []
        except PackageNotFoundError:
            continue
        for file in files:
            parts = Path(file).parts
            if ".." in parts:
                continue  # console scripts in bin/
            k = next((k for k in range(1, len(parts) + 1) if parts[:k] not in kept_prefixes), 0)
            if k:
                hidden.add(parts[:k])
    return hidden


def _link_tree(source: Path, target: Path, hidden: set[tuple[str, ...]], rel=()) -> None:
    """Mirror ``source`` in ``target`` with symlinks, leaving out the ``hidden`` paths."""
    target.mkdir(parents=True, exist_ok=True)
    for child in source.iterdir():
        path = (*rel, child.name)
        if path in hidden:
            continue
        if child.is_dir() and any(h[: len(path)] == path for h in hidden):
            _link_tree(child, target / child.name, hidden, path)
        else:
            (target / child.name).symlink_to(child)


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run a command of the new environment; returns the finished process."""
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )


def test_installed_wheel_trains_and_predicts_from_any_folder(tmp_path: Path) -> None:
    from irsam.data.io import write_png

    # The wheel: every module of irsam/, every config, the licence, the commands.
    source = _copy_sources(tmp_path / "src")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
        + ["--quiet", "--wheel-dir", str(tmp_path / "dist"), str(source)],
        check=True,
        timeout=TIMEOUT_S,
    )
    (wheel,) = (tmp_path / "dist").glob("irsam-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        commands = archive.read(entry_points).decode()
    modules = {p.relative_to(PROJECT_ROOT).as_posix() for p in PROJECT_ROOT.glob("irsam/**/*.py")}
    configs = {
        f"irsam/{p.relative_to(PROJECT_ROOT).as_posix()}"
        for p in PROJECT_ROOT.glob("conf/**/*.yaml")
        if not p.relative_to(PROJECT_ROOT).as_posix().startswith("conf/local/")
    }
    assert {"irsam/conf/train.yaml", "irsam/conf/model/irsam_tiny.yaml"} <= configs
    assert modules | configs | {"irsam/conf/__init__.py"} <= names
    assert not any(n.startswith("irsam/conf/local/") for n in names)
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    for command in ("train", "evaluate", "predict", "export", "oneshot"):
        assert f"irsam-{command} = irsam.tasks.cli:{command}_main" in commands

    # A fresh environment: the wheel, and this environment's packages but the extras' ones.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps"]
        + ["--no-index", "--quiet", str(wheel)],
        check=True,
        timeout=TIMEOUT_S,
    )
    site = Path(sysconfig.get_paths()["purelib"])
    packages = tmp_path / "packages"
    _link_tree(site, packages, _hidden_paths(site))
    venv_site = Path(
        subprocess.check_output(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            text=True,
        ).strip()
    )
    (venv_site / "environment_packages.pth").write_text(f"{packages}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PROJECT_ROOT")}
    env |= {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONNOUSERSITE": "1"}
    work = tmp_path / "work"
    work.mkdir()

    probe = (
        "import importlib.util, json, sys, irsam, irsam.conf\n"
        f"missing = [m for m in {EXTRA_MODULES!r} if importlib.util.find_spec(m) is None]\n"
        "print(json.dumps({'irsam': irsam.__file__, 'path': sys.path, 'missing': missing}))\n"
    )
    seen = json.loads(subprocess.check_output([str(python), "-c", probe], cwd=work, env=env))
    assert Path(seen["irsam"]).is_relative_to(venv_site), seen["irsam"]
    assert not [p for p in seen["path"] if p and Path(p).resolve() == PROJECT_ROOT]
    assert seen["missing"] == list(EXTRA_MODULES)

    # irsam-train from a folder outside the repository: the run goes to ./logs.
    result = _run([str(venv / "bin" / "irsam-train"), *TRAIN], work, env)
    assert result.returncode == 0, result.stderr[-4000:]
    (run,) = (work / "logs" / "train" / "runs").iterdir()
    checkpoint = run / "checkpoints" / "last.ckpt"
    assert checkpoint.is_file()
    assert list(run.glob("csv/**/metrics.csv")) and list((run / "samples").glob("*.png"))

    # irsam-predict on two images (no ground truth).
    frames = work / "frames"
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        write_png(frames / f"{name}.png", rng.integers(0, 255, (48, 48), dtype=np.uint8))
    predict = [
        f"ckpt_path={checkpoint}",
        f"input={frames}",
        "output=predictions",
        "trainer.accelerator=cpu",
        "trainer.enable_progress_bar=false",
        "extras.print_config=false",
    ]
    result = _run([str(venv / "bin" / "irsam-predict"), *predict], work, env)
    assert result.returncode == 0, result.stderr[-4000:]
    assert sorted(p.stem for p in (work / "predictions" / "masks").glob("*.png")) == ["a", "b"]

    # Settings that need a missing extra say which pip install fixes them.
    for argv, message in (
        (["logger=wandb"], "logger=wandb needs the wandb extra: pip install 'irsam[wandb]'"),
        (["-m", "hparams_search=irsam_optuna"], "pip install 'irsam[sweep]'"),
    ):
        result = _run([str(venv / "bin" / "irsam-train"), *TRAIN, *argv], work, env)
        assert result.returncode != 0 and message in result.stderr, result.stderr[-4000:]
