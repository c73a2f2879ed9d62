"""An interrupted downstream study resumes: kill -9 keeps the finished rows (not recomputed, the final results
equal an uninterrupted run's), SIGTERM stops a study with worker processes with exit 75 and the rerun finishes."""

import csv
import signal
from pathlib import Path

import pytest
from conftest import FAST_PRETEXT, run_cli, start_cli, wait_for

# 3 draws x (finetune, scratch): 6 rows of one 2-epoch phase each, from a shared pretext stage
DOWN = [
    "experiment=smoke",
    "trainer.progress=false",
    "tensorboard=false",
    "stage=downstream",
    "pretext.from=pre",
    "downstream.frozen_epochs=0",
    "downstream.unfrozen_epochs=2",
    "downstream.repeats=3",
    "downstream.evals=[finetune,scratch]",
    "downstream.cache=false",
    "trainer.deterministic=true",
]
NUMBERS = ("eval", "budget", "repeat", "labeled", "test_accuracy", "test_loss", "val_accuracy")


@pytest.fixture(scope="module")
def pretext(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("resume-downstream")
    res = run_cli(FAST_PRETEXT + ["hydra.run.dir=pre"], tmp)
    assert res.returncode == 0, res.stderr[-3000:]
    return tmp


def _finished(run: Path) -> dict[str, int]:
    """Row folder -> the modification time of its result.json."""
    return {p.parent.name: p.stat().st_mtime_ns for p in (run / "downstream/rows").glob("*/result.json")}


def _numbers(run: Path) -> list[tuple]:
    return [tuple(r[k] for k in NUMBERS) for r in csv.DictReader(open(run / "results.csv"))]


def test_kill9_mid_study_keeps_the_finished_rows(pretext):
    whole = start_cli(DOWN + ["downstream.workers=1", "hydra.run.dir=whole"], pretext)  # the reference, alongside
    cut = start_cli(DOWN + ["downstream.workers=1", "hydra.run.dir=cut"], pretext)
    wait_for(lambda: len(_finished(pretext / "cut")) >= 2, cut)
    cut.send_signal(signal.SIGKILL)
    cut.communicate()
    before = _finished(pretext / "cut")
    assert 2 <= len(before) < 6 and not (pretext / "cut/results.csv").exists()
    _, err = whole.communicate(timeout=300)
    assert whole.returncode == 0, err[-2000:]

    again = run_cli(DOWN + ["downstream.workers=1", "hydra.run.dir=cut"], pretext)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"{len(before)} of 6 rows finished by an earlier run of this command" in again.stdout
    after = _finished(pretext / "cut")
    assert len(after) == 6 and all(after[name] == mtime for name, mtime in before.items())  # not recomputed
    assert _numbers(pretext / "cut") == _numbers(pretext / "whole")
    assert not list((pretext / "cut/downstream/rows").glob(".*"))  # no half-written row left behind
    assert (pretext / "cut/model/model.keras").is_file()


def test_sigterm_stops_workers_with_75_and_the_rerun_finishes(pretext):
    proc = start_cli(DOWN + ["downstream.workers=2", "hydra.run.dir=term"], pretext)
    wait_for(lambda: len(_finished(pretext / "term")) >= 1, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 75, err[-2000:]
    assert "downstream stopped by SIGTERM" in err and "rerun the same command" in err and "Traceback" not in err
    assert not (pretext / "term/metrics.json").exists()
    done = len(_finished(pretext / "term"))
    assert 1 <= done < 6

    again = run_cli(DOWN + ["downstream.workers=2", "hydra.run.dir=term"], pretext)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"{done} of 6 rows finished by an earlier run" in again.stdout
    assert len(_numbers(pretext / "term")) == 6 and (pretext / "term/metrics.json").is_file()
