"""Hydra launchers and sweepers: joblib in parallel, submitit's local executor with requeue, Optuna."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import keras
import numpy as np
import yaml
from conftest import run_cli, sslrun_exe

from sslrun.training.checkpoint import EpochCheckpoint

TINY = ["experiment=smoke", "trainer.progress=false", "tensorboard=false"]


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def test_joblib_2x2_runs_four_jobs_and_trains_pretext_once_per_seed(tmp_path):
    args = [
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        *TINY,
        "trainer.epochs=1",
        "downstream.unfrozen_epochs=1",
        "downstream.frozen_epochs=1,2",
        "seed=0,1",
        "hydra.sweep.dir=sweep",
    ]
    res = run_cli(args, tmp_path, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Joblib.Parallel(n_jobs=2" in res.stdout
    runs = sorted(p for p in (tmp_path / "sweep").iterdir() if p.is_dir() and not p.name.startswith("."))
    assert [p.name for p in runs] == ["0", "1", "2", "3"]
    pretext = [_metrics(r)["pretext"] for r in runs]
    assert all((r / "metrics.json").is_file() and (r / "pretext/encoder.weights.h5").is_file() for r in runs)
    keys = {p["cache_key"] for p in pretext}
    assert len(keys) == 2  # one per seed: the downstream setting is not part of the key
    for key in keys:
        assert sorted(p["reused"] for p in pretext if p["cache_key"] == key) == [False, True]
    assert res.stdout.count("reusing cache key") == 2
    rep = run_cli(["sweep", "--format", "json"], tmp_path, exe="sslrun-report")  # the sweep's report
    assert rep.returncode == 0, rep.stderr[-2000:]
    rows = json.loads(rep.stdout)
    assert {r["group"] for r in rows} == {f"downstream.frozen_epochs={e} seed={s}" for e in (1, 2) for s in (0, 1)}
    assert {r["eval"] for r in rows} == {"finetune", "scratch"}


def test_optuna_preset_maximises_the_returned_validation_accuracy(tmp_path):
    args = [
        "-m",
        "experiment=hpo_simclr",
        "dataset=synthetic",
        "dataset.train_size=400",
        "dataset.test_size=100",
        "encoder.width=0.25",
        "trainer.epochs=1",
        "trainer.steps_per_epoch=2",
        "trainer.batch_size=32",
        "downstream.labels_per_class=5",
        "downstream.val_per_class=5",
        "hydra.sweeper.n_trials=2",
        "trainer.progress=false",
        "tensorboard=false",
        "hydra.sweep.dir=sweep",
    ]
    res = run_cli(args, tmp_path, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    best = yaml.safe_load((tmp_path / "sweep/optimization_results.yaml").read_text())
    trials = [_metrics(tmp_path / f"sweep/{i}") for i in range(2)]
    assert best["best_value"] == max(t["ssl_val_accuracy"] for t in trials)
    assert set(best["best_params"]) == {"pretext.temperature", "trainer.learning_rate", "pretext.augment.crop_min"}
    assert all(t["downstream"]["linear"]["val_accuracy"] == t["ssl_val_accuracy"] for t in trials)
    assert trials[0]["pretext"]["cache_key"] != trials[1]["pretext"]["cache_key"]


def test_slurm_preset_requeues_on_timeout(tmp_path):
    res = run_cli(
        ["hydra/launcher=slurm", "hydra.launcher.partition=gpu", "--cfg", "hydra", "--package", "hydra.launcher"],
        tmp_path,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    launcher = yaml.safe_load(res.stdout)
    assert launcher["_target_"].endswith("SlurmLauncher") and launcher["partition"] == "gpu"
    assert launcher["max_num_timeout"] > 0 and launcher["signal_delay_s"] >= 60


def _task_pid(folder: Path, timeout: float = 120) -> int:
    """The submitit task process (python -m submitit.core._submit <folder>) of the job under `folder`."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmd = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"submitit.core._submit" in cmd and any(str(folder).encode() in c for c in cmd):
                return int(proc.name)
        time.sleep(0.2)
    raise AssertionError(f"no submitit task process under {folder}")


def test_submitit_local_requeues_on_sigusr2_and_the_job_resumes(tmp_path):
    """Slurm's preemption warning (SIGUSR2) under submitit: sslrun stops at a batch, submitit requeues, the
    requeued job resumes after the last finished epoch and completes."""
    env = {**os.environ, "HOME": str(tmp_path / "home"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("SSLRUN_CACHE_DIR", None)
    args = [
        "-m",
        "hydra/launcher=local",
        *TINY,
        "trainer.epochs=4",
        "dataset.train_size=6000",
        "dataset.train_limit=null",
        "trainer.batch_size=32",
        "stage=pretext",
        "hydra.sweep.dir=sweep",
    ]
    proc = subprocess.Popen(
        sslrun_exe() + args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        cache = tmp_path / "home/.cache/sslrun/pretext"
        deadline = time.time() + 240
        while not list(cache.glob("*/checkpoints/epoch-0001.npz")):
            assert proc.poll() is None and time.time() < deadline, "no epoch-1 checkpoint"
            time.sleep(0.2)
        os.kill(_task_pid(tmp_path / "sweep/.submitit"), signal.SIGUSR2)
        out, _ = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, out[-3000:]
    job_out = "".join(p.read_text() for p in (tmp_path / "sweep/.submitit").glob("*/*_log.*"))
    assert "SIGUSR2 received" in job_out and "Requeued job" in job_out
    assert "resuming pretext from" in job_out
    pretext = _metrics(tmp_path / "sweep/0")["pretext"]
    assert pretext["epochs"] == 4 and pretext["resumed_after_epoch"] >= 1


def test_stop_signal_goes_to_the_handler_installed_before_training(tmp_path):
    calls = []
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: calls.append(signum))
    try:
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile("sgd", "mse")
        ckpt = EpochCheckpoint(tmp_path)
        send = keras.callbacks.LambdaCallback(
            on_train_batch_end=lambda b, logs: os.kill(os.getpid(), signal.SIGUSR2) if b == 1 else None
        )
        model.fit(np.zeros((64, 2)), np.zeros((64, 1)), batch_size=8, epochs=3, verbose=0, callbacks=[ckpt, send])
        assert ckpt.stop_signal == "SIGUSR2" and calls == []  # sslrun's own handler ran during training
        assert not list((tmp_path / "checkpoints").glob("*.npz"))  # the cut-short epoch is not a checkpoint
        ckpt.forward_signal()
        assert calls == [signal.SIGUSR2]
    finally:
        signal.signal(signal.SIGUSR2, previous)
