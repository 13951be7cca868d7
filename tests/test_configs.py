# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Every config group composes, and every cheap one instantiates."""

from __future__ import annotations

from pathlib import Path

import hydra
import pytest
import yaml
from conftest import PROJECT_ROOT, TINY_TRAIN_OVERRIDES, compose_config

CONF = PROJECT_ROOT / "conf"


def _options(group: str) -> list[str]:
    """The selectable options of a group: its files, except the shared ``_base``-style parts."""
    return sorted(p.stem for p in (CONF / group).glob("*.yaml") if not p.stem.startswith("_"))


@pytest.mark.parametrize(
    "group",
    [
        "dataset",
        "model",
        "loss",
        "optimizer",
        "scheduler",
        "trainer",
        "logger",
        "callbacks",
        "experiment",
        "debug",
        "hparams_search",
    ],
)
def test_every_option_composes(group: str, tmp_path: Path) -> None:
    """`train.yaml` composes with each option of each group, and the option is the one used."""
    for option in _options(group):
        cfg = compose_config("train", tmp_path, [f"{group}={option}"])
        assert cfg.hydra.runtime.choices[group] == option, (group, option)
        assert cfg.trainer._target_ == "lightning.pytorch.Trainer", (group, option)
        if group == "dataset":
            assert cfg.dataset.name == option and cfg.dataset.loader_size > 0
        elif group == "model":
            assert cfg.model.net._target_.startswith("irsam.models.build.build_")
            assert cfg.model.net.encoder_size == cfg.dataset.loader_size  # the quick start


@pytest.mark.parametrize("group", ["loss", "optimizer", "scheduler", "logger", "callbacks"])
def test_cheap_groups_instantiate(group: str, tmp_path: Path) -> None:
    """Losses, optimisers, schedulers, loggers and callbacks build from their configs."""
    import torch
    from lightning.pytorch.callbacks import Callback
    from lightning.pytorch.loggers import Logger

    from irsam.losses import CompositeLoss

    for option in _options(group):
        cfg = compose_config(
            "train",
            tmp_path,
            [f"{group}={option}", "logger.wandb.offline=true"]
            if group == "logger" and option in ("wandb", "many")
            else [f"{group}={option}"],
        )
        node = cfg[group]
        if group in ("logger", "callbacks"):
            if option == "early_stopping":
                continue  # its monitor is a required value (???) by design
            kind = Logger if group == "logger" else Callback
            for sub in (node or {}).values():
                assert isinstance(hydra.utils.instantiate(sub), kind), (group, option)
        elif group == "optimizer":
            optimizer = hydra.utils.instantiate(node)(params=[torch.nn.Parameter(torch.zeros(2))])
            assert isinstance(optimizer, torch.optim.Optimizer)
            assert optimizer.param_groups[0]["lr"] == node.lr
        elif group == "scheduler":
            optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
            scheduler = hydra.utils.instantiate(node)(optimizer=optimizer)
            assert isinstance(scheduler, torch.optim.lr_scheduler.LRScheduler)
            assert scheduler.get_last_lr() == [0.1]
        else:
            loss = hydra.utils.instantiate(node)
            assert isinstance(loss, CompositeLoss) and set(loss.losses) == set(node.terms)


@pytest.mark.parametrize(
    "model,params,edge", [("irsam_tiny", 12_327_803, True), ("mobile_sam", 9_802_488, False)]
)
def test_models_instantiate(model: str, params: int, edge: bool, tmp_path: Path) -> None:
    """The TinyViT model configs build the network they describe: its parameter count (the
    paper's 12.33 M for IRSAM), the edge branch, the encoder size (ViT-B/L/H: covered by
    composition and the model tests)."""
    from irsam.models import IRSAM

    cfg = compose_config("train", tmp_path, [f"model={model}", "model.net.encoder_size=128"])
    net = hydra.utils.instantiate(cfg.model.net)
    assert isinstance(net, IRSAM) and net.img_size == 128 and net.has_edge_branch == edge
    assert sum(p.numel() for p in net.parameters()) == params


def test_trainer_configs_instantiate(tmp_path: Path) -> None:
    """CPU trainer configs (default, cpu, ddp_sim) build a Trainer."""
    for option in ("default", "cpu", "ddp_sim"):
        cfg = compose_config("train", tmp_path, [f"trainer={option}"])
        trainer = hydra.utils.instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
        assert trainer.max_epochs == cfg.trainer.max_epochs


