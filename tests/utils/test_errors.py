# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Errors a user can fix (irsam.utils.errors): one base class, and on the command line one line
``error: <message>`` with exit code 2 (the traceback with verbose=true or HYDRA_FULL_ERROR=1);
misspelt trainer keys get the nearest Lightning Trainer argument."""

from __future__ import annotations

import errno

import pytest
from conftest import PROJECT_ROOT
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import InstantiationException
from omegaconf import OmegaConf

from irsam.data.errors import DatasetError
from irsam.data.io import ImageReadError
from irsam.metrics.compare import MixedProtocolError, ResultsFileError
from irsam.models.checkpoints import CheckpointError
from irsam.tasks.runner import (
    UserErrorCallback,
    check_command_line,
    check_config_keys,
    check_trainer_config,
    check_trainer_overrides,
)
from irsam.utils import ConfigError, MissingFileError, OutputWriteError, UserError
from irsam.utils.errors import EXIT_CODE, find_user_error


@pytest.fixture(autouse=True)
def _no_full_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start without HYDRA_FULL_ERROR, whatever the calling shell set."""
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)


def test_every_expected_error_is_a_user_error_and_keeps_its_builtin_type() -> None:
    cases = [
        (DatasetError("x"), ValueError),
        (ImageReadError("x"), ValueError),
        (CheckpointError("x"), RuntimeError),
        (OutputWriteError(errno.ENOSPC, "x"), OSError),
        (ConfigError("x"), ValueError),
        (MissingFileError("x"), FileNotFoundError),
        (ResultsFileError("x"), ValueError),
        (MixedProtocolError("x"), ValueError),
    ]
    for error, builtin in cases:
        assert isinstance(error, UserError) and isinstance(error, builtin), type(error)


def test_find_user_error_follows_hydra_instantiate_causes() -> None:
    cause = ConfigError("model.net.encoder_size=100 must be a multiple of 16")
    try:
        try:
            raise cause
        except ConfigError as inner:
            raise InstantiationException("Error in call to target ...") from inner
    except InstantiationException as outer:
        assert find_user_error(outer) is cause
    assert find_user_error(RuntimeError("a bug")) is None


def _failed_job(error: BaseException) -> JobReturn:
    """A Hydra job result that failed on ``error``."""
    return JobReturn(status=JobStatus.FAILED, _return_value=error)


def test_callback_prints_one_line_and_exits_with_code_2(capsys: pytest.CaptureFixture) -> None:
    """A dataset error raised inside Hydra's instantiate: the message alone, on stderr."""
    error = DatasetError("dataset root /data/NUDT does not exist: set dataset.root=<folder>")
    wrapped = InstantiationException("Error in call to target 'irsam.data.IRSTDDataModule'")
    wrapped.__cause__ = error
    with pytest.raises(SystemExit) as info:
        UserErrorCallback().on_job_end(OmegaConf.create({"verbose": False}), _failed_job(wrapped))
    assert info.value.code == EXIT_CODE
    assert capsys.readouterr().err == f"error: {error}\n"


