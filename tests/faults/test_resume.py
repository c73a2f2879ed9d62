"""Interrupted pretext stages resume: kill -9, SIGTERM, a damaged checkpoint, a rerun of a finished run."""

import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import h5_arrays, run_cli, start_cli, wait_for

BASE = [
    "experiment=smoke",
    "trainer.progress=false",
    "trainer.epochs=4",
    "trainer.batch_size=16",
    "trainer.steps_per_epoch=30",
    "trainer.deterministic=true",
    "pretext.cache=false",
    "stage=pretext",
]


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
    for a, b in zip(
        h5_arrays(tmp_path / "whole/pretext/encoder.weights.h5"),
        h5_arrays(tmp_path / "cut/pretext/encoder.weights.h5"),
        strict=True,
    ):
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
    args = BASE + [
        "stage=all",
        "trainer.epochs=1",
        "trainer.steps_per_epoch=4",
        "downstream.evals=[finetune]",
        "downstream.labels_per_class=10",
        "downstream.frozen_epochs=1",
        "downstream.unfrozen_epochs=1",
        "hydra.run.dir=run",
    ]
    first = run_cli(args, tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    before = {
        p: p.stat().st_mtime_ns
        for p in (tmp_path / "run").rglob("*")
        if p.is_file() and ".hydra" not in str(p) and p.name != "cli.log"
    }
    again = run_cli(args, tmp_path)
    assert again.returncode == 0 and "nothing to do" in again.stdout
    after = {
        p: p.stat().st_mtime_ns
        for p in (tmp_path / "run").rglob("*")
        if p.is_file() and ".hydra" not in str(p) and p.name != "cli.log"
    }
    assert before == after


STATEFUL = ["trainer.epochs=3", "trainer.steps_per_epoch=6", "pretext.online_probe=false", "pretext.queue_size=40"]


def _arrays(ckpt: Path) -> dict[str, np.ndarray]:
    with np.load(ckpt) as data:
        return {k: data[k] for k in data.files}


@pytest.mark.parametrize("method", ["nnclr", "moco_v3"])
def test_kill9_resumes_a_queue_or_momentum_network_to_the_uninterrupted_state(tmp_path, method):
    """NNCLR's support queue (40 rows, filled by 16 per step: it wraps within an epoch) and MoCo v3's momentum
    encoder and projector are task state: after kill -9 and resume, every variable equals an uninterrupted run's."""
    args = [a for a in BASE if not a.startswith(("trainer.epochs", "trainer.steps_per_epoch"))]
    args += [f"pretext={method}", *[a for a in STATEFUL if method == "nnclr" or "queue" not in a]]
    whole = start_cli(args + ["hydra.run.dir=whole"], tmp_path)
    proc = start_cli(args + ["hydra.run.dir=cut"], tmp_path)
    wait_for(tmp_path / "cut/pretext/checkpoints/epoch-0001.npz", proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    _, err = whole.communicate(timeout=300)
    assert whole.returncode == 0, err[-2000:]
    again = run_cli(args + ["hydra.run.dir=cut"], tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resuming pretext from" in again.stdout and _epochs_logged(tmp_path / "cut") == [0, 1, 2]
    a, b = (_arrays(tmp_path / f"{run}/pretext/checkpoints/epoch-0003.npz") for run in ("whole", "cut"))
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    # the state is in those checkpoints, and it moved during training
    first = _arrays(tmp_path / "cut/pretext/checkpoints/epoch-0002.npz")
    picked = _state_keys(tmp_path / "whole", method)
    assert picked and all(not np.array_equal(a[k], first[k]) for k in picked)


def _state_keys(run: Path, method: str) -> list[str]:
    """Checkpoint keys (v<i>) of the task's queue (nnclr) or momentum networks' trainable weights (moco_v3)."""
    from omegaconf import OmegaConf

    from sslrun.encoders import build_encoder
    from sslrun.training.pretext import build_task

    cfg = OmegaConf.load(run / "pretext/config.yaml")
    shape = (cfg.dataset.image_size, cfg.dataset.image_size, cfg.dataset.channels)
    task = build_task(cfg.pretext, build_encoder(cfg.encoder.name, shape, cfg.encoder.width), cfg.seed, 0)
    state = (
        [task.queue, task.queue_next]
        if method == "nnclr"
        else task.target_encoder.trainable_weights + task.target_projector.trainable_weights
    )
    ids = {id(v) for v in state}
    return [f"v{i}" for i, v in enumerate(task.variables) if id(v) in ids]
