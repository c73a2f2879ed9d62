"""Interrupted pretext stages resume: kill -9, SIGTERM, a damaged checkpoint, a rerun of a finished run."""

import signal
import subprocess
from pathlib import Path

import numpy as np
from conftest import h5_arrays, run_cli, start_cli, wait_for

BASE = ["experiment=smoke", "trainer.progress=false", "trainer.epochs=4", "trainer.batch_size=16", "trainer.steps_per_epoch=30",
        "trainer.deterministic=true", "pretext.cache=false", "stage=pretext"]


def _start(tmp_path: Path, run: str) -> subprocess.Popen:
    return start_cli(BASE + [f"hydra.run.dir={run}"], tmp_path)


def _epochs_logged(run: Path) -> list[int]:
    lines = (run / "pretext/history.csv").read_text().splitlines()[1:]
    return [int(line.split(",")[0]) for line in lines]


def test_kill9_during_epoch_2_resumes_to_identical_weights(tmp_path):
    whole = _start(tmp_path, "whole")  # the uninterrupted reference, alongside
    proc = _start(tmp_path, "cut")
    wait_for(tmp_path / "cut/pretext/checkpoints/epoch-0001.npz", proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    _, err = whole.communicate(timeout=300)
    assert whole.returncode == 0, err[-2000:]
    assert not (tmp_path / "cut/pretext/COMPLETE").exists()

    again = run_cli(BASE + ["hydra.run.dir=cut"], tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resuming pretext from" in again.stdout
    assert _epochs_logged(tmp_path / "cut") == [0, 1, 2, 3]  # every epoch logged once
    for a, b in zip(h5_arrays(tmp_path / "whole/pretext/encoder.weights.h5"),
                    h5_arrays(tmp_path / "cut/pretext/encoder.weights.h5"), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not list((tmp_path / "cut").rglob(".*.tmp.*"))


def test_sigterm_saves_exits_75_and_the_rerun_resumes(tmp_path):
    proc = _start(tmp_path, "run")
    wait_for(tmp_path / "run/pretext/checkpoints/epoch-0001.npz", proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 75, err[-2000:]
    assert "rerun the same command to resume" in err
    assert not (tmp_path / "run/pretext/COMPLETE").exists()
    again = run_cli(BASE + ["hydra.run.dir=run"], tmp_path)
    assert again.returncode == 0 and "resuming pretext from" in again.stdout
    assert _epochs_logged(tmp_path / "run") == [0, 1, 2, 3]


def test_truncated_latest_checkpoint_falls_back_with_a_warning(tmp_path):
    proc = _start(tmp_path, "run")
    wait_for(tmp_path / "run/pretext/checkpoints/epoch-0002.npz", proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    ckpts = sorted((tmp_path / "run/pretext/checkpoints").glob("epoch-*.npz"))
    latest = ckpts[-1]
    latest.write_bytes(latest.read_bytes()[:100])
    again = run_cli(BASE + ["hydra.run.dir=run"], tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"checkpoint {latest} is unreadable" in again.stdout
    assert f"resuming pretext from {ckpts[-2]}" in again.stdout


def test_rerun_of_a_finished_run_does_nothing(tmp_path):
    args = BASE + ["stage=all", "trainer.epochs=1", "trainer.steps_per_epoch=4", "downstream.evals=[finetune]", "downstream.labels_per_class=10",
                   "downstream.frozen_epochs=1", "downstream.unfrozen_epochs=1", "hydra.run.dir=run"]
    first = run_cli(args, tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "run").rglob("*") if p.is_file() and ".hydra" not in str(p) and p.name != "cli.log"}
    again = run_cli(args, tmp_path)
    assert again.returncode == 0 and "nothing to do" in again.stdout
    after = {p: p.stat().st_mtime_ns for p in (tmp_path / "run").rglob("*") if p.is_file() and ".hydra" not in str(p) and p.name != "cli.log"}
    assert before == after
