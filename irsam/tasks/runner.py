# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Hydra glue shared by the tasks: the task wrapper (extras, trainer keys, failures, sweep trials
that run out of memory), config-group instantiation, the optimised-metric lookup, and the
command-line handling of the errors a user can fix (:class:`~irsam.utils.errors.UserError`): the
checks made before Hydra composes (:func:`check_command_line`) and the Hydra callback
(:class:`UserErrorCallback`, ``conf/hydra/default.yaml``) that prints them as one line and exits
with code 2."""

from __future__ import annotations

import difflib
import functools
import inspect
import logging
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import hydra
import lightning as L
import torch
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from irsam.utils import atomic_write_bytes, get_logger
from irsam.utils.atomic import blocking_file
from irsam.utils.errors import EXIT_CODE, ConfigError, UserError, find_user_error
from irsam.utils.extras import check_overrides, check_target_extras

log = get_logger(__name__)


def instantiate_group(cfg: DictConfig | None) -> list[Any]:
    """Instantiate every ``_target_`` entry of a config group mapping (callbacks, loggers).

    Arguments:
      cfg (DictConfig | None): mapping name → config with ``_target_``; None gives an empty list.
    Returns:
      list[Any]: the instantiated objects in config order.
    """
    if not cfg:
        return []
    if not isinstance(cfg, DictConfig):
        raise TypeError(f"expected a mapping of configs, got {type(cfg).__name__}")
    check_target_extras(cfg)  # e.g. logger=wandb without the wandb extra: the pip command
    return [
        hydra.utils.instantiate(node)
        for node in cfg.values()
        if isinstance(node, DictConfig) and "_target_" in node
    ]


def apply_extras(cfg: DictConfig) -> None:
    """Apply ``cfg.extras``: silence warnings and print/save the config tree (rank 0).

    Arguments:
      cfg (DictConfig): the composed task config.
    """
    extras = cfg.get("extras") or {}
    if extras.get("ignore_warnings"):
        warnings.filterwarnings("ignore")
    if extras.get("print_config"):
        text = OmegaConf.to_yaml(cfg, resolve=False)
        log.info("Composed config:\n%s", text)
        output_dir = cfg.get("paths", {}).get("output_dir")
        if output_dir and L.fabric.utilities.rank_zero.rank_zero_only.rank == 0:
            atomic_write_bytes(Path(output_dir) / "config_tree.log", text.encode())
            atomic_write_bytes(
                Path(output_dir) / "tags.log", str(list(cfg.get("tags") or [])).encode()
            )


def is_out_of_memory(err: BaseException) -> bool:
    """Whether an error is an accelerator or host allocation failure.

    Arguments:
      err (BaseException): the caught error.
    Returns:
      bool: True for ``torch.OutOfMemoryError`` (GPUs) and for the ``RuntimeError`` that
      PyTorch's CPU allocator raises when an allocation fails.
    """
    return isinstance(err, torch.OutOfMemoryError) or (
        isinstance(err, RuntimeError) and "can't allocate memory" in str(err)
    )


def task_wrapper(
    task: Callable[[DictConfig], tuple[dict, dict]],
) -> Callable[[DictConfig], tuple[dict, dict]]:
    """Run a task with extras applied, log failures with the run folder, and close wandb runs.

    In a multirun, a trial that runs out of memory logs the error and returns no
    ``optimized_metric`` instead of raising: hydra-optuna-sweeper records the trial as failed and,
    with ``max_failure_rate: 1.0`` (``conf/hparams_search/irsam_optuna.yaml``), goes on; a plain
    grid moves on to its next job.

    Arguments:
      task (Callable): ``task(cfg) -> (metric_dict, object_dict)``.
    Returns:
      Callable: the wrapped task.
    """

    @functools.wraps(task)
    def wrapped(cfg: DictConfig) -> tuple[dict, dict]:
        check_trainer_config(cfg.get("trainer"))
        apply_extras(cfg)
        try:
            return task(cfg)
        except (torch.OutOfMemoryError, RuntimeError) as err:
            from hydra.core.hydra_config import HydraConfig

            multirun = HydraConfig.initialized() and HydraConfig.get().mode.name == "MULTIRUN"
            if not (multirun and is_out_of_memory(err)):
                raise
            log.exception("out of memory: this sweep trial is marked failed")
            name = cfg.get("optimized_metric") or "val/IoU_best"
            return {name: float("nan")}, {"optimized_metric": None}
        finally:
            log.info("Output dir: %s", cfg.paths.output_dir)
            try:
                import wandb

                if wandb.run is not None:
                    wandb.finish()
            except ImportError:
                pass

    return wrapped


def metric_value(metrics: dict[str, Any], name: str | None) -> float | None:
    """Read a float from a metric dict (``trainer.callback_metrics``), for sweeps.

    Arguments:
      metrics (dict): metric name → tensor or float.
      name (str | None): key to read; None returns None.
    Returns:
      float | None: the value.
    """
    if not name:
        return None
    if name not in metrics:
        raise KeyError(f"optimized_metric={name!r} was not logged; available: {sorted(metrics)}")
    value = metrics[name]
    return float(value.item() if hasattr(value, "item") else value)


TRAINER_DOCS = "https://lightning.ai/docs/pytorch/stable/common/trainer.html"
"""Where every argument of Lightning's Trainer is described."""
_TRAINER_OVERRIDE = re.compile(r"^\+{0,2}trainer\.([^.=]+)")


