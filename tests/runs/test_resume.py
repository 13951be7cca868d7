# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Resume: the best checkpoint and ``val/IoU_best`` continue, ``ckpt_path=auto`` stays within
one experiment and skips broken files, and the temporary files of a killed save are removed."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import PROJECT_ROOT, compose_config

from irsam.models.checkpoints import CheckpointError
from irsam.resume import (
    AtomicCheckpointIO,
    ResumableModelCheckpoint,
    ResumeState,
    experiment_identity,
    resolve_ckpt_path,
    selected_checkpoint,
)

# ---------------------------------------------------------------------------------------------
# Subprocess runs of train.py, killed with SIGKILL by the callbacks of resume_faults.py.
# ---------------------------------------------------------------------------------------------

RUN_OVERRIDES = [
    "trainer=cpu",
    "~logger",
    "dataset.synthetic.native_size=32",
    "dataset.loader_size=32",
    "dataset.synthetic.num_train=8",
    "dataset.synthetic.num_val=8",
    "dataset.synthetic.num_test=4",
    "dataset.batch_size=4",
    "dataset.eval_batch_size=8",
    "dataset.augmentation.mode=resize",  # no random augmentation (its reseed is tested below)
    "dataset.augmentation.hflip_p=0",
    "model.net.encoder_size=64",
    "optimizer.lr=5e-4",
    "~scheduler",  # constant LR
    "trainer.max_epochs=3",
    "trainer.enable_model_summary=false",
    "trainer.enable_progress_bar=false",
    "callbacks.sample_predictions.every_n_epochs=100",
    "extras.print_config=false",
    "test=false",
]
"""Three 2-step epochs on 32² images. With seed 42 the validation IoU of this recipe is highest
at epoch 1 and lower at epoch 2 (the test checks that the best is not at the last epoch)."""

ENV = {
    "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).parent), str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")]
    ),
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


