"""experiment=compare: the ranking and its statistics, the baseline cache, a killed sweep resumed."""

import csv
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from sslrun.report.compare import load_method_runs, table, write_compare
from sslrun.report.stats import holm
from tests.conftest import run_cli, start_cli, wait_for

# The three methods' test accuracies over 3 draws; "good" is better than scratch and the others by construction.
SCRATCH = [0.70, 0.72, 0.69]
METHODS = {"good": [0.80, 0.83, 0.81], "same": [0.71, 0.71, 0.70], "bad": [0.60, 0.65, 0.59]}
VAL_SHIFT = {"good": 0.05, "same": 0.0, "bad": -0.05}


def _write_run(job: Path, method: str, accuracies: list[float], val: float | None = None) -> None:
    job.mkdir(parents=True)
    rows = []
    for r, (acc, base) in enumerate(zip(accuracies, SCRATCH, strict=True)):
        rows.append(
            {
                "eval": "finetune",
                "budget": "10",
                "labeled": 100,
                "repeat": r,
                "test_accuracy": acc,
                "val_accuracy": 0.7 + VAL_SHIFT[method] if val is None else val,
                "seconds": 1.0,
                "cached": False,
            }
        )
        rows.append(
            {
                "eval": "scratch",
                "budget": "10",
                "labeled": 100,
                "repeat": r,
                "test_accuracy": base,
                "val_accuracy": 0.7,
                "seconds": 1.0,
                "cached": method != "good",
            }
        )
    with open(job / "results.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (job / "metrics.json").write_text(
        json.dumps(
            {
                "pretext_task": method,
                "ssl_eval": "finetune",
                "seconds": 60.0,
                "pretext": {"seconds": 40.0, "reused": False},
            }
        )
    )


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    for i, name in enumerate(["same", "bad", "good"]):  # job order is not the ranking
        _write_run(tmp_path / "sweep" / str(i), name, METHODS[name])
    return tmp_path / "sweep"


def test_the_method_better_by_construction_ranks_first_with_holm_adjusted_p(sweep):
    rows = table(load_method_runs(sweep))
    assert [r["method"] for r in rows] == ["good", "same", "bad", "scratch"]
    assert [r["rank"] for r in rows] == [1, 2, 3, None]
    raw = [stats.ttest_rel(METHODS[m], SCRATCH).pvalue for m in ("good", "same", "bad")]
    assert [r["p_vs_scratch"] for r in rows[:3]] == pytest.approx(raw)
    assert [r["p_vs_scratch_holm"] for r in rows[:3]] == pytest.approx(holm(raw))
    good = rows[0]
    assert good["vs_scratch_pts"] == pytest.approx(100 * np.mean(np.subtract(METHODS["good"], SCRATCH)))
    assert good["vs_best_pts"] is None and rows[2]["vs_best_pts"] == pytest.approx(
        100 * np.mean(np.subtract(METHODS["bad"], METHODS["good"]))
    )
    p_best = [stats.ttest_rel(METHODS[m], METHODS["good"]).pvalue for m in ("same", "bad")]
    assert [r["p_vs_best_holm"] for r in rows[1:3]] == pytest.approx(holm(p_best))
    assert rows[3]["test_pct"] == pytest.approx(100 * np.mean(SCRATCH))


def test_ranking_reads_validation_not_test(sweep, tmp_path):
    """A method best on the test split but worst on validation images is not ranked first."""
    _write_run(tmp_path / "sweep" / "3", "peek", [0.95, 0.95, 0.95], val=0.5)
    rows = table(load_method_runs(sweep))
    assert rows[0]["method"] == "good" and rows[-2]["method"] == "peek"


def test_holm_against_hand_computed_values():
    # p = (0.01, 0.04, 0.03): sorted 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> max-accumulated 0.06
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, None, 0.9]) == [1.0, None, 1.0] and holm([]) == []  # None: not counted in m


