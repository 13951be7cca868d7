# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Evaluation task: score a checkpoint on a test split at native resolution and write a report."""

from __future__ import annotations

from typing import Any

import hydra
import lightning as L
from omegaconf import DictConfig, OmegaConf

from irsam.data.protocols import protocol_record
from irsam.lit_module import IRSAMLitModule, inference_options
from irsam.metrics.compare import split_table
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


@task_wrapper
def evaluate(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Score ``cfg.ckpt_path`` on the dataset's test split and write results.json / results.md.

    Arguments:
      cfg (DictConfig): the composed ``evaluate.yaml`` config.
    Returns:
      tuple[dict, dict]: (results, the built objects).
    """
    refuse_model_override(cfg)
    thresholds = list(cfg.pd_fa_thresholds) if cfg.get("pd_fa_thresholds") else None
    model = IRSAMLitModule.from_checkpoint(
        cfg.ckpt_path, metrics=metric_overrides(cfg), pd_fa_thresholds=thresholds
    )
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    loader_size = checkpoint_data_options(cfg, model)["loader_size"]
    datamodule = hydra.utils.instantiate(cfg.dataset, loader_size=loader_size)
    datamodule.setup("test")  # here too, not only in the (possibly spawned) test processes

    output_dir = ensure_writable_dir(cfg.paths.output_dir, "evaluation output folder")
    callbacks = instantiate_group(cfg.get("callbacks"))
    if cfg.get("save_predictions"):
        callbacks.append(PredictionWriter(str(output_dir / "predictions")))
    trainer: L.Trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=callbacks, logger=instantiate_group(cfg.get("logger")) or False
    )
    trainer.test(model=model, datamodule=datamodule)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
    report = model.test_report
    counts = count_parameters(model.net)
    images_per_s = model.test_images / max(model.test_seconds, 1e-9)
    protocol = protocol_record(datamodule)
    results = {
        "checkpoint": str(cfg.ckpt_path),
        "dataset": cfg.dataset.get("name"),
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
    if trainer.is_global_zero:
        details = write_report(report, output_dir) if report else ""
        write_results(output_dir, results, f"{protocol_line(protocol)}\n\n{table}\n\n{details}")
        if model.test_curve is not None:
            write_pd_fa_curve(model.test_curve.compute(), output_dir)
    log.info(
        "Evaluation of %s on %s (%d test images):\n%s\n%s",
        cfg.ckpt_path,
        cfg.dataset.get("name"),
        protocol["sizes"]["test"],
        protocol_line(protocol),
        table,
    )
    return results, {"datamodule": datamodule, "model": model, "trainer": trainer}