def test_callback_keeps_tracebacks_of_bugs_and_when_asked(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    callback = UserErrorCallback()
    bug = _failed_job(KeyError("a bug"))
    callback.on_job_end(OmegaConf.create({"verbose": False}), bug)  # Hydra prints its traceback
    user = _failed_job(CheckpointError("checkpoint file x.ckpt is empty"))
    callback.on_job_end(OmegaConf.create({"verbose": True}), user)
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    callback.on_job_end(OmegaConf.create({"verbose": False}), user)
    callback.on_job_end(OmegaConf.create({}), JobReturn(status=JobStatus.COMPLETED))
    assert capsys.readouterr().err == ""


def test_a_file_where_the_run_folder_goes_is_one_line(
    tmp_path, capsys: pytest.CaptureFixture
) -> None:
    blocker = tmp_path / "logs"
    blocker.write_text("not a folder")
    config = OmegaConf.create(
        {"verbose": False, "hydra": {"run": {"dir": str(blocker / "train" / "runs" / "t")}}}
    )
    with pytest.raises(SystemExit) as info:
        UserErrorCallback().on_run_start(config)
    assert info.value.code == EXIT_CODE
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and f"{blocker} is a file, not a folder" in lines[0]
    assert "paths.log_dir=<folder>" in lines[0]
    config.hydra.run.dir = str(tmp_path / "free" / "runs")
    UserErrorCallback().on_run_start(config)  # nothing stands in the way: no exit


def test_misspelt_trainer_keys_name_the_nearest_argument() -> None:
    with pytest.raises(ConfigError) as info:
        check_trainer_overrides(["trainer=cpu", "trainer.max_epoch=1", "+trainer.acelerator=cpu"])
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("trainer.max_epoch is not an argument of Lightning's Trainer")
    assert lines[0].endswith("did you mean trainer.max_epochs?")
    assert lines[1].endswith("did you mean trainer.accelerator?")
    check_trainer_overrides(["trainer.max_epochs=1", "+trainer.detect_anomaly=true", "x=1"])
    with pytest.raises(ConfigError, match="lightning.ai"):
        check_trainer_overrides(["trainer.zzzz=1"])
    node = OmegaConf.create({"_target_": "lightning.pytorch.Trainer", "max_epoch": 3})
    with pytest.raises(ConfigError, match="trainer.max_epochs"):
        check_trainer_config(node)
    check_trainer_config(OmegaConf.create({"_target_": "builtins.dict", "max_epoch": 3}))
    check_trainer_config(None)


def test_command_line_check_is_one_line_and_exit_2(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        check_command_line(["trainer.max_epoch=1"])
    assert info.value.code == EXIT_CODE
    assert capsys.readouterr().err == (
        "error: trainer.max_epoch is not an argument of Lightning's Trainer: did you mean "
        "trainer.max_epochs?\n"
    )
    with pytest.raises(ConfigError):
        check_command_line(["trainer.max_epoch=1", "verbose=true"])
    check_command_line(["trainer.max_epochs=1"])


def test_an_overridden_key_the_config_lacks_names_the_nearest_key() -> None:
    """Hydra answers a misspelt key with "To append to your config use +"; the entry points name
    the key that exists instead, one line per unknown key."""
    conf = PROJECT_ROOT / "conf"
    with pytest.raises(ConfigError) as info:
        check_config_keys(["seeed=1", "dataset.loader_sise=64", "seed=3"], "train", conf)
    lines = str(info.value).splitlines()
    assert lines == [
        "seeed=1: the train config has no key seeed; did you mean seed? (a new key needs +seeed=1)",
        (
            "dataset.loader_sise=64: the train config has no key dataset.loader_sise; did you "
            "mean dataset.loader_size? (a new key needs +dataset.loader_sise=64)"
        ),
    ]
    with pytest.raises(ConfigError, match="did you mean metrics.fa_rule"):
        check_config_keys(["metrics.fa_rul=legacy_area"], "evaluate", conf)


def test_valid_overrides_sweeps_and_new_keys_pass_the_key_check() -> None:
    conf = PROJECT_ROOT / "conf"
    check_config_keys(["seed=3", "dataset=nudt_sirst", "trainer.max_epochs=2"], "train", conf)
    check_config_keys(["-m", "seed=1,2", "+extra_key=1", "~scheduler"], "train", conf)
    sweep = ["-m", "dataset=nudt_sirst,nuaa_sirst", "dataset.split=standard"]
    check_config_keys(sweep, "train", conf)  # the synthetic set has no split key; these do
    with pytest.raises(ConfigError, match="did you mean seed"):
        check_config_keys(["-m", "seed=1,2", "seeed=3"], "train", conf)
    check_config_keys(["--config-dir", "/elsewhere", "seeed=1"], "train", conf)  # Hydra's turn
    check_config_keys(["--cfg", "job", "seed=1"], "train", conf)


def test_missing_model_files_and_bad_task_choices_are_user_errors(tmp_path) -> None:
    """A missing model folder or ONNX file and an unknown export format are user errors (one line,
    exit 2), not raw tracebacks; they keep their built-in types for library callers."""
    from irsam.export import check_onnx_signature, run_export
    from irsam.pretrained import read_model_folder

    with pytest.raises(MissingFileError, match="model folder holds config.json") as folder:
        read_model_folder(tmp_path)
    with pytest.raises(MissingFileError, match="no such ONNX file") as onnx_file:
        check_onnx_signature(tmp_path / "missing.onnx")
    with pytest.raises(ConfigError, match="format='bogus'") as export_format:
        run_export(ckpt_path=tmp_path / "missing.ckpt", output=tmp_path / "out", format="bogus")
    assert isinstance(folder.value, FileNotFoundError) and isinstance(onnx_file.value, UserError)
    assert isinstance(export_format.value, ValueError)