def _train(run_dir: Path, log_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    """Run train.py with :data:`RUN_OVERRIDES` into ``run_dir`` (logs root ``log_dir``)."""
    return subprocess.run(
        [
            sys.executable,
            "train.py",
            f"hydra.run.dir={run_dir}",
            f"paths.log_dir={log_dir}",
            *RUN_OVERRIDES,
            *extra,
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, **ENV},
    )


def _ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


def _record(path: Path, kill_after_epoch: int | None = None) -> list[str]:
    """Overrides adding resume_faults.py's EpochRecorder."""
    extra = [
        "+callbacks.record._target_=resume_faults.EpochRecorder",
        f"+callbacks.record.path={path}",
    ]
    if kill_after_epoch is not None:
        extra.append(f"+callbacks.record.kill_after_epoch={kill_after_epoch}")
    return extra


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_resume_after_sigkill_keeps_the_best_checkpoint_and_val_iou_best(tmp_path: Path) -> None:
    """Killed right after the epoch with the best IoU so far and resumed with ckpt_path=auto, a
    run ends with the best checkpoint (name and score) of an uninterrupted run, and its logged
    val/IoU_best never drops below the best reached before the kill."""
    reference = _rows_of_uninterrupted_run(tmp_path)
    scores = [row["iou"] for row in reference]
    best_epoch = scores.index(max(scores))
    print("uninterrupted run:", reference)
    assert best_epoch < len(scores) - 1, f"recipe not fit for this test: IoU per epoch {scores}"

    logs = tmp_path / "logs"
    killed = _train(
        logs / "train" / "runs" / "killed",
        logs,
        *_record(tmp_path / "killed.jsonl", kill_after_epoch=best_epoch),
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    before = _rows(tmp_path / "killed.jsonl")
    assert [row["epoch"] for row in before] == list(range(best_epoch + 1))
    assert Path(before[-1]["best_path"]).name == f"epoch_{best_epoch:03d}.ckpt"
    killed_files = logs / "train" / "runs" / "killed" / "checkpoints"
    assert (killed_files / "last.ckpt").stat().st_ino == Path(
        before[-1]["best_path"]
    ).stat().st_ino, "last.ckpt of an improving epoch is a hard link of that epoch's top-k file"

    resumed_dir = logs / "train" / "runs" / "resumed"
    resumed = _ok(_train(resumed_dir, logs, "ckpt_path=auto", *_record(tmp_path / "resumed.jsonl")))
    assert "resuming from" in resumed.stdout + resumed.stderr
    after = _rows(tmp_path / "resumed.jsonl")
    print("killed run:", before, "resumed run:", after)
    assert [row["epoch"] for row in after] == list(range(best_epoch + 1, len(reference)))
    for row in after:  # different processes: the same value up to float32 logging
        assert row["iou_best"] >= before[-1]["iou_best"] - 1e-6, (before, after)
    final, expected = after[-1], reference[-1]
    assert Path(final["best_path"]).name == Path(expected["best_path"]).name
    assert final["best_score"] == pytest.approx(expected["best_score"], rel=1e-4, abs=1e-6)
    assert final["iou_best"] == pytest.approx(expected["iou_best"], rel=1e-4, abs=1e-6)
    best_file = Path(final["best_path"])
    assert best_file.parent == resumed_dir / "checkpoints" and best_file.is_file()
    assert torch.load(best_file, map_location="cpu", weights_only=True)["epoch"] == best_epoch
    last_file = resumed_dir / "checkpoints" / "last.ckpt"
    assert last_file.stat().st_ino != best_file.stat().st_ino, (
        "a later epoch's last.ckpt is its own"
    )
    assert torch.load(last_file, map_location="cpu", weights_only=True)["epoch"] == len(scores) - 1


def _rows_of_uninterrupted_run(tmp_path: Path) -> list[dict]:
    """The per-epoch record of the same recipe run without interruption (own logs root)."""
    _ok(
        _train(
            tmp_path / "reference" / "run",
            tmp_path / "reference",
            *_record(tmp_path / "reference.jsonl"),
        )
    )
    return _rows(tmp_path / "reference.jsonl")


@pytest.mark.slow
def test_sigkill_during_a_checkpoint_save_then_auto_resumes_and_removes_the_leftover(
    tmp_path: Path,
) -> None:
    """A run killed half-way through writing a checkpoint keeps its previous files intact; the
    next ckpt_path=auto run removes the partial temporary file, resumes from the last valid
    last.ckpt and finishes."""
    logs = tmp_path / "logs"
    killed_dir = logs / "train" / "runs" / "killed"
    killed = _train(
        killed_dir,
        logs,
        "+callbacks.kill._target_=resume_faults.KillDuringSave",
        "+callbacks.kill.epoch=1",
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    folder = killed_dir / "checkpoints"
    leftovers = list(folder.glob(AtomicCheckpointIO.LEFTOVER_PATTERN))
    assert len(leftovers) == 1 and leftovers[0].stat().st_size > 0, list(folder.iterdir())
    last = torch.load(folder / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["epoch"] == 0, "the interrupted save must not have replaced last.ckpt"

    resumed_dir = logs / "train" / "runs" / "resumed"
    result = _ok(_train(resumed_dir, logs, "ckpt_path=auto"))
    output = result.stdout + result.stderr
    assert not leftovers[0].exists(), "the partial temporary file is still there"
    assert f"Removed {leftovers[0]}" in output
    assert f"resuming from {folder / 'last.ckpt'}" in output
    final = torch.load(resumed_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert final["epoch"] == 2 and final["global_step"] == 6, "last.ckpt is not the last epoch"


def _in_process_config(run_dir: Path, log_dir: Path, *extra: str):
    """``train.yaml`` with :data:`RUN_OVERRIDES` (then ``extra``) for an in-process run."""
    cfg = compose_config("train", run_dir, [*RUN_OVERRIDES, *extra])
    cfg.paths.log_dir = str(log_dir)
    return cfg


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_resume_of_a_moved_run_folder_tests_the_validation_selected_checkpoint(
    tmp_path: Path,
) -> None:
    """A one-epoch run whose folder is then moved resumes from the moved last.ckpt (explicit
    path, and ckpt_path=auto) for two more epochs: its best checkpoint is found in the moved
    folder and brought into the new run, and, as the later epochs score lower, it is the one
    tested (not the best of the resumed epochs)."""
    from irsam.tasks.train import train

    logs = tmp_path / "logs"
    first_dir = logs / "train" / "runs" / "first"
    train(_in_process_config(first_dir, logs, "trainer.max_epochs=1"))
    moved = logs / "train" / "runs" / "archive" / "first"
    moved.parent.mkdir(parents=True)
    shutil.move(first_dir, moved)

    for requested, run_dir in (
        (moved / "checkpoints" / "last.ckpt", tmp_path / "explicit"),
        ("auto", logs / "train" / "runs" / "auto"),
    ):
        metrics, built = train(
            _in_process_config(run_dir, logs, "test=true", f"ckpt_path={requested}")
        )
        trainer = built["trainer"]
        files = run_dir / "checkpoints"
        scores = {
            path.name: float(torch.load(path, weights_only=True)["irsam_val_iou_best"])
            for path in sorted(files.glob("epoch_*.ckpt"))
        }
        assert torch.load(files / "last.ckpt", weights_only=True)["epoch"] == 2
        assert metrics["val/IoU_best"] == pytest.approx(scores["epoch_000.ckpt"]), (
            f"recipe not fit for this test: epoch 0 must stay the best, got {scores}"
        )
        assert Path(trainer.ckpt_path) == files / "epoch_000.ckpt", (requested, scores)
        assert "test/IoU" in metrics


# ---------------------------------------------------------------------------------------------
# ckpt_path resolution on hand-made checkpoints (no training).
# ---------------------------------------------------------------------------------------------

SYNTHETIC = {"name": "synthetic", "root": None, "split": "default"}
IRSAM_LOSS = {"_target_": "irsam.losses.CompositeLoss", "name": "irsam", "terms": {"w": 5.0}}
NET = {"_target_": "irsam.models.build.build_irsam_tiny", "encoder_size": 64}


def _fake_checkpoint(
    path: Path, data: dict, loss: dict = IRSAM_LOSS, net: dict = NET, task: str = "train"
) -> Path:
    """Write a small file with the layout ``train.py`` checkpoints have."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "state_dict": {"net.w": torch.zeros(1)},
            "hyper_parameters": {"net": net, "loss": loss},
            "datamodule_hyper_parameters": data,
            "irsam_task_name": task,
        },
        path,
    )
    return path


def _identity(data: dict, loss: dict = IRSAM_LOSS, net: dict = NET) -> dict:
    return experiment_identity("train", {"net": net, "loss": loss}, data)


def test_auto_does_not_resume_another_datasets_run(tmp_path: Path, caplog) -> None:
    """A NUDT-SIRST run with ckpt_path=auto starts fresh, saying which keys differ, instead of
    resuming the synthetic quick-start run of the same task."""
    _fake_checkpoint(tmp_path / "train" / "runs" / "quick" / "checkpoints" / "last.ckpt", SYNTHETIC)
    nudt = {"name": "nudt_sirst", "root": str(tmp_path / "NUDT-SIRST"), "split": "irsam"}
    with caplog.at_level(logging.INFO, logger="irsam.resume"):
        assert resolve_ckpt_path("auto", str(tmp_path), "train", _identity(nudt)) is None
    text = caplog.text
    assert "dataset.name: 'synthetic' (checkpoint) vs 'nudt_sirst' (this run)" in text
    assert "dataset.split: 'default' (checkpoint) vs 'irsam' (this run)" in text
    assert "starting fresh" in text and "none of the 1 runs" in text


def test_auto_picks_the_newest_matching_run_and_skips_broken_files(tmp_path: Path, caplog) -> None:
    """Runs of another loss are skipped; a truncated last.ckpt is reported and the newest valid
    epoch checkpoint of the same run is taken; a temporary file is never a candidate."""
    runs = tmp_path / "train" / "runs"
    wanted = _fake_checkpoint(runs / "a" / "checkpoints" / "epoch_001.ckpt", SYNTHETIC)
    _fake_checkpoint(runs / "a" / "checkpoints" / "epoch_000.ckpt", SYNTHETIC)
    os.utime(runs / "a" / "checkpoints" / "epoch_000.ckpt", (1, 1))  # older than epoch_001
    broken = runs / "a" / "checkpoints" / "last.ckpt"
    broken.write_bytes(wanted.read_bytes()[:100])  # truncated by a crash outside our writer
    (runs / "a" / "checkpoints" / ".last.ckpt.x1y2.tmp").write_bytes(wanted.read_bytes())
    other_loss = {**IRSAM_LOSS, "terms": {"w": 1.0}}
    newer = _fake_checkpoint(runs / "b" / "checkpoints" / "last.ckpt", SYNTHETIC, loss=other_loss)
    os.utime(newer, (2e9, 2e9))  # the newest run of the task
    with caplog.at_level(logging.INFO, logger="irsam.resume"):
        chosen = resolve_ckpt_path("auto", str(tmp_path), "train", _identity(SYNTHETIC))
    assert chosen == str(wanted)
    text = caplog.text
    assert "loss.terms.w: 1.0 (checkpoint) vs 5.0 (this run)" in text
    assert f"skipping {broken}" in text and "truncated or corrupt" in text


def test_auto_matches_the_task_name(tmp_path: Path) -> None:
    """A checkpoint stamped with another task name (copied into this task's folder) is not
    resumed."""
    _fake_checkpoint(tmp_path / "train" / "r" / "checkpoints" / "last.ckpt", SYNTHETIC, task="x")
    assert resolve_ckpt_path("auto", str(tmp_path), "train", _identity(SYNTHETIC)) is None


def test_explicit_checkpoint_of_another_dataset_or_loss_is_refused(tmp_path: Path, caplog) -> None:
    """ckpt_path=<file> of a run on another dataset or loss: one error naming the file, the keys
    and the fix; another network keeps its own message; the same dataset in another folder is
    resumed with a warning."""
    path = _fake_checkpoint(tmp_path / "last.ckpt", SYNTHETIC)
    nuaa = {"name": "nuaa_sirst", "root": str(tmp_path), "split": "irsam"}
    with pytest.raises(CheckpointError) as info:
        resolve_ckpt_path(str(path), str(tmp_path), "train", _identity(nuaa))
    message = str(info.value)
    assert str(path) in message and "dataset.name: 'synthetic'" in message
    assert "model.net.checkpoint=" in message and "drop the dataset/loss overrides" in message
    with pytest.raises(CheckpointError, match=r"loss\.terms\.w: 5\.0 \(checkpoint\) vs 2\.0"):
        resolve_ckpt_path(
            str(path),
            str(tmp_path),
            "train",
            _identity(SYNTHETIC, {**IRSAM_LOSS, "terms": {"w": 2.0}}),
        )
    mobile = {**NET, "_target_": "irsam.models.build.build_mobile_sam"}
    with pytest.raises(
        CheckpointError, match="holds a irsam.models.build.build_irsam_tiny network"
    ):
        resolve_ckpt_path(str(path), str(tmp_path), "train", _identity(SYNTHETIC, net=mobile))
    assert resolve_ckpt_path(str(path), str(tmp_path), "train", _identity(SYNTHETIC)) == str(path)
    moved = _fake_checkpoint(tmp_path / "moved.ckpt", {**nuaa, "root": "/old/disk/NUAA-SIRST"})
    with caplog.at_level(logging.WARNING, logger="irsam.resume"):
        assert resolve_ckpt_path(str(moved), str(tmp_path), "train", _identity(nuaa)) == str(moved)
    assert "dataset.root: '/old/disk/NUAA-SIRST' (checkpoint)" in caplog.text


def test_remove_leftovers_keeps_files_that_a_process_is_writing(tmp_path: Path, caplog) -> None:
    """Leftover temporary files are removed and logged with their size; one held open by a
    live process (a run saving right now) stays; final checkpoints are never touched."""
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    stale = folder / ".epoch_000.ckpt.abc123.tmp"
    stale.write_bytes(b"x" * 2_000_000)
    busy = folder / ".last.ckpt.def456.tmp"
    busy.write_bytes(b"y")
    final = folder / "last.ckpt"
    final.write_bytes(b"z")
    with open(busy, "rb"), caplog.at_level(logging.INFO, logger="irsam.resume"):
        removed = AtomicCheckpointIO.remove_leftovers([tmp_path, tmp_path / "absent"])
    assert removed == [stale] and not stale.exists() and busy.exists() and final.exists()
    assert f"Removed {stale} (2.0 MB)" in caplog.text


# ---------------------------------------------------------------------------------------------
# In-process train.py runs (seconds).
# ---------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("one_thread")
def test_auto_for_a_run_with_another_loss_starts_fresh(tmp_path: Path) -> None:
    """Training with another loss and ckpt_path=auto does not continue the earlier run (which
    already reached max_epochs: resuming it would train nothing and write no checkpoint)."""
    from irsam.tasks.train import train

    logs = tmp_path / "logs"
    one_epoch = [o for o in RUN_OVERRIDES if "max_epochs" not in o] + ["trainer.max_epochs=1"]
    first = compose_config("train", logs / "train" / "runs" / "first", one_epoch)
    first.paths.log_dir = str(logs)
    train(first)
    second_dir = logs / "train" / "runs" / "second"
    second = compose_config(
        "train",
        second_dir,
        one_epoch + ["loss=softiou", "ckpt_path=auto"],
    )
    second.paths.log_dir = str(logs)
    train(second)
    last = torch.load(second_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["epoch"] == 0 and last["global_step"] == 2
    assert last["hyper_parameters"]["loss"]["name"] == "softiou"


def _bookkeeping(tmp_path: Path, old_dir: Path, resumed: Path) -> ResumableModelCheckpoint:
    """A checkpoint callback of a new run that resumes ``resumed``, whose stored bookkeeping
    names files in ``old_dir`` (epoch 1 the best, IoU 0.5)."""
    callback = ResumableModelCheckpoint(
        dirpath=str(tmp_path / "new" / "checkpoints"), monitor="val/IoU", mode="max"
    )
    trainer = type("Trainer", (), {"ckpt_path": str(resumed)})()
    callback.on_load_checkpoint(trainer, None, {})
    best = str(old_dir / "epoch_001.ckpt")
    callback.load_state_dict(
        {
            "dirpath": str(old_dir),
            "best_model_path": best,
            "best_model_score": torch.tensor(0.5),
            "best_k_models": {best: torch.tensor(0.5)},
            "kth_best_model_path": best,
            "kth_value": torch.tensor(0.5),
            "last_model_path": str(old_dir / "last.ckpt"),
        }
    )
    return callback


def test_bookkeeping_of_a_moved_run_folder_is_found_next_to_the_resumed_checkpoint(
    tmp_path: Path,
) -> None:
    """The stored best checkpoint is gone from its recorded folder but sits next to the resumed
    last.ckpt (the run folder was moved): it is brought into the new run and stays selected."""
    moved = tmp_path / "archive" / "run" / "checkpoints"
    moved.mkdir(parents=True)
    (moved / "epoch_001.ckpt").write_bytes(b"best")
    (moved / "last.ckpt").write_bytes(b"last")
    callback = _bookkeeping(tmp_path, tmp_path / "gone" / "checkpoints", moved / "last.ckpt")
    adopted = tmp_path / "new" / "checkpoints" / "epoch_001.ckpt"
    assert callback.best_model_path == str(adopted) and adopted.read_bytes() == b"best"
    assert float(callback.best_model_score) == 0.5 and list(callback.best_k_models) == [
        str(adopted)
    ]
    assert selected_checkpoint(callback) == str(adopted)


def test_a_lost_validation_selected_checkpoint_is_not_silently_replaced(tmp_path: Path) -> None:
    """The stored best checkpoint exists nowhere: the test after the fit refuses to use a worse
    checkpoint of the resumed epochs (one error naming the file, its score and the fix); a
    resumed epoch that scores better is the validation-selected one and is used."""
    old_dir = tmp_path / "gone" / "checkpoints"
    callback = _bookkeeping(tmp_path, old_dir, tmp_path / "elsewhere" / "last.ckpt")
    assert callback.best_model_path == "" and callback.best_k_models == {}
    worse = str(tmp_path / "new" / "checkpoints" / "epoch_002.ckpt")
    callback.best_model_path, callback.best_model_score = worse, torch.tensor(0.4)
    with pytest.raises(CheckpointError) as info:
        selected_checkpoint(callback)
    message = str(info.value)
    assert str(old_dir / "epoch_001.ckpt") in message and "val/IoU=0.5" in message
    assert "evaluate.py ckpt_path=" in message and worse in message
    callback.best_model_score = torch.tensor(0.6)
    assert selected_checkpoint(callback) == worse
    assert selected_checkpoint(None) == ""


def test_rng_state_holds_cuda_states_and_restores_without_them() -> None:
    """Checkpoints store a ``cuda`` entry (the CUDA generator states; empty while CUDA is unused);
    restoring a state without it, or with an empty one, restores the other generators."""
    hook = ResumeState("train")
    checkpoint: dict = {}
    torch.manual_seed(3)
    hook.on_save_checkpoint(None, None, checkpoint)
    state = checkpoint[ResumeState.RNG_KEY]
    assert "cuda" in state
    if not torch.cuda.is_initialized():
        assert state["cuda"] == []
    expected = torch.rand(3)
    for variant in ({k: v for k, v in state.items() if k != "cuda"}, {**state, "cuda": []}):
        torch.manual_seed(4)
        ResumeState._restore_rng(variant)
        assert torch.equal(torch.rand(3), expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_rng_state_restores_the_cuda_generators() -> None:
    """On a CUDA machine the saved CUDA generator states come back on restore."""
    hook = ResumeState("train")
    torch.cuda.manual_seed_all(5)
    torch.rand(1, device="cuda")  # CUDA is in use
    checkpoint: dict = {}
    hook.on_save_checkpoint(None, None, checkpoint)
    assert len(checkpoint[ResumeState.RNG_KEY]["cuda"]) == torch.cuda.device_count()
    expected = torch.rand(4, device="cuda")
    torch.cuda.manual_seed_all(6)
    ResumeState._restore_rng(checkpoint[ResumeState.RNG_KEY])
    assert torch.equal(torch.rand(4, device="cuda"), expected)


def test_augmentation_is_reseeded_per_epoch_from_the_restorable_torch_rng(tmp_path: Path) -> None:
    """Without workers the augmentation draws from its own generator. ``ResumeState`` reseeds it
    from the torch RNG at every epoch start, and checkpoints store that RNG: the same RNG state
    gives the same augmented epoch (what a resume restores), another state another epoch."""
    import hydra
    import lightning as L

    from irsam.resume import ResumeState

    cfg = compose_config(
        "train",
        tmp_path,
        [
            "dataset.synthetic.num_train=4",
            "dataset.synthetic.native_size=32",
            "dataset.loader_size=32",
        ],
    )
    datamodule = hydra.utils.instantiate(cfg.dataset)
    datamodule.setup("fit")
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.datamodule = datamodule  # what Trainer.fit sets
    hook = ResumeState("train")

    def epoch(rng_state: torch.Tensor) -> torch.Tensor:
        torch.set_rng_state(rng_state)
        hook.on_train_epoch_start(trainer, None)
        return torch.stack([datamodule.train_dataset[i]["image"] for i in range(4)])

    torch.manual_seed(0)
    state = torch.get_rng_state()
    first = epoch(state)
    torch.manual_seed(1)
    other = epoch(torch.get_rng_state())
    assert torch.equal(epoch(state), first)
    assert not torch.equal(other, first)


def test_explicit_ckpt_path_that_is_no_checkpoint_names_the_file(tmp_path: Path) -> None:
    """train.py ckpt_path=<text file> / <truncated .ckpt>: one CheckpointError naming the file and
    what it is (before: ``IndexError: pop from empty list`` / a bare zip-archive error)."""
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint\n")
    good = _fake_checkpoint(tmp_path / "last.ckpt", SYNTHETIC)
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    for path, what in ((text, "text file"), (truncated, "truncated or corrupt")):
        with pytest.raises(CheckpointError) as info:
            resolve_ckpt_path(str(path), str(tmp_path), "train", _identity(SYNTHETIC))
        assert str(path) in str(info.value) and what in str(info.value), str(info.value)


def test_debug_configs_write_no_checkpoint(tmp_path: Path) -> None:
    """debug=limit (and every debug preset) turns checkpointing off: its callbacks are ``none``,
    and Lightning would otherwise add its own ModelCheckpoint (before: ``epoch=2-step=6.ckpt``)."""
    import hydra
    import lightning as L

    for preset in ("limit", "fdr", "overfit", "default"):
        cfg = compose_config("train", tmp_path, [f"debug={preset}"])
        trainer = hydra.utils.instantiate(cfg.trainer, logger=False)
        assert not any(
            isinstance(c, L.pytorch.callbacks.ModelCheckpoint) for c in trainer.callbacks
        )
