"""A run stopped by a NaN loss (exit 3, epoch and step named, the last good checkpoint kept), and reruns into
its dir: refused when the config changed in a way that changes the results, resumed when only the display did."""

import shutil

import numpy as np
import pytest
from conftest import FAST_PRETEXT, run_cli

PRE = FAST_PRETEXT + ["trainer.epochs=3", "hydra.run.dir=run"]


@pytest.fixture(scope="module")
def diverged(tmp_path_factory):
    """One run whose loss is NaN at global step 7 (4 steps per epoch: epoch 2, step 3)."""
    tmp = tmp_path_factory.mktemp("diverged")
    return tmp, run_cli(PRE, tmp, env={"SSLRUN_FAULT": "nan-at-step:7"})


def _error_line(res) -> str:
    assert "Traceback" not in res.stderr, res.stderr[-2000:]
    [line] = [line for line in res.stderr.splitlines() if line.startswith("sslrun: error:")]
    return line


def test_nan_loss_exits_3_naming_epoch_and_step_and_keeps_the_last_good_checkpoint(diverged):
    tmp, res = diverged
    assert res.returncode == 3, res.stderr[-2000:]
    pre = tmp / "run/pretext"
    kept = pre / "checkpoints/epoch-0001.npz"
    line = _error_line(res)
    assert "pretext training diverged: the loss is nan at epoch 2, step 3 of 4" in line
    assert f"the last good checkpoint {kept} is kept" in line and "Lower trainer.learning_rate" in line
    assert [p.name for p in (pre / "checkpoints").iterdir()] == ["epoch-0001.npz"]
    with np.load(kept) as ckpt:
        assert all(np.isfinite(ckpt[k]).all() for k in ckpt.files if ckpt[k].dtype.kind == "f")
    assert len((pre / "history.csv").read_text().splitlines()) == 2  # header + epoch 1: the NaN epoch never ended
    for name in ("encoder.weights.h5", "COMPLETE"):
        assert not (pre / name).exists(), name
    assert not (tmp / "run/metrics.json").exists()


def test_rerun_with_a_result_changing_config_is_refused_and_display_changes_resume(diverged, tmp_path):
    shutil.copytree(diverged[0] / "run", tmp_path / "run", symlinks=True)  # an interrupted run dir of our own
    run = tmp_path / "run"

    def files():
        return sorted(p.relative_to(run) for p in run.rglob("*") if ".hydra" not in p.parts and p.name != "cli.log")

    before = files()
    changed = run_cli(PRE + ["trainer.learning_rate=0.01", "encoder.width=0.5"], tmp_path)
    assert changed.returncode == 2
    line = _error_line(changed)
    assert f"run dir {run} was run with a different config" in line and "new hydra.run.dir" in line
    assert "encoder.width: 0.25 -> 0.5; trainer.learning_rate: 0.001 -> 0.01 (recorded -> now" in line
    assert files() == before  # refused before touching anything

    record = run / "run_key.json"  # without it (a run dir from before run_key.json), pretext/key.json refuses
    record.rename(tmp_path / "run_key.json")
    changed = run_cli(PRE + ["trainer.learning_rate=0.01"], tmp_path)
    assert changed.returncode == 2
    line = _error_line(changed)
    assert f"pretext stage in {run / 'pretext'} was run with a different config" in line
    assert "trainer.learning_rate: 0.001 -> 0.01" in line and "data_source" not in line
    assert not record.exists()  # the refused config left no record behind
    (tmp_path / "run_key.json").replace(record)

    display = run_cli(PRE + ["trainer.progress=true", "tensorboard=true", "lock_timeout=60"], tmp_path)
    assert display.returncode == 0, display.stderr[-2000:]  # options that cannot change the result
    assert f"resuming pretext from {run / 'pretext/checkpoints/epoch-0001.npz'}" in display.stdout

    finished = run_cli(PRE + ["downstream.labels_per_class=10"], tmp_path)
    assert finished.returncode == 2 and "downstream.labels_per_class: 50 -> 10" in _error_line(finished)
    assert "nothing to do" not in finished.stdout  # a finished run is not reported for another config
