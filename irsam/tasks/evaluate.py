# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Evaluation task: score a checkpoint on one or several test splits, each at native resolution
under its own protocol, and write a report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from omegaconf import DictConfig, OmegaConf, open_dict

from irsam.data.layouts import LABEL_BUDGET_KEYS, split_spec
from irsam.data.protocols import protocol_record
from irsam.lit_module import IRSAMLitModule, inference_options
from irsam.metrics.compare import split_table, training_label
from irsam.metrics.report import (
    metric_rules,
    metrics_table,
    protocol_line,
    write_pd_fa_curve,
    write_report,
    write_results,
)
from irsam.models import count_parameters
from irsam.outputs import PredictionWriter
from irsam.tasks.runner import instantiate_group, task_wrapper
from irsam.utils import ConfigError, ensure_writable_dir, get_logger

log = get_logger(__name__)


def metric_overrides(cfg: DictConfig) -> dict[str, Any] | None:
    """The ``metrics.*`` keys a user set (non-null) for merging into a checkpoint's own options.

    Arguments:
      cfg (DictConfig): an ``evaluate.yaml`` / ``predict.yaml`` config.
    Returns:
      dict | None: e.g. ``{"fa_rule": "legacy_area"}``; None when nothing is set.
    """
    options = OmegaConf.to_container(cfg.get("metrics") or OmegaConf.create({}), resolve=True)
    chosen = {key: value for key, value in options.items() if value is not None}
    return chosen or None


def refuse_model_override(cfg: DictConfig) -> None:
    """Stop when a ``model`` config was added to an evaluation: the checkpoint defines the network.

    Arguments:
      cfg (DictConfig): an ``evaluate.yaml`` / ``predict.yaml`` / ``export.yaml`` config.
    Raises:
      ConfigError: ``cfg.model`` is set.
    """
    if cfg.get("model") is not None:
        raise ConfigError(
            f"model={cfg.model.get('net', {}).get('_target_', cfg.model)} cannot apply here: the "
            f"network is rebuilt from the checkpoint's own config (ckpt_path={cfg.ckpt_path}). "
            "Drop the model override; to use another network, train it with train.py first."
        )


def checkpoint_data_options(cfg: DictConfig, module: IRSAMLitModule) -> dict[str, Any]:
    """Loader options a checkpoint was trained with, overridden by the ones the user set.

    Arguments:
      cfg (DictConfig): config with optional ``loader_size`` and ``high_bit_norm`` keys (null =
        the checkpoint's).
      module (IRSAMLitModule): from :meth:`IRSAMLitModule.from_checkpoint`.
    Returns:
      dict: ``loader_size`` (the user's, else :func:`~irsam.lit_module.checkpoint_sizes`) and
      ``high_bit_norm`` (and, when stored, ``eval_resize``, ``pad_divisor``, ``pad_value``).
    """
    return inference_options(module, cfg.get("loader_size"), cfg.get("high_bit_norm"))


def training_record(hparams: Mapping[str, Any]) -> dict[str, Any]:
    """The training set of a model, from the datamodule settings it was trained with.

    Arguments:
      hparams (Mapping[str, Any]): the datamodule's hyperparameters (``datamodule.hparams``, or
        ``IRSAMLitModule.datamodule_hparams`` of a loaded checkpoint; may be empty).
    Returns:
      dict[str, Any]: JSON-ready ``dataset`` (name), ``split`` (the ``dataset.split`` name),
      ``protocol`` (the split's protocol name; ``synthetic`` for generated data), ``loader_size``
      (each None when not stored), plus ``train_fraction`` / ``train_count`` /
      ``train_subset_seed`` when stored, and ``copy_paste_p`` (the target copy-paste
      probability of its training augmentation; 0.0 when off or not stored).
    """
    split = hparams.get("split")
    splits = hparams.get("splits")
    if hparams.get("synthetic"):
        protocol = "synthetic"
    elif isinstance(splits, Mapping) and split in splits:
        protocol = str(split_spec(splits, split)["protocol"])
    else:
        protocol = split
    record = {
        "dataset": hparams.get("name"),
        "split": split,
        "protocol": protocol,
        "loader_size": hparams.get("loader_size"),
    }
    record.update({key: hparams[key] for key in LABEL_BUDGET_KEYS if key in hparams})
    copy_paste = (hparams.get("augmentation") or {}).get("copy_paste") or {}
    record["copy_paste_p"] = float(copy_paste.get("p", 0.0))
    return record