def test_common_trainer_arguments_need_no_plus(tmp_path: Path) -> None:
    """Lightning's everyday Trainer arguments are keys of conf/trainer/default.yaml, so they are
    overridden without ``+`` and reach the Trainer (a typo then gets Hydra's "not in struct"
    error instead of a ``+`` suggestion that later fails inside the Trainer)."""
    overrides = {
        "limit_train_batches": 3,
        "limit_val_batches": 2,
        "limit_test_batches": 2,
        "limit_predict_batches": 2,
        "max_steps": 7,
        "max_time": "00:00:01:00",
        "val_check_interval": 0.5,
        "gradient_clip_val": 1.0,
        "accumulate_grad_batches": 2,
    }
    cfg = compose_config("train", tmp_path, [f"trainer.{k}={v}" for k, v in overrides.items()])
    trainer = hydra.utils.instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
    assert trainer.limit_train_batches == 3 and trainer.limit_val_batches == 2
    assert trainer.max_steps == 7 and trainer.accumulate_grad_batches == 2
    assert trainer.gradient_clip_val == 1.0
    cfg = compose_config("train", tmp_path, ["trainer.overfit_batches=2"])
    assert hydra.utils.instantiate(cfg.trainer, logger=False).overfit_batches == 2
    with pytest.raises(Exception, match="max_epoch"):
        compose_config("train", tmp_path, ["trainer.max_epoch=1"])


def test_evaluate_and_predict_configs_compose(tmp_path: Path) -> None:
    """evaluate.yaml, predict.yaml and export.yaml compose; their required keys are marked ???;
    the loader size comes from the checkpoint unless set."""
    for name in ("evaluate", "predict", "export"):
        cfg = compose_config(
            name, tmp_path, ["ckpt_path=x.ckpt"] + (["input=x"] if name == "predict" else [])
        )
        assert cfg.ckpt_path == "x.ckpt" and cfg.loader_size is None
    raw = yaml.safe_load((CONF / "evaluate.yaml").read_text())
    assert raw["ckpt_path"] == "???"


