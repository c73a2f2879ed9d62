"""A label-efficiency study end to end: budgets x repeats x evaluations, statistics, figures, TensorBoard."""

import csv
import json

from conftest import run_cli

# frozen_epochs=0: one training phase per model (each phase is a new trace, seconds each); the frozen phase is
# tested in test_cli and test_evals
STUDY = [
    "experiment=smoke",
    "trainer.progress=false",
    "trainer.epochs=1",
    "downstream.frozen_epochs=0",
    "downstream.unfrozen_epochs=1",
    "downstream.linear_epochs=5",
    "downstream.label_budgets=[5,all]",
    "downstream.repeats=2",
    "downstream.evals=[finetune,linear,knn,scratch]",
    "hydra.run.dir=run",
]


def test_study_writes_results_stats_figures_and_tensorboard(tmp_path):
    res = run_cli(STUDY, tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    run = tmp_path / "run"
    rows = list(csv.DictReader(open(run / "results.csv")))
    assert len(rows) == 2 * 2 * 4
    assert {(r["eval"], r["budget"], r["repeat"]) for r in rows} == {
        (e, b, r) for e in ("finetune", "linear", "knn", "scratch") for b in ("5", "all") for r in ("0", "1")
    }
    labeled = {r["budget"]: int(r["labeled"]) for r in rows}
    assert labeled["5"] == 50 and labeled["all"] == 1200 - 50  # smoke: 1,200 train, 5 validation per class
    metrics = json.loads((run / "metrics.json").read_text())
    study = {(s["eval"], s["budget"]): s for s in metrics["study"]}
    assert len(study) == 8 and study[("finetune", "5")]["n"] == 2
    assert study[("finetune", "5")]["vs_scratch"]["n_pairs"] == 2 and "vs_scratch" not in study[("scratch", "5")]
    assert metrics["downstream"]["finetune"]["n"] == 2  # headline numbers: the first budget, over repeats
    for name in ("boxplots", "label_efficiency", "training_curves", "predictions"):
        png = run / "figures" / f"{name}.png"
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert (run / "pretext/examples.png").is_file()
    report = (run / "report.md").read_text()
    assert "## Study" in report and "figures/boxplots.png" in report and "Wilcoxon" in report
    events = list((run / "tensorboard").rglob("events.out.tfevents*"))
    assert any("pretext" in str(e) for e in events)
    assert any("finetune/budget_all/repeat_1/unfrozen" in str(e) for e in events)
    assert "label-efficiency study" in res.stdout