@functools.cache
def trainer_arguments() -> frozenset[str]:
    """The keyword arguments of ``lightning.pytorch.Trainer`` (the keys a ``trainer`` node may
    hold besides Hydra's ``_target_``-style keys).

    Returns:
      frozenset[str]: e.g. ``{"max_epochs", "accelerator", ...}``.
    """
    parameters = inspect.signature(L.Trainer.__init__).parameters
    return frozenset(name for name in parameters if name != "self")


def check_trainer_keys(keys: Iterable[str]) -> None:
    """Refuse trainer keys that are no argument of Lightning's Trainer, naming the nearest one.

    Arguments:
      keys (Iterable[str]): keys of the ``trainer`` node (or of ``trainer.<key>=`` overrides);
        Hydra's own keys (``_target_``, ``_partial_`` ...) are skipped.
    Raises:
      ConfigError: one line per unknown key, e.g. "trainer.max_epoch is not an argument of
        Lightning's Trainer: did you mean trainer.max_epochs?".
    """
    known = trainer_arguments()
    lines = []
    for key in dict.fromkeys(k for k in keys if not k.startswith("_") and k not in known):
        close = difflib.get_close_matches(key, sorted(known), n=1)
        hint = f"did you mean trainer.{close[0]}?" if close else f"the arguments: {TRAINER_DOCS}"
        lines.append(f"trainer.{key} is not an argument of Lightning's Trainer: {hint}")
    if lines:
        raise ConfigError("\n".join(lines))


def check_trainer_config(node: Any) -> None:
    """:func:`check_trainer_keys` on a composed ``trainer`` node whose ``_target_`` is Lightning's
    Trainer (a typo in a config file, or a ``+trainer.<key>=`` override); other nodes pass.

    Arguments:
      node (Any): ``cfg.trainer`` (a DictConfig, or None when the task has no trainer).
    Raises:
      ConfigError: see :func:`check_trainer_keys`.
    """
    if not isinstance(node, DictConfig) or "_target_" not in node:
        return
    target = hydra.utils.get_class(str(node._target_))
    if isinstance(target, type) and issubclass(target, L.Trainer):
        check_trainer_keys(node.keys())


def check_trainer_overrides(argv: Sequence[str]) -> None:
    """:func:`check_trainer_keys` on the ``trainer.<key>=`` overrides of a command line, before
    Hydra composes: Hydra would answer a misspelt key with "To append to your config use +",
    advice that then fails inside the Trainer.

    Arguments:
      argv (Sequence[str]): command-line arguments, e.g. ``sys.argv[1:]``.
    Raises:
      ConfigError: see :func:`check_trainer_keys`.
    """
    keys = [m.group(1) for m in map(_TRAINER_OVERRIDE.match, argv) if m]
    if keys:
        check_trainer_keys(keys)