def test_every_yaml_key_is_commented() -> None:
    """Every key that sets a value carries a comment (engineering-style.md §2); mapping headers
    (``trainer:``) are described by their children."""
    missing = []
    for path in sorted(CONF.rglob("*.yaml")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            stripped = line.strip()
            if not stripped or stripped.startswith(("#", "- ")) or ":" not in stripped:
                continue
            if stripped.endswith(":"):
                continue
            if "#" not in stripped:
                missing.append(f"{path.relative_to(PROJECT_ROOT)}:{number}: {stripped}")
    assert not missing, "uncommented keys:\n" + "\n".join(missing)


def test_tiny_overrides_compose(tmp_path: Path) -> None:
    """The CPU test overrides used across the suite stay valid."""
    cfg = compose_config("train", tmp_path, list(TINY_TRAIN_OVERRIDES))
    assert cfg.model.net.encoder_size == 128 and cfg.dataset.loader_size == 64
    assert cfg.dataset.synthetic.native_size == 64


def test_quickstart_preset_and_experiments(tmp_path: Path) -> None:
    """`python train.py` is the quick start (synthetic set, internal size = loader size 128,
    8 epochs, lr 3e-4); a dataset override keeps the preset at that dataset's loader size; an
    experiment replaces it and pins its own values."""
    cfg = compose_config("train", tmp_path, [])
    assert cfg.hydra.runtime.choices.experiment == "quickstart"
    assert cfg.dataset.name == "synthetic" and cfg.dataset.loader_size == 128
    assert cfg.model.net.encoder_size == 128
    assert cfg.trainer.max_epochs == 8 and cfg.optimizer.lr == pytest.approx(3e-4)
    cfg = compose_config("train", tmp_path, ["dataset=nudt_sirst"])
    assert cfg.dataset.name == "nudt_sirst" and cfg.trainer.max_epochs == 8
    assert cfg.model.net.encoder_size == cfg.dataset.loader_size == 512
    cfg = compose_config("train", tmp_path, ["experiment=irsam_nudt"])
    assert cfg.dataset.name == "nudt_sirst" and cfg.task_name == "irsam_nudt"
    assert (cfg.dataset.loader_size, cfg.model.net.encoder_size) == (512, 1024)
    assert cfg.trainer.max_epochs == 300 and cfg.optimizer.lr == pytest.approx(1e-4)
    cfg = compose_config("train", tmp_path, ["experiment=nudt_cpu_short"])
    assert (cfg.dataset.loader_size, cfg.model.net.encoder_size) == (256, 256)
    assert cfg.trainer.max_epochs == 5


def test_study_recipe_and_sweep_presets(tmp_path: Path) -> None:
    """`cpu_study` trains every budget for the same 150 steps at a constant rate on any dataset
    at 256²; the study presets sweep fractions × seeds (the seed also picking the subset) and
    copy-paste on/off × datasets, and test every job (results.json for irsam-study)."""
    for dataset in ("nudt_sirst", "nuaa_sirst"):
        cfg = compose_config("train", tmp_path, ["experiment=cpu_study", f"dataset={dataset}"])
        assert cfg.dataset.name == dataset and cfg.task_name == "cpu_study"
        assert (cfg.dataset.loader_size, cfg.model.net.encoder_size) == (256, 256)
        assert (cfg.trainer.max_steps, cfg.trainer.max_epochs) == (150, -1)
        assert cfg.trainer.val_check_interval == 75 and cfg.trainer.check_val_every_n_epoch is None
        assert cfg.get("scheduler") is None and cfg.optimizer.lr == pytest.approx(3e-4)
    cfg = compose_config("train", tmp_path, ["hparams_search=label_budget", "seed=7"])
    params = cfg.hydra.sweeper.params
    assert params["dataset.train_fraction"] == "0.01,0.05,0.1,0.25,0.5,1.0"
    assert params.seed == "1,2,3" and cfg.test is True
    assert cfg.dataset.train_subset_seed == 7
    cfg = compose_config("train", tmp_path, ["hparams_search=copy_paste"])
    params = cfg.hydra.sweeper.params
    assert params.dataset == "nudt_sirst,nuaa_sirst" and cfg.test is True
    assert params["dataset.augmentation.copy_paste.p"] == "0.0,0.5"


def test_lightning_floor_supports_weights_only_fit(project_root: Path) -> None:
    """pyproject's Lightning lower bound admits only releases whose ``Trainer.fit`` takes
    ``weights_only`` (Lightning 2.6+), which train.py passes."""
    import inspect
    import re

    import lightning

    text = (project_root / "pyproject.toml").read_text()
    floor = re.search(r'"lightning>=(\d+)\.(\d+)', text)
    assert floor, "pyproject.toml must give lightning a lower bound"
    assert (int(floor.group(1)), int(floor.group(2))) >= (2, 6)
    assert "weights_only" in inspect.signature(lightning.Trainer.fit).parameters


@pytest.mark.parametrize("experiment", ["irsam_irstd1k", "irsam_nudt", "irsam_nuaa"])
def test_paper_recipes_pin_the_authors_precision_edge_order_and_split(
    experiment: str, tmp_path: Path
) -> None:
    """The paper recipes run as the authors did: fp32, the edge sigmoid before upsampling, the
    IRSAM split (bf16 and the other choices are switches, not the recipe)."""
    cfg = compose_config("train", tmp_path, [f"experiment={experiment}"])
    assert cfg.trainer.precision == "32-true"
    assert cfg.model.net.edge_upsample == "probabilities"
    assert cfg.dataset.split == "irsam"


def test_code_cites_only_documents_in_the_repository(project_root: Path) -> None:
    """Every ``docs/<file>.md`` a comment in irsam/ or conf/ cites exists in the repository, and
    no comment points outside it (../shared or the shared reference file names)."""
    import re

    cited, outside = set(), []
    for path in [*project_root.glob("irsam/**/*.py"), *project_root.glob("conf/**/*.yaml")]:
        text = path.read_text(encoding="utf-8")
        cited |= set(re.findall(r"docs/([\w.-]+\.md)", text))
        if re.search(
            r"shared/docs|irsam-reference\.md|metrics-and-losses\.md|oneshot-reference", text
        ):
            outside.append(str(path))
    assert not outside, f"comments cite documents outside the repository: {outside}"
    missing = sorted(name for name in cited if not (project_root / "docs" / name).is_file())
    assert cited and not missing, f"cited but absent from docs/: {missing}"


# --------------------------------------------------------------- pyproject.toml: the installed tool


def _pyproject() -> dict:
    """pyproject.toml as a dict."""
    tomllib = pytest.importorskip("tomllib", reason="tomllib is part of Python 3.11+")
    return tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())


def _requirements() -> tuple[list, dict[str, list]]:
    """The hard dependencies and the extras of pyproject.toml as ``packaging`` requirements."""
    from packaging.requirements import Requirement

    project = _pyproject()["project"]
    extras = {
        name: [Requirement(r) for r in reqs]
        for name, reqs in project["optional-dependencies"].items()
    }
    return [Requirement(r) for r in project["dependencies"]], extras


def test_wheel_packages_are_every_subpackage_and_config_group() -> None:
    """``[tool.setuptools] packages`` lists exactly the sub-packages of irsam/ and, as
    ``irsam.conf.<group>``, every folder of conf/ with configs (conf/local stays out): the
    installed commands find every config group."""
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    code = {
        ".".join(("irsam", *p.parent.relative_to(PROJECT_ROOT / "irsam").parts))
        for p in (PROJECT_ROOT / "irsam").rglob("__init__.py")
    }
    configs = {
        ".".join(("irsam", "conf", *p.parent.relative_to(CONF).parts))
        for p in CONF.rglob("*.yaml")
        if p.parent.relative_to(CONF).parts[:1] != ("local",)
    }
    assert listed == code | configs


