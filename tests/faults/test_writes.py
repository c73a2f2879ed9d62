"""Writes that fail: a kill in the middle of writing a checkpoint or the weights, an unwritable dir, a full disk."""

import os
from pathlib import Path

import pytest
from conftest import FAST_PRETEXT, h5_arrays, run_cli

PRE = FAST_PRETEXT + ["trainer.epochs=3", "hydra.run.dir=run"]


def _temp_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob(".*.tmp*"))


def test_kill_while_writing_a_checkpoint_then_the_weights(tmp_path):
    run = tmp_path / "run"
    pre, ckpts = run / "pretext", run / "pretext/checkpoints"
    cut = run_cli(PRE, tmp_path, env={"SSLRUN_FAULT": "crash-writing:epoch-0002.npz"})
    assert cut.returncode == -9, cut.stderr[-2000:]
    assert sorted(p.name for p in ckpts.glob("epoch-*")) == ["epoch-0001.npz"]  # nothing half under a final name
    [half] = _temp_files(run)
    assert half.parent == ckpts and half.name.endswith(".tmp.epoch-0002.npz")

    cut = run_cli(PRE, tmp_path, env={"SSLRUN_FAULT": "crash-writing:encoder.weights.h5"})
    assert cut.returncode == -9, cut.stderr[-2000:]
    assert f"removing {half}, left by an interrupted write" in cut.stdout
    assert f"resuming pretext from {ckpts / 'epoch-0001.npz'}" in cut.stdout  # the previous good checkpoint
    assert not (pre / "encoder.weights.h5").exists() and not (pre / "COMPLETE").exists()
    [half] = _temp_files(run)
    assert half.parent == pre and half.name.endswith(".tmp.encoder.weights.h5")

    done = run_cli(PRE, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"removing {half}, left by an interrupted write" in done.stdout
    assert f"resuming pretext from {ckpts / 'epoch-0003.npz'}: 3 epochs done" in done.stdout
    assert (pre / "COMPLETE").is_file() and len(h5_arrays(pre / "encoder.weights.h5")) > 0
    assert _temp_files(run) == []


@pytest.fixture
def unwritable(tmp_path) -> Path:
    """A folder nobody may create files in: chmod 555 for a normal user; root ignores that, so /sys/kernel."""
    if os.geteuid() != 0:
        folder = tmp_path / "readonly"
        folder.mkdir(mode=0o555)
        return folder
    folder = Path("/sys/kernel")
    try:
        (folder / "sslrun-probe").mkdir()
    except OSError:
        return folder
    pytest.skip("no folder here refuses root's writes")


def _one_line_error(res, exit_code: int, *texts: str) -> None:
    assert res.returncode == exit_code, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    [line] = [line for line in res.stderr.splitlines() if line.startswith("sslrun: error:")]
    for text in texts:
        assert text in line, line


def test_unwritable_run_dir_is_one_line_and_exit_74(tmp_path, unwritable):
    res = run_cli(["experiment=smoke", f"hydra.run.dir={unwritable}/run"], tmp_path)
    _one_line_error(res, 74, f"cannot write {unwritable}/run", "make them writable, or point them elsewhere")


def test_unwritable_cache_dir_is_named_and_exit_74(tmp_path, unwritable):
    res = run_cli(FAST_PRETEXT + ["pretext.cache=true", f"cache_dir={unwritable}/cache", "hydra.run.dir=run"], tmp_path)
    _one_line_error(res, 74, f"cannot write {unwritable}/cache")
    assert not (tmp_path / "run/pretext").exists()


def test_disk_full_while_checkpointing_is_one_line_and_resumable(tmp_path):
    run = tmp_path / "run"
    full = run_cli(PRE, tmp_path, env={"SSLRUN_FAULT": "disk-full:epoch-0002.npz"})
    ckpt = run / "pretext/checkpoints/epoch-0002.npz"
    _one_line_error(full, 74, f"cannot write {ckpt}: No space left on device", "rerun the same command")
    assert sorted(p.name for p in ckpt.parent.iterdir()) == ["epoch-0001.npz"]  # no temp file, no partial file
    assert not (run / "pretext/COMPLETE").exists()