_HYDRA_FLAGS_WITH_VALUE = frozenset({"--cfg", "-c", "--package", "-p", "--info", "-i"})
"""Hydra command-line flags followed by a value (skipped by :func:`check_config_keys`)."""

_OWN_CONFIG_FLAGS = frozenset(
    {"--config-dir", "-cd", "--config-path", "-cp", "--config-name", "-cn", "--experimental-rerun"}
)
"""Flags that change which configs compose: :func:`check_config_keys` leaves those runs to Hydra."""

_UNKNOWN_KEY = re.compile(r"Could not override '([^']+)'")


def _flat_keys(node: Any, prefix: str = "") -> list[str]:
    """Every dotted key of a plain nested mapping (``OmegaConf.to_container`` output)."""
    keys = []
    if isinstance(node, dict):
        for key, value in node.items():
            keys.append(f"{prefix}{key}")
            keys.extend(_flat_keys(value, f"{prefix}{key}."))
    return keys


def check_config_keys(
    argv: Sequence[str], config_name: str, config_dir: str | os.PathLike | None = None
) -> None:
    """Refuse ``key=value`` overrides of keys the composed config does not have, naming the
    nearest existing key (Hydra itself answers "To append to your config use +key=...", which
    hides a typo). A sweep is checked with its first value; Hydra's own keys, interval sweeps and
    runs with other config folders are left to Hydra, as is any other composition error.

    Arguments:
      argv (Sequence[str]): command-line arguments, e.g. ``sys.argv[1:]``.
      config_name (str): the task's primary config, e.g. ``train``.
      config_dir (str | PathLike | None): the config folder (the repository's ``conf/``); None =
        the configs shipped in the package (``irsam.conf``).
    Raises:
      ConfigError: one line per unknown key, e.g. "seeed=1: the train config has no key seeed;
        did you mean seed? (a new key needs +seeed=...)".
    """
    from hydra import compose, initialize_config_dir, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import ConfigCompositionException

    args: list[str] = []
    skip_value = False
    for arg in argv:
        if arg.split("=")[0] in _OWN_CONFIG_FLAGS:
            return
        if skip_value:
            skip_value = False
        elif arg.startswith("-"):
            skip_value = arg in _HYDRA_FLAGS_WITH_VALUE
        else:
            args.append(arg)
    try:
        parsed = OverridesParser.create().parse_overrides(args)
    except Exception:  # noqa: BLE001 - a syntax error: Hydra reports it with its own message
        return
    overrides = []
    for override in parsed:
        if override.key_or_group.startswith("hydra"):
            continue
        if not override.is_sweep_override():
            overrides.append(override.input_line)
            continue
        try:  # a sweep is checked with its first value (a group sweep selects other keys)
            first = next(override.sweep_string_iterator())
        except Exception:  # noqa: BLE001 - an interval sweep: nothing to compose with
            return
        overrides.append(f"{override.get_key_element()}={first}")
    if not overrides or GlobalHydra.instance().is_initialized():
        return
    context = (
        initialize_config_module("irsam.conf", version_base="1.3")
        if config_dir is None
        else initialize_config_dir(str(Path(config_dir).resolve()), version_base="1.3")
    )
    unknown: list[tuple[str, str]] = []
    with context:
        remaining = list(overrides)
        for _ in range(len(overrides) + 1):
            try:
                config = compose(config_name, overrides=remaining)
            except ConfigCompositionException as error:
                match = _UNKNOWN_KEY.search(str(error))
                bad = [o for o in remaining if match and o.split("=")[0] == match.group(1)]
                if not bad:
                    return
                unknown.append((match.group(1), bad[0]))
                remaining.remove(bad[0])
                continue
            except Exception:  # noqa: BLE001 - missing groups, plugins ...: Hydra reports them
                return
            break
        else:
            return
    if not unknown:
        return
    keys = _flat_keys(OmegaConf.to_container(config, resolve=False))
    lines = []
    for key, override in unknown:
        close = difflib.get_close_matches(key, keys, n=1, cutoff=0.7)
        hint = f"did you mean {close[0]}?" if close else f"see conf/{config_name}.yaml"
        lines.append(
            f"{override}: the {config_name} config has no key {key}; {hint} "
            f"(a new key needs +{override})"
        )
    raise ConfigError("\n".join(lines))