def test_set_results(
    trainer: L.Trainer,
    model: IRSAMLitModule,
    datamodule: L.LightningDataModule,
    checkpoint: str | None,
    trained_on: Mapping[str, Any],
    report_dir: str | Path,
) -> tuple[dict[str, Any], str]:
    """The results of the test that ``trainer`` just ran, with the report files of that set.

    A union data module (SIRST3) is also tested on each member. On the global-zero process the
    per-image CSV, the PR/ROC curves and the Pd-Fa curve are written to ``report_dir``.

    Arguments:
      trainer (L.Trainer): the trainer right after ``trainer.test(model, datamodule)``.
      model (IRSAMLitModule): the tested module.
      datamodule (L.LightningDataModule): the tested (set-up) data module.
      checkpoint (str | None): the checkpoint the weights come from, for the record (None: the
        weights in memory).
      trained_on (Mapping[str, Any]): :func:`training_record` of the model.
      report_dir (str | Path): folder of the per-set report files (existing).
    Returns:
      tuple[dict, str]: the results (``checkpoint``, ``trained_on``, ``dataset``, ``protocol``,
      ``split``, ``images``, ``metrics``, ``params``, ``images_per_s``, ``metric_options``,
      ``metric_rules``, and ``per_test_set`` for a union) and their Markdown (protocol line,
      table, extra-metric tables).
    """
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
    report = model.test_report
    counts = count_parameters(model.net)
    images_per_s = model.test_images / max(model.test_seconds, 1e-9)
    protocol = protocol_record(datamodule)
    results = {
        "checkpoint": None if checkpoint is None else str(checkpoint),
        "trained_on": dict(trained_on),
        "dataset": datamodule.name,
        "protocol": protocol,
        "split": "test",
        "images": protocol["sizes"]["test"],
        "metrics": metrics,
        "params": counts,
        "images_per_s": images_per_s,
        "metric_options": dict(model.hparams.metrics or {}),
        "metric_rules": metric_rules(model.test_metrics),
    }
    table = metrics_table(
        metrics, "test/", extra={"Params (M)": counts["total"] / 1e6, "images/s": images_per_s}
    )
    if hasattr(datamodule, "member_test_dataloaders"):  # a union (SIRST3): each member, then all
        per_set = {}
        for member, loader in datamodule.member_test_dataloaders().items():
            trainer.test(model=model, dataloaders=loader)
            per_set[member] = {
                k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")
            }
        per_set["union"] = metrics
        results["per_test_set"] = per_set
        table += "\n\n" + split_table(per_set)
    details = ""
    if trainer.is_global_zero:
        details = write_report(report, report_dir) if report else ""
        if model.test_curve is not None:
            write_pd_fa_curve(model.test_curve.compute(), report_dir)
    log.info(
        "Test of %s on %s (%d test images):\n%s\n%s",
        checkpoint or "the current weights",
        results["dataset"],
        protocol["sizes"]["test"],
        protocol_line(protocol),
        table,
    )
    return results, f"{protocol_line(protocol)}\n\n{table}\n\n{details}"


def _hydra_context(config_sources: Sequence[Mapping[str, Any]]) -> AbstractContextManager:
    """A context in which ``hydra.compose`` reads the running app's configs."""
    from hydra import initialize_config_dir, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        return nullcontext()
    main = next(s for s in config_sources if s["provider"] == "main")
    if main["schema"] == "pkg":
        return initialize_config_module(main["path"], version_base="1.3")
    return initialize_config_dir(main["path"], version_base="1.3")


def compose_datasets(cfg: DictConfig, names: Sequence[str]) -> dict[str, DictConfig]:
    """Each named dataset config composed as ``dataset=<name>`` would be, with the user's
    other command-line overrides (``dataset.num_workers=0`` ...) applied to every one.

    Arguments:
      cfg (DictConfig): the composed ``evaluate.yaml`` config of the running app (its
        ``paths`` resolve ``${paths.data_dir}`` in the dataset configs).
      names (Sequence[str]): ``conf/dataset/<name>.yaml`` names, e.g. ``["nudt_sirst",
        "nuaa_sirst"]``.
    Returns:
      dict[str, DictConfig]: name → resolved ``dataset`` node, in the order given.
    Raises:
      ConfigError: ``dataset.root`` is overridden too (one root cannot serve several sets), a
        name has no dataset config (the message lists those available), or a name is repeated,
        or an override does not apply to one of the sets.
    """
    from hydra import compose
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.errors import HydraException

    runtime = HydraConfig.get() if HydraConfig.initialized() else None
    kept = []
    for override in runtime.overrides.task if runtime else []:
        key = override.split("=", 1)[0].lstrip("+~")
        if key == "dataset.root":
            raise ConfigError(
                f"{override} cannot apply to datasets={list(names)}: each set has its own folder. "
                "Drop dataset.root and put the dataset folders (NUDT-SIRST, NUAA-SIRST, ...) "
                "under one folder given as paths.data_dir=<folder>."
            )
        if key not in ("dataset", "datasets"):
            kept.append(override)
    repeated = sorted({name for name in names if list(names).count(name) > 1})
    if repeated:
        raise ConfigError(f"datasets={list(names)} names {repeated} twice: give each set once.")
    sources = (
        runtime.runtime.config_sources
        if runtime
        else [{"provider": "main", "schema": "pkg", "path": "irsam.conf"}]
    )
    config_name = runtime.job.config_name if runtime else "evaluate"
    composed = {}
    with _hydra_context(sources):
        options = GlobalHydra.instance().config_loader().get_group_options("dataset")
        available = sorted(o for o in options if not o.startswith("_"))
        unknown = [name for name in names if name not in available]
        if unknown:
            raise ConfigError(
                f"datasets={list(names)}: no dataset config {unknown}; available: "
                f"{', '.join(available)} (conf/dataset/<name>.yaml)."
            )
        for name in names:
            try:
                full = compose(config_name=config_name, overrides=[*kept, f"dataset={name}"])
            except HydraException as error:
                raise ConfigError(
                    f"datasets: {name}: {str(error).splitlines()[0]} (an override applies to "
                    "every set in datasets=)"
                ) from error
            with open_dict(full):
                full.paths = cfg.paths
            composed[name] = OmegaConf.create(OmegaConf.to_container(full.dataset, resolve=True))
    return composed


