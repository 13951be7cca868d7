# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Evaluation task: score a checkpoint on a test split at native resolution and write a report."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from irsam.callbacks import TestPredictionWriter
from irsam.lit_module import IRSAMLitModule
from irsam.models import count_parameters
from irsam.tasks.report import metrics_table, write_results
from irsam.utils import atomic_write_bytes, get_logger
from irsam.utils.config import instantiate_group, load_lightning_checkpoint, task_wrapper

log = get_logger(__name__)


def lit_module_from_checkpoint(checkpoint: dict[str, Any], **overrides: Any) -> IRSAMLitModule:
    """Rebuild the LightningModule stored in a ``train.py`` checkpoint and load its weights strictly.

    The network is rebuilt from the model config saved in the checkpoint (pretrained-weight paths
    are dropped: the weights come from the checkpoint itself).

    Arguments:
      checkpoint (dict): from :func:`irsam.utils.config.load_lightning_checkpoint`.
      overrides: keyword arguments of :class:`IRSAMLitModule` to replace (e.g. ``pd_fa_thresholds``).
    Returns:
      IRSAMLitModule: in eval mode, without optimiser.
    """
    hparams = dict(checkpoint["hyper_parameters"])
    model_cfg = OmegaConf.create(hparams["model_config"])
    model_cfg.net.checkpoint = None
    loss_cfg = hparams.get("loss_config")
    kwargs = {k: hparams[k] for k in ("layer_decay", "freeze", "metrics", "model_config",
                                      "loss_config", "train_image_size") if k in hparams}
    kwargs.update(overrides)
    module = IRSAMLitModule(net=hydra.utils.instantiate(model_cfg.net),
                            loss=hydra.utils.instantiate(OmegaConf.create(loss_cfg)), **kwargs)
    module.load_state_dict(checkpoint["state_dict"], strict=True)
    return module.eval()


def _write_curve(output_dir: Path, curve: dict[str, torch.Tensor]) -> None:
    """Write the Pd–Fa curve as CSV and as a PNG plot (Fa ×1e6 on a log axis)."""
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(["threshold", "Pd", "Fa", "IoU"])
    for values in zip(*(curve[k].tolist() for k in ("threshold", "Pd", "Fa", "IoU"))):
        writer.writerow(values)
    atomic_write_bytes(output_dir / "pd_fa_curve.csv", rows.getvalue().encode())

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5, 4))
    axis.plot((curve["Fa"] * 1e6).tolist(), (curve["Pd"] * 100).tolist(), marker="o")
    axis.set_xscale("symlog", linthresh=1.0)
    axis.set_xlabel("Fa (1e-6)")
    axis.set_ylabel("Pd (%)")
    axis.set_title("Pd-Fa over logit thresholds")
    axis.grid(True, alpha=0.3)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    plt.close(figure)
    atomic_write_bytes(output_dir / "pd_fa_curve.png", buffer.getvalue())


@task_wrapper
def evaluate(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Score ``cfg.ckpt_path`` on the dataset's test split and write results.json / results.md.

    Arguments:
      cfg (DictConfig): the composed ``evaluate.yaml`` config.
    Returns:
      tuple[dict, dict]: (results, the built objects).
    """
    checkpoint = load_lightning_checkpoint(cfg.ckpt_path)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    train_size = checkpoint["hyper_parameters"].get("train_image_size")
    if cfg.get("image_size") is None and train_size is not None:
        cfg.dataset.image_size = train_size
    elif cfg.get("image_size") is not None:
        cfg.dataset.image_size = cfg.image_size
    datamodule = hydra.utils.instantiate(cfg.dataset)
    thresholds = list(cfg.pd_fa_thresholds) if cfg.get("pd_fa_thresholds") else None
    overrides: dict[str, Any] = {"pd_fa_thresholds": thresholds}
    if cfg.get("metrics"):
        overrides["metrics"] = OmegaConf.to_container(cfg.metrics, resolve=True)
    model = lit_module_from_checkpoint(checkpoint, **overrides)

    output_dir = Path(cfg.paths.output_dir)
    callbacks = instantiate_group(cfg.get("callbacks"))
    if cfg.get("save_predictions"):
        callbacks.append(TestPredictionWriter(str(output_dir / "predictions")))
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks,
                                                 logger=instantiate_group(cfg.get("logger")) or False)
    trainer.test(model=model, datamodule=datamodule)

    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
    counts = count_parameters(model.net)
    images_per_s = model.test_images / max(model.test_seconds, 1e-9)
    results = {"checkpoint": str(cfg.ckpt_path), "dataset": cfg.dataset.get("name"),
               "split": "test", "images": model.test_images, "metrics": metrics,
               "params": counts, "images_per_s": images_per_s,
               "metric_options": OmegaConf.to_container(OmegaConf.create(model.hparams.metrics or {}))}
    table = metrics_table(metrics, "test/", extra={"Params (M)": counts["total"] / 1e6,
                                                   "images/s": images_per_s})
    if trainer.is_global_zero:
        write_results(output_dir, results, table)
        if model.test_curve is not None:
            _write_curve(output_dir, model.test_curve.compute())
    log.info("Evaluation of %s on %s (%d test images):\n%s", cfg.ckpt_path,
             cfg.dataset.get("name"), model.test_images, table)
    return results, {"datamodule": datamodule, "model": model, "trainer": trainer}