def test_report_files_and_cli(sweep, tmp_path):
    path, said = write_compare(sweep)
    assert path == sweep / "compare.md" and (sweep / "figures" / "compare_accuracy.png").stat().st_size > 1000
    assert said[0].startswith("good pretext is the best of 3 methods on validation images at 100 labels: +")
    assert "significant" in said[0] and "Holm-adjusted p" in said[0]
    with open(sweep / "compare.csv") as fh:
        assert [r["method"] for r in csv.DictReader(fh)] == ["good", "same", "bad", "scratch"]
    out = run_cli(["--compare", str(sweep), "--out", str(tmp_path / "again")], tmp_path, exe="sslrun-report")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("# sslrun compare") and (tmp_path / "again" / "compare.md").is_file()
    bad = run_cli(["--compare", str(tmp_path / "nothing-here")], tmp_path, exe="sslrun-report")
    assert bad.returncode == 2 and "error" in bad.stderr and "Traceback" not in bad.stderr


def test_compare_without_multirun_says_add_m(tmp_path):
    out = run_cli(["experiment=compare", "dataset=synthetic"], tmp_path, timeout=120)
    assert out.returncode == 2 and "add -m" in out.stderr and "Traceback" not in out.stderr


COMPARE = [
    "-m",
    "experiment=compare",
    "dataset=synthetic",
    "dataset.train_size=400",
    "dataset.test_size=100",
    "encoder.width=0.25",
    "downstream.labels_per_class=4",
    "downstream.val_per_class=2",
    "downstream.repeats=2",
    "downstream.frozen_epochs=1",
    "downstream.unfrozen_epochs=1",
    "downstream.batch_size=20",
    "trainer.epochs=1",
    "trainer.steps_per_epoch=2",
    "trainer.batch_size=32",
    "trainer.progress=false",
    "tensorboard=false",
    "compare.methods=[rotation,vicreg]",
]


def test_killed_compare_resumes_and_trains_scratch_once_per_draw(tmp_path):
    sweep = tmp_path / "sweep"
    args = [*COMPARE, f"hydra.sweep.dir={sweep}"]
    env = {"SSLRUN_CACHE_DIR": str(tmp_path / "cache")}
    proc = start_cli(args, tmp_path, env)
    wait_for(sweep / "0" / "metrics.json", proc, timeout=400)
    proc.send_signal(signal.SIGKILL)  # in the middle of the second method
    proc.wait()
    first = (sweep / "0" / "metrics.json").stat().st_mtime_ns
    assert not (sweep / "compare.md").exists()
    out = run_cli(args, tmp_path, env, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (sweep / "0" / "metrics.json").stat().st_mtime_ns == first  # the finished method was not run again
    cached = []
    for job in ("0", "1"):
        with open(sweep / job / "results.csv") as fh:
            cached += [r["cached"] == "True" for r in csv.DictReader(fh) if r["eval"] == "scratch"]
    assert len(cached) == 2 * 2 and sum(cached) == (2 - 1) * 2  # trained once per draw, served to the others
    assert len(list((tmp_path / "cache" / "downstream").glob("*/result.json"))) == 2
    report = (sweep / "compare.md").read_text()
    assert all(m in report for m in ("rotation", "vicreg")) and "compare report:" in out.stdout
    assert "compare: method 2 of 2 (vicreg); finished: rotation" in out.stderr + out.stdout
    # one progress line for the whole sweep: 2 methods x (1 pretext epoch + 2 draws x 2 evaluations)
    sweep_lines = [line for line in out.stderr.splitlines() if line.startswith("compare sweep: ")]
    assert sweep_lines and sweep_lines[-1].startswith("compare sweep: 10 of 10 "), out.stderr[-2000:]
    assert "pretext epochs" not in out.stdout and json.loads((sweep / "1" / "progress.json").read_text()) == {
        "method": "vicreg",
        "pretext": [1, 1],
        "downstream": [4, 4],
    }
    assert os.path.getsize(sweep / "figures" / "compare_accuracy.png") > 1000
