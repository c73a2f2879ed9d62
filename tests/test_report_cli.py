"""`sslrun-report` end to end through the installed console script, on fabricated run dirs."""

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from scipy import stats

from sslrun import report_cli

PNG = b"\x89PNG\r\n\x1a\n"
PRETEXTS = {"rotation": 0.80, "simclr": 0.85}  # finetune accuracy at 10 labels per class
BUDGETS = {"10": 0.0, "100": 0.08}  # added with 100 labels per class
SCRATCH_GAP = [0.05, 0.06, 0.03]  # finetune - scratch, per repeat
NOISE = [0.00, 0.02, -0.01]
GROUPS = [f"pretext={p} downstream.labels_per_class={b}" for p in PRETEXTS for b in BUDGETS]


def accuracies(pretext: str, budget: str) -> dict[str, list[float]]:
    finetune = [PRETEXTS[pretext] + BUDGETS[budget] + e for e in NOISE]
    scratch = [f - g for f, g in zip(finetune, SCRATCH_GAP, strict=True)]
    return {"finetune": finetune, "scratch": scratch}


def make_run(run: Path, overrides: list[str] | None, acc: dict[str, list[float]], budget: str) -> None:
    run.mkdir(parents=True)
    if overrides is not None:
        (run / ".hydra").mkdir()
        (run / ".hydra/overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    lines = ["eval,budget,labeled,repeat,test_accuracy,test_loss,seconds"]
    for name, values in acc.items():
        labeled = 10 * int(budget)
        lines += [f"{name},{budget},{labeled},{r},{v!r},0.5,1.5" for r, v in enumerate(values)]
    (run / "results.csv").write_text("\n".join(lines) + "\n")


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """A 2x2 Hydra multirun: pretext x downstream.labels_per_class, dataset=mnist in every job."""
    root = tmp_path / "multirun/2024-05-01/12-00-00"
    for i, (pretext, budget) in enumerate((p, b) for p in PRETEXTS for b in BUDGETS):
        overrides = ["dataset=mnist", f"pretext={pretext}", f"downstream.labels_per_class={budget}"]
        make_run(root / str(i), overrides, accuracies(pretext, budget), budget)
    (root / "multirun.yaml").write_text("hydra: {}\n")
    return root


def report(args: list[str], tmp_path: Path) -> str:
    res = run_cli(args, tmp_path, exe="sslrun-report", timeout=60)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


def test_markdown_and_out_dir(sweep, tmp_path):
    out = tmp_path / "report"
    md = report([str(sweep), "--out", str(out)], tmp_path)
    assert ("Grouped by: `pretext`, `downstream.labels_per_class`. Common overrides: `dataset=mnist`.") in md
    rows = [line for line in md.splitlines() if line.startswith("| pretext=")]
    assert [r.split(" | ")[0].removeprefix("| ") for r in rows] == [g for g in GROUPS for _ in "ab"]
    mean = 100 * np.mean(accuracies("simclr", "100")["finetune"])
    assert rows[6].startswith(f"| {GROUPS[3]} | finetune | 100 | 1,000 | 3 | {mean:.2f} | ")
    assert f" | +{100 * np.mean(SCRATCH_GAP):.2f} [+" in rows[6]
    assert rows[7].endswith(" | - | - |")  # scratch: no difference to itself
    assert (out / "report.md").read_text() == md
    with open(out / "summary.csv") as fh:
        assert [r["group"] for r in csv.DictReader(fh)] == [g for g in GROUPS for _ in "ab"]
    assert len(json.loads((out / "summary.json").read_text())) == 8
    for name in ("boxplots.png", "label_efficiency.png"):
        data = (out / name).read_bytes()
        assert data[:8] == PNG and len(data) > 1024, name
    assert sorted(p.name for p in out.iterdir()) == [  # and no temp files
        "boxplots.png",
        "label_efficiency.png",
        "report.md",
        "summary.csv",
        "summary.json",
    ]


def test_csv_and_json_rows(sweep, tmp_path):
    rows = list(csv.DictReader(io.StringIO(report([str(sweep), "--format", "csv"], tmp_path))))
    assert list(rows[0]) == report_cli.COLUMNS
    budgets = ["10", "100"] * 2
    assert [(r["group"], r["eval"], r["budget"]) for r in rows] == [
        (g, e, b) for g, b in zip(GROUPS, budgets, strict=True) for e in ("finetune", "scratch")
    ]
    first = accuracies("rotation", "10")
    assert float(rows[0]["mean_pct"]) == pytest.approx(100 * np.mean(first["finetune"]))
    assert float(rows[1]["mean_pct"]) == pytest.approx(100 * np.mean(first["scratch"]))
    assert rows[1]["diff_vs_scratch_pct"] == "" and rows[1]["p_value"] == ""

    # two of the four runs, both simclr: pretext is common now, only the budget varies
    data = json.loads(report([str(sweep / "2"), str(sweep / "3"), "--format", "json"], tmp_path))
    assert [d["group"] for d in data] == ["downstream.labels_per_class=10"] * 2 + [
        "downstream.labels_per_class=100"
    ] * 2
    ft, diff = data[0], np.array(SCRATCH_GAP)
    assert ft["labeled"] == 100 and ft["n"] == 3 and ft["runs"] == 1 and ft["n_pairs"] == 3
    assert ft["mean_pct"] == pytest.approx(100 * np.mean(accuracies("simclr", "10")["finetune"]))
    assert ft["diff_vs_scratch_pct"] == pytest.approx(100 * diff.mean())
    assert ft["p_value"] == pytest.approx(stats.wilcoxon(diff).pvalue)


def test_figures_group_without_the_budget_keys(sweep):
    runs = report_cli.load_runs([sweep])
    varying, _ = report_cli.split_overrides(runs)
    groups = report_cli.figure_groups(runs, varying)
    assert {k: [r.path.name for r in v] for k, v in groups.items()} == {
        "pretext=rotation": ["0", "1"],
        "pretext=simclr": ["2", "3"],
    }
    assert list(report_cli.figure_groups(runs[:2], ["downstream.labels_per_class"])) == [""]


def test_seed_groups_missing_override_and_pool(tmp_path):
    acc = accuracies("rotation", "10")
    for i, seed in enumerate(["seed=0", "seed=1", None]):
        overrides = ["dataset=mnist"] + ([seed] if seed else [])
        make_run(tmp_path / "runs" / str(i), overrides, acc, "10")
    make_run(tmp_path / "runs" / "3", None, acc, "10")  # no .hydra/overrides.yaml: no overrides
    runs = report_cli.load_runs([tmp_path / "runs"])
    varying, common = report_cli.split_overrides(runs)
    assert varying == ["dataset", "seed"] and common == {}
    assert list(report_cli.group_runs(runs, varying)) == [
        "dataset=mnist seed=0",
        "dataset=mnist seed=1",
        "dataset=mnist seed=-",
        "dataset=- seed=-",
    ]
    varying, common = report_cli.split_overrides(runs[:3], pool=("seed",))
    assert varying == [] and common == {"dataset": "mnist"}
    rows = report_cli.table_rows(report_cli.group_runs(runs[:3], varying))
    assert [r["group"] for r in rows] == [report_cli.ALL_RUNS] * 2
    assert rows[0]["n"] == 9 and rows[0]["n_pairs"] == 9 and rows[0]["runs"] == 3
    assert rows[0]["diff_vs_scratch_pct"] == pytest.approx(100 * np.mean(SCRATCH_GAP))


def test_pooled_repeats_pair_within_run_and_repeat():
    rows = [
        {"eval": e, "budget": "10", "repeat": r, "test_accuracy": 0.5} for e in ("finetune", "scratch") for r in (0, 1)
    ]
    runs = [report_cli.Run(Path(str(i)), {}, rows) for i in range(2)]
    ids = [(row["eval"], row["repeat"]) for row in report_cli.pooled_rows(runs)]
    assert ids == [
        ("finetune", 0),
        ("finetune", 1),
        ("scratch", 0),
        ("scratch", 1),
        ("finetune", 2),
        ("finetune", 3),
        ("scratch", 2),
        ("scratch", 3),
    ]


def test_missing_path_and_dir_without_results(tmp_path):
    res = run_cli(["does/not/exist"], tmp_path, exe="sslrun-report", timeout=60)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.startswith("sslrun-report: error: 'does/not/exist' does not exist")
    (tmp_path / "empty/sub").mkdir(parents=True)
    (tmp_path / "empty/sub/metrics.json").write_text("{}")
    res = run_cli(["empty"], tmp_path, exe="sslrun-report", timeout=60)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.startswith("sslrun-report: error: no run under 'empty': no results.csv")


def test_unreadable_results_name_the_file(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.csv").write_text("eval,budget\nfinetune,10\n")
    assert report_cli.main([str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sslrun-report: error: ") and str(run / "results.csv") in err
    assert "lacks the column(s) repeat, test_accuracy" in err
