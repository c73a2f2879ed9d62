"""trainer.budget_minutes: epochs sized from the measured speed, the schedule laid over them, a stop at the
budget, and a resumed stage that keeps its plan and counts the seconds it already spent."""

import csv
import json
import signal

import pytest
from conftest import FAST_PRETEXT, run_cli, start_cli, wait_for

from sslrun.training.budget import Budget, BudgetStop, epochs_that_fit, plan


@pytest.mark.parametrize(
    ("budget_s", "used", "epoch_s", "most", "expected"),
    [(600, 0, 10, 100, 60), (600, 30, 10, 100, 57), (600, 0, 10, 40, 40), (5, 0, 10, 40, 1), (600, 700, 10, 40, 1)],
)
def test_epochs_that_fit(budget_s, used, epoch_s, most, expected):
    assert epochs_that_fit(budget_s, used, epoch_s, most) == expected


def test_the_warm_up_keeps_its_share_and_leaves_an_epoch_after_it():
    assert (plan(10, 40, 2, 30.0, 0).epochs, plan(10, 40, 2, 30.0, 0).warmup_epochs) == (20, 1)
    assert plan(10, 40, 2, 600.0, 0).warmup_epochs == 0  # one epoch fits: no warm-up
    assert plan(10, 40, 0, 3.0, 0).warmup_epochs == 0


class _Model:
    stop_training = False


def test_budget_stop_ends_before_an_epoch_that_would_overrun(tmp_path, monkeypatch):
    clock = iter([0.0, 4.0, 4.0, 8.0, 8.0, 12.0])
    monkeypatch.setattr("sslrun.training.budget.time.perf_counter", lambda: next(clock))
    stop = BudgetStop(tmp_path, Budget(minutes=0.2, epochs=5, warmup_epochs=0, seconds_per_epoch=3.0))
    stop.set_model(_Model())
    for epoch in range(3):
        stop.on_epoch_begin(epoch)
        stop.on_epoch_end(epoch)
        if stop.model.stop_training:
            break
    # a 12 s budget: after the second epoch (8 s used) a third of 4 s still fits exactly; after it none does
    assert epoch == 2 and stop.stopped_early
    assert json.loads((tmp_path / "budget.json").read_text())["seconds_used"] == 12.0


BUDGET = [
    *FAST_PRETEXT,
    "trainer.budget_minutes=0.2",
    "trainer.epochs=400",
    "trainer.steps_per_epoch=6",
    "trainer.lr_schedule=cosine",
    "hydra.run.dir=run",
]


def test_a_budget_sizes_the_epochs_and_lays_the_schedule_over_them(tmp_path):
    res = run_cli(
        [
            *FAST_PRETEXT,
            "trainer.budget_minutes=0.3",
            "trainer.epochs=3",
            "trainer.lr_schedule=cosine",
            "hydra.run.dir=run",
        ],
        tmp_path,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    done = json.loads((tmp_path / "run/pretext/COMPLETE").read_text())
    # 18 s of budget, a few tenths of a second an epoch here: the cap of 3 epochs decides
    assert done["epochs"] == done["budget"]["epochs"] == 3 and not done["budget"]["stopped_at_budget"]
    with open(tmp_path / "run/pretext/history.csv", newline="") as fh:
        rates = [float(row["learning_rate"]) for row in csv.DictReader(fh)]
    assert len(rates) == 3 and rates[-1] == 0.0  # the cosine reaches 0 at the last epoch the budget gave
    assert "pretext budget 0.3 min: ~" in res.stdout and "3 epoch(s) (trainer.epochs=3 at most)" in res.stdout


def test_a_stage_interrupted_under_a_budget_resumes_with_its_plan(tmp_path):
    proc = start_cli(BUDGET, tmp_path)
    wait_for(tmp_path / "run/pretext/checkpoints/epoch-0002.npz", proc)
    first = json.loads((tmp_path / "run/pretext/budget.json").read_text())
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    assert proc.returncode == 75
    again = run_cli(BUDGET, tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    done = json.loads((tmp_path / "run/pretext/COMPLETE").read_text())
    assert done["budget"]["epochs"] == first["epochs"] and done["resumed_after_epoch"] >= 2
    assert done["budget"]["seconds_used"] <= 12 + 2 * first["seconds_per_epoch"] + 1
    if done["budget"]["stopped_at_budget"]:
        assert done["epochs"] < first["epochs"]
    assert "pretext budget 0.2 min: ~" not in again.stdout  # no second probe: the plan on disk holds
