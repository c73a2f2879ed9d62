"""downstream.workers: fine-tuning fits in worker processes give the rows an in-process study gives, in order,
with their log lines in the run's log, the kept classifier exported, and a lost worker named plainly."""

import csv
import os
import subprocess

import pytest
from conftest import FAST_PRETEXT, cli_env, run_cli, sslrun_exe

from sslrun.downstream import workers
from sslrun.downstream.workers import plan_workers

# two draws x (finetune, knn, scratch): four fits in workers, two knn evaluations in the parent
DOWN = [
    "experiment=smoke",
    "trainer.progress=false",
    "tensorboard=false",
    "stage=downstream",
    "pretext.from=pre",
    "downstream.frozen_epochs=0",
    "downstream.unfrozen_epochs=2",
    "downstream.repeats=2",
    "downstream.evals=[finetune,knn,scratch]",
    "downstream.cache=false",
    "trainer.deterministic=true",
]
ROW = ("eval", "budget", "repeat", "labeled", "test_accuracy", "test_loss", "val_accuracy")


@pytest.fixture(scope="module")
def pretext(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("workers")
    res = run_cli(FAST_PRETEXT + ["hydra.run.dir=pre"], tmp)
    assert res.returncode == 0, res.stderr[-3000:]
    return tmp


def _rows(run) -> list[tuple]:
    return [tuple(r[k] for k in ROW) for r in csv.DictReader(open(run / "results.csv"))]


def _on_two_cores(args: list[str], tmp) -> subprocess.CompletedProcess:
    """run_cli on CPUs 0 and 1 only: two workers then get one thread each on any machine."""
    return subprocess.run(
        sslrun_exe() + args,
        cwd=tmp,
        env=cli_env(tmp),
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=lambda: os.sched_setaffinity(0, {0, 1}),
    )


def test_plan_workers(monkeypatch):
    monkeypatch.setattr(workers, "cores", lambda: 2)
    assert plan_workers(None, 6, single_device=True) == 2  # auto: one per core
    assert plan_workers(None, 1, single_device=True) == 0  # one fit: nothing to run side by side
    assert plan_workers(None, 6, single_device=False) == 0  # a GPU has its own parallelism
    assert plan_workers(1, 6, single_device=True) == 0 and plan_workers(3, 2, single_device=True) == 2
    monkeypatch.setattr(workers, "cores", lambda: 64)
    assert plan_workers(None, 40, single_device=True) == workers.MAX_AUTO_WORKERS


def test_workers_match_the_study_in_this_process(pretext):
    # the parent's fits get one TensorFlow thread (conftest); two cores give each of the two workers one too, so
    # even the last digits must agree
    here = _on_two_cores(DOWN + ["downstream.workers=1", "hydra.run.dir=one"], pretext)
    assert here.returncode == 0, here.stderr[-3000:]
    two = _on_two_cores(DOWN + ["downstream.workers=2", "hydra.run.dir=two"], pretext)
    assert two.returncode == 0, two.stderr[-3000:]
    assert _rows(pretext / "two") == _rows(pretext / "one")
    assert [(r[0], r[2]) for r in _rows(pretext / "two")] == [
        (e, r) for r in ("0", "1") for e in ("finetune", "knn", "scratch")
    ]  # the plan's order
    log = (pretext / "two/cli.log").read_text()
    assert "fine-tuning fits in 2 worker processes, 1 thread each" in log
    assert "in 2 worker processes" not in (pretext / "one/cli.log").read_text()
    assert log.count("scratch unfrozen epoch 2/2") == 2  # the workers' own lines reach the run's log
    assert "Traceback" not in two.stderr
    assert (pretext / "two/model/model.keras").is_file()  # the first draw's classifier came back from a worker


def test_a_lost_worker_is_named(pretext):
    res = run_cli(DOWN + ["downstream.workers=2", "hydra.run.dir=lost"], pretext, env={"SSLRUN_FAULT": "kill-fit:2"})
    assert res.returncode == 2, res.stderr[-3000:]  # SslrunError: the user can act on it
    assert "a downstream worker process died" in res.stderr and "downstream.workers=1" in res.stderr
    assert "Traceback" not in res.stderr
    assert not (pretext / "lost/results.csv").exists() and not (pretext / "lost/metrics.json").exists()
