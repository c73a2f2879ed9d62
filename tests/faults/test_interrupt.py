"""Ctrl-C (SIGINT) at any point: one line, exit 130 within seconds, and state the same command resumes from."""

import signal
import time

from conftest import FAST_PRETEXT, run_cli, start_cli, wait_for

from sslrun.training.rundir import LOCK, RUN_KEY

SECONDS = 15  # generous: the machine may be busy; an interrupt that is ignored would take minutes


def _interrupt(proc) -> tuple[str, str]:
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert time.monotonic() - start < SECONDS
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    [line] = [line for line in err.splitlines() if line.startswith("sslrun: error:")]
    assert "interrupted (Ctrl-C)" in line and "rerun the same command to resume" in line
    return out, err


def test_ctrl_c_while_loading_data(tmp_path):
    run = tmp_path / "run"
    proc = start_cli(FAST_PRETEXT + ["dataset.train_size=20000", "hydra.run.dir=run"], tmp_path)  # seconds to make
    wait_for(run / RUN_KEY, proc)  # the run dir is claimed: next, the data
    out, _ = _interrupt(proc)
    assert "data synthetic from" not in out  # stopped before the data was ready
    assert not (run / "pretext").exists()
    assert (run / LOCK).read_text() == ""  # released on the way out


def test_ctrl_c_during_pretext_training_then_the_rerun_resumes(tmp_path):
    args = FAST_PRETEXT + ["trainer.epochs=4", "trainer.steps_per_epoch=30", "hydra.run.dir=run"]
    ckpts = tmp_path / "run/pretext/checkpoints"
    proc = start_cli(args, tmp_path)
    wait_for(ckpts / "epoch-0001.npz", proc)
    _interrupt(proc)
    assert not (tmp_path / "run/pretext/COMPLETE").exists()
    latest = sorted(ckpts.glob("epoch-*.npz"))[-1]

    again = run_cli(args, tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"resuming pretext from {latest}" in again.stdout
    epochs = [line.split(",")[0] for line in (tmp_path / "run/pretext/history.csv").read_text().splitlines()[1:]]
    assert epochs == ["0", "1", "2", "3"]  # every epoch once