def test_installed_versions_are_inside_the_pins() -> None:
    """Lightning is pinned to 2.6 (irsam.resume uses private ModelCheckpoint members) and
    albumentations to the 2.0 series; this environment's versions of every hard dependency are
    inside pyproject's ranges."""
    from importlib.metadata import version

    dependencies, _ = _requirements()
    pins = {r.name: r.specifier for r in dependencies}
    assert "2.6.9" in pins["lightning"] and "2.7.0" not in pins["lightning"]
    assert "2.0.9" in pins["albumentations"] and "2.1.0" not in pins["albumentations"]
    outside = [
        f"{r.name} {version(r.name)} not in {r.specifier}"
        for r in dependencies
        if not r.specifier.contains(version(r.name), prereleases=True)
    ]
    assert not outside


def test_every_dependency_is_imported_and_every_import_is_declared() -> None:
    """Each hard dependency is imported by irsam/ or the repository's scripts (torchvision:
    by segment_anything, which declares no dependencies); each third-party module they import is
    a hard dependency or belongs to an extra."""
    import ast
    import sys
    from importlib.metadata import packages_distributions

    from packaging.utils import canonicalize_name

    dependencies, extras = _requirements()
    hard = {canonicalize_name(r.name) for r in dependencies}
    optional = {canonicalize_name(r.name) for reqs in extras.values() for r in reqs} - {"irsam"}
    sources = [*(PROJECT_ROOT / "irsam").rglob("*.py")]
    sources += [PROJECT_ROOT / f"{name}.py" for name in ("train", "evaluate", "predict")]
    sources += [PROJECT_ROOT / f"{name}.py" for name in ("export", "oneshot")]
    modules: set[str] = set()
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    modules -= {*sys.stdlib_module_names, "irsam"}
    installed = packages_distributions()
    imported = {
        module: {canonicalize_name(d) for d in installed.get(module, [module])}
        for module in modules
    }
    undeclared = sorted(m for m, dists in imported.items() if not dists & (hard | optional))
    assert not undeclared, f"imported but not in pyproject.toml: {undeclared}"
    unused = hard - set().union(*imported.values()) - {"torchvision"}
    assert not unused, f"hard dependencies nothing imports: {sorted(unused)}"


def test_extras_cover_the_optional_settings() -> None:
    """Every extra that irsam.utils.extras names exists; ``all`` holds every extra but sam2 and
    dev; dev installs all; every config that picks a Hydra plugin (Optuna sweeper, submitit
    launchers) is a choice that is checked before Hydra composes."""
    import re

    from irsam.utils.extras import OVERRIDE_EXTRAS, TARGET_EXTRAS

    _, extras = _requirements()
    named = {extra for _, extra in OVERRIDE_EXTRAS.values()}
    named |= {extra for _, _, extra in TARGET_EXTRAS.values()} | {"plots"}
    assert named <= set(extras)
    (everything,) = extras["all"]
    assert everything.extras == set(extras) - {"all", "dev", "sam2"}
    assert "all" in next(r for r in extras["dev"] if r.name == "irsam").extras
    for path in CONF.rglob("*.yaml"):
        if re.search(r"/hydra/sweeper: optuna|^\s*-\s*submitit_", path.read_text(), re.MULTILINE):
            choice = f"{path.parent.relative_to(CONF).as_posix()}={path.stem}"
            assert choice in OVERRIDE_EXTRAS, f"{choice} is missing from OVERRIDE_EXTRAS"


def test_disk_datasets_pick_their_loader_workers_from_the_cpu_count(monkeypatch) -> None:
    """dataset.num_workers: null (conf/dataset/_disk.yaml) = min(4, CPUs available − 1): one
    worker on a 2-core machine (4 made PyTorch warn), none on one core, 4 on many."""
    import os

    from conftest import compose_option

    from irsam.data.datamodule import IRSTDDataModule, auto_num_workers

    assert compose_option("dataset", "nudt_sirst").num_workers is None
    for cpus, workers in ((1, 0), (2, 1), (3, 2), (64, 4)):
        monkeypatch.setattr(os, "sched_getaffinity", lambda _, n=cpus: set(range(n)))
        assert auto_num_workers() == workers
    datamodule = IRSTDDataModule(
        synthetic={}, loader_size=32, num_workers=None, persistent_workers=True
    )
    assert datamodule.num_workers == 4 and datamodule.persistent_workers