def check_command_line(
    argv: Sequence[str], config_name: str | None = None, config_dir: str | os.PathLike | None = None
) -> None:
    """The checks an entry point makes before Hydra composes its config: the trainer keys
    (:func:`check_trainer_overrides`), the Hydra plugins the overrides need
    (:func:`irsam.utils.extras.check_overrides`) and, with ``config_name``, every overridden key
    (:func:`check_config_keys`). A :class:`UserError` is printed as one line,
    ``error: <message>``, and the process exits with code 2 (the traceback instead with
    ``verbose=true`` or ``HYDRA_FULL_ERROR=1``).

    Arguments:
      argv (Sequence[str]): command-line arguments, e.g. ``sys.argv[1:]``.
      config_name (str | None): the task's primary config (``train``, ``evaluate``, ...); None
        skips the key check.
      config_dir (str | PathLike | None): see :func:`check_config_keys`.
    """
    try:
        check_overrides(argv)
        check_trainer_overrides(argv)
        if config_name is not None:
            check_config_keys(argv, config_name, config_dir)
    except UserError as error:
        verbose = any(re.fullmatch(r"\+{0,2}verbose=(?i:true)", arg) for arg in argv)
        if _wants_traceback(verbose):
            raise
        exit_with_user_error(error)


def _wants_traceback(verbose: Any) -> bool:
    """Whether the user asked for tracebacks (``verbose=true`` or ``HYDRA_FULL_ERROR=1``)."""
    return bool(verbose) or os.environ.get("HYDRA_FULL_ERROR") == "1"


def exit_with_user_error(error: UserError, raised: BaseException | None = None) -> NoReturn:
    """Print ``error: <message>`` on stderr, record the traceback in the run's log file (when one
    is open), and exit with code 2.

    Arguments:
      error (UserError): the error to report.
      raised (BaseException | None): the error as raised (e.g. Hydra's wrapper around
        ``error``), whose traceback goes to the log file; None = ``error``.
    """
    raised = raised or error
    record = log.makeRecord(
        log.name,
        logging.ERROR,
        __file__,
        0,
        "error: %s",
        (error,),
        (type(raised), raised, raised.__traceback__),
    )
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
    sys.stderr.write(f"error: {error}\n")
    sys.stderr.flush()
    sys.exit(EXIT_CODE)


class UserErrorCallback(Callback):
    """Hydra callback (``conf/hydra/default.yaml``): a job stopped by a :class:`UserError`
    prints one line, ``error: <message>``, and the process exits with code 2, instead of Hydra's
    traceback; ``verbose=true`` or ``HYDRA_FULL_ERROR=1`` keeps the traceback. The run folder is
    checked first: a file standing where it should be created is reported the same way.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Check that the run folder (``hydra.run.dir``) can be created."""
        self._check_folder(config, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Check that the sweep folder (``hydra.sweep.dir``) can be created."""
        self._check_folder(config, "hydra.sweep.dir")

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        """Report a job that failed on a :class:`UserError` and exit with code 2."""
        if job_return.status != JobStatus.FAILED:
            return
        # the error itself: reading ``return_value`` would print a line and raise it
        raised = job_return._return_value
        error = find_user_error(raised) if isinstance(raised, BaseException) else None
        if error is not None and not _wants_traceback(config.get("verbose")):
            exit_with_user_error(error, raised)

    @staticmethod
    def _check_folder(config: DictConfig, key: str) -> None:
        """Exit with a one-line error when a file stands at the folder ``key`` or a parent."""
        folder = OmegaConf.select(config, key)
        blocker = None if folder is None else blocking_file(folder)
        if blocker is None:
            return
        error = ConfigError(
            f"cannot create the run folder {folder}: {blocker} is a file, not a folder. Move or "
            "delete that file, or choose another folder (paths.log_dir=<folder>)."
        )
        if _wants_traceback(config.get("verbose")):
            raise error
        exit_with_user_error(error)