def _test_set(
    cfg: DictConfig,
    model: IRSAMLitModule,
    dataset: DictConfig,
    trained_on: Mapping[str, Any],
    out_dir: Path,
) -> tuple[dict[str, Any], str, L.LightningDataModule, L.Trainer]:
    """Test ``model`` on the data module of ``dataset``, its reports written to ``out_dir``:
    :func:`test_set_results`, the data module and the trainer."""
    loader_size = checkpoint_data_options(cfg, model)["loader_size"]
    datamodule = hydra.utils.instantiate(dataset, loader_size=loader_size)
    datamodule.setup("test")  # here too, not only in the (possibly spawned) test processes
    callbacks = instantiate_group(cfg.get("callbacks"))
    if cfg.get("save_predictions"):
        callbacks.append(PredictionWriter(str(out_dir / "predictions")))
    trainer: L.Trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=callbacks, logger=instantiate_group(cfg.get("logger")) or False
    )
    trainer.test(model=model, datamodule=datamodule)
    results, markdown = test_set_results(
        trainer, model, datamodule, cfg.ckpt_path, trained_on, out_dir
    )
    return results, markdown, datamodule, trainer


@task_wrapper
def evaluate(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Score ``cfg.ckpt_path`` on the test split of ``cfg.dataset``, or of each set of
    ``cfg.datasets``, and write results.json / results.md.

    One set: results.json is the :func:`test_set_results` dict and the reports lie in the run
    folder. Several sets: results.json is ``{"checkpoint", "trained_on", "sets": {name:
    results}}``, results.md has one protocol line and table per set, and each set's reports lie
    in ``<run>/<name>/``.

    Arguments:
      cfg (DictConfig): the composed ``evaluate.yaml`` config.
    Returns:
      tuple[dict, dict]: (results, the built objects: ``model`` and the last ``trainer``, and
      for one set its ``datamodule``).
    """
    refuse_model_override(cfg)
    names = list(cfg.datasets) if cfg.get("datasets") else None
    datasets = compose_datasets(cfg, names) if names else None
    thresholds = list(cfg.pd_fa_thresholds) if cfg.get("pd_fa_thresholds") else None
    model = IRSAMLitModule.from_checkpoint(
        cfg.ckpt_path, metrics=metric_overrides(cfg), pd_fa_thresholds=thresholds
    )
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    trained_on = training_record(model.datamodule_hparams)
    output_dir = ensure_writable_dir(cfg.paths.output_dir, "evaluation output folder")
    if datasets is None:
        results, markdown, datamodule, trainer = _test_set(
            cfg, model, cfg.dataset, trained_on, output_dir
        )
        if trainer.is_global_zero:
            write_results(output_dir, results, markdown)
        return results, {"datamodule": datamodule, "model": model, "trainer": trainer}
    sets, parts = {}, []
    for name, dataset in datasets.items():
        set_dir = ensure_writable_dir(output_dir / name, f"evaluation folder of {name}")
        sets[name], markdown, _, trainer = _test_set(cfg, model, dataset, trained_on, set_dir)
        parts.append(f"## {name}\n\n{markdown}")
    results = {"checkpoint": str(cfg.ckpt_path), "trained_on": trained_on, "sets": sets}
    if trainer.is_global_zero:
        header = f"**Checkpoint:** {cfg.ckpt_path}, trained on {training_label(trained_on)}"
        write_results(output_dir, results, "\n\n".join([header, *parts]))
    return results, {"model": model, "trainer": trainer}
