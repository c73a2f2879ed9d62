"""downstream.draw=<strategy> in one tiny `sslrun` run on an image folder, then `sslrun-select` over that run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import run_cli
from test_export_predict import _image_folder, folder_run_args


def _column(path: Path, name: str) -> list[str]:
    with open(path) as fh:
        return [r[name] for r in csv.DictReader(fh)]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("select")
    _image_folder(tmp / "data")
    run_dir = tmp / "run"
    args = [
        *folder_run_args(tmp / "data"),
        "downstream.draw=typiclust",
        "downstream.labels_per_class=null",
        "downstream.num_labels=6",
        "downstream.repeats=2",
        "downstream.evals=[knn]",
        f"hydra.run.dir={run_dir}",
    ]
    proc = run_cli(args, tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp / "round1"
    first = run_cli([str(run_dir), "--budget", "6", "--out", str(out)], tmp, exe="sslrun-select")
    assert first.returncode == 0, first.stderr[-3000:]
    return {"tmp": tmp, "run_dir": run_dir, "out": out, "log": proc.stdout + proc.stderr}


def test_the_study_pairs_the_strategy_with_random_on_the_same_repeats(run):
    rd = run["run_dir"]
    assert _column(rd / "results.csv", "repeat") == ["0", "1"]
    assert _column(rd / "results_random.csv", "repeat") == ["0", "1"]
    assert set(_column(rd / "results_random.csv", "draw")) == {"random"}
    metrics = json.loads((rd / "metrics.json").read_text())
    assert metrics["draw"] == "typiclust"
    (entry,) = metrics["vs_random"]
    assert entry["eval"] == "knn" and entry["budget"] == "6" and entry["n_pairs"] == 2
    assert "knn budget 6: draw typiclust" in run["log"]


def test_sslrun_select_picks_what_the_study_labeled_in_repeat_0(run):
    """The same features, strategy, seed and repeat: the files to label are the study's labeled draw."""
    picked = sorted(str(Path(p).resolve()) for p in _column(run["out"] / "to_label.csv", "path"))
    labeled = sorted(str(Path(p).resolve()) for p in _column(run["run_dir"] / "downstream" / "labeled_0.csv", "path"))
    assert len(picked) == 6 and picked == labeled
    assert (run["out"] / "to_label.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (run["out"] / "train").iterdir()) == sorted(
        p.name for p in (run["tmp"] / "data" / "train").iterdir()
    )
    assert not any((run["out"] / "train").rglob("*.*"))  # empty: the user moves the labeled files in


@pytest.mark.parametrize("strategy", ["typiclust", "probcover", "kcenter", "random"])
def test_exclude_never_picks_an_excluded_file_again(run, strategy, tmp_path):
    out = tmp_path / "round2"
    proc = run_cli(
        [
            str(run["run_dir"]),
            "--budget",
            "20",
            "--strategy",
            strategy,
            "--exclude",
            str(run["out"] / "to_label.csv"),
            "--out",
            str(out),
        ],
        run["tmp"],
        exe="sslrun-select",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    first = {str(Path(p).resolve()) for p in _column(run["out"] / "to_label.csv", "path")}
    second = [str(Path(p).resolve()) for p in _column(out / "to_label.csv", "path")]
    assert len(second) == 20 and len(set(second)) == 20 and not first & set(second)
    assert "6 excluded as labeled" in proc.stdout


def test_errors_are_one_line(run, tmp_path):
    for args, said in (
        ([str(run["run_dir"]), "--budget", "3", "--exclude", str(tmp_path / "none.csv")], "no such file"),
        ([str(run["run_dir"]), "--budget", "100000"], "lower the budget"),
        ([str(tmp_path), "--budget", "3"], "is not a run directory"),
    ):
        proc = run_cli(args + ["--out", str(tmp_path / "o")], run["tmp"], exe="sslrun-select")
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("sslrun-select: error: "), proc.stderr
        assert said in lines[0]
