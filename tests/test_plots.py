"""Each figure of sslrun.report.plots: a real PNG written atomically, on normal and edge input."""

from pathlib import Path

import numpy as np
import pytest

from sslrun.report import plots
from sslrun.report.stats import summarize

PNG = b"\x89PNG\r\n\x1a\n"
# fixed accuracies: eval -> budget -> 5 repeats
ACC = {
    "finetune": {"10": [0.81, 0.84, 0.79, 0.86, 0.83], "100": [0.93, 0.94, 0.92, 0.95, 0.93]},
    "scratch": {"10": [0.70, 0.74, 0.69, 0.73, 0.71], "100": [0.90, 0.91, 0.89, 0.92, 0.90]},
}
LABELED = {"10": 100, "100": 1000}


def results(repeats: int = 5) -> list[dict]:
    return [
        {
            "eval": e,
            "budget": b,
            "labeled": LABELED[b],
            "repeat": r,
            "test_accuracy": v,
            "test_loss": 0.5,
            "seconds": 1.0,
        }
        for e, by_budget in ACC.items()
        for b, values in by_budget.items()
        for r, v in enumerate(values[:repeats])
    ]


def assert_png(path: Path, returned: Path) -> None:
    assert Path(returned) == path and path.is_file()
    data = path.read_bytes()
    assert data[:8] == PNG and len(data) > 1024
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []  # no temp files


@pytest.mark.parametrize("repeats", [5, 1])
def test_boxplots_and_label_efficiency(tmp_path, repeats):
    rows = results(repeats)
    assert_png(tmp_path / "box.png", plots.plot_boxplots(rows, tmp_path / "box.png"))
    summary = summarize(rows)
    if repeats == 1:
        assert all(s["ci_low"] is None for s in summary)  # the band is skipped, the lines drawn
    assert_png(tmp_path / "eff.png", plots.plot_label_efficiency(summary, tmp_path / "eff.png"))


def test_one_eval_one_budget_nan_and_groups(tmp_path):
    rows = [r for r in results() if r["eval"] == "finetune" and r["budget"] == "10"]
    rows[0] = {**rows[0], "test_accuracy": float("nan")}
    assert_png(tmp_path / "a.png", plots.plot_boxplots(rows, tmp_path / "a.png"))
    assert_png(tmp_path / "b.png", plots.plot_label_efficiency(summarize(rows), tmp_path / "b.png"))
    grouped = [{**r, "group": f"pretext={p}"} for p in ("rotation", "simclr") for r in results()]
    assert_png(tmp_path / "c.png", plots.plot_boxplots(grouped, tmp_path / "c.png"))
    summary = [{**s, "group": "pretext=rotation"} for s in summarize(results())]
    assert_png(tmp_path / "d.png", plots.plot_label_efficiency(summary, tmp_path / "d.png"))
    assert_png(tmp_path / "e.png", plots.plot_boxplots([], tmp_path / "e.png"))


def test_training_curves_pretext_and_downstream(tmp_path):
    pre = tmp_path / "pretext.csv"
    pre.write_text(
        "epoch,accuracy,learning_rate,loss,val_accuracy,val_loss\n"
        "0,0.5,0.001,1.2,0.55,1.1\n1,0.7,0.001,nan,0.72,0.9\n2,0.8,0.001,0.6,0.79,0.7\n"
    )
    down = tmp_path / "downstream.csv"
    lines = ["eval,budget,repeat,phase,epoch,loss,accuracy,val_loss,val_accuracy"]
    for budget in ("10", "100"):
        for repeat in (0, 1):
            for name, phases in (("finetune", ("frozen", "unfrozen")), ("scratch", ("train",))):
                for phase in phases:
                    lines += [f"{name},{budget},{repeat},{phase},{e},{1 / (e + 1)},{0.5 + e / 10},," for e in range(3)]
    down.write_text("\n".join(lines) + "\n")
    ds_rows = plots.read_history(down)
    by_line = plots._curves_of(ds_rows)
    assert set(by_line) == {"finetune/frozen", "finetune/unfrozen", "scratch/train"}
    assert all(len(v) == 3 for v in by_line.values())  # first budget, first repeat only
    epochs = plots._epochs(by_line)
    assert list(epochs["finetune/unfrozen"]) == [4, 5, 6]  # continues after the frozen phase
    out = tmp_path / "curves.png"
    histories = {"pretext": pre, "downstream": down, "missing": tmp_path / "nope.csv"}
    assert_png(out, plots.plot_training_curves(histories, out))


@pytest.mark.parametrize("channels", [1, 3])
def test_prediction_grid_half_wrong_and_all_right(tmp_path, channels):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 12, 12, channels), dtype=np.uint8)
    y_true = np.arange(40) % 10
    y_pred = y_true.copy()
    y_pred[::3] = (y_pred[::3] + 1) % 10  # 14 wrong
    hit = y_true == y_pred
    right, wrong = plots._pick(np.flatnonzero(hit), np.flatnonzero(~hit), 32)
    assert (len(right), len(wrong)) == (18, 14)  # not enough wrong ones: the rest are right ones
    names = [f"c{i}" for i in range(10)]
    out = tmp_path / "grid.png"
    assert_png(out, plots.plot_prediction_grid(images, y_true, y_pred, names, out))
    none_wrong = plots.plot_prediction_grid(images, y_true, y_true, names, out, n=8)
    assert_png(out, none_wrong)
    one_hot = np.eye(10)[y_pred[:3]]  # probabilities or one-hot rows: argmax
    assert_png(out, plots.plot_prediction_grid(images[:3], y_true[:3], one_hot, None, out))


@pytest.mark.parametrize("channels", [1, 3])
def test_pretext_example_figures(tmp_path, channels):
    rng = np.random.default_rng(1)
    images = rng.random((6, 12, 12, channels))
    k = np.array([0, 1, 2, 3, 0, 1])
    out = tmp_path / "rot.png"
    predicted = (k + np.array([0, 0, 1, 0, 0, 0])) % 4
    assert_png(out, plots.plot_rotation_examples(images, k, predicted, out))
    assert_png(out, plots.plot_rotation_examples(images[:1], k[:1], None, out))
    out = tmp_path / "views.png"
    assert_png(out, plots.plot_view_pairs(images, rng.random(images.shape), out))
    out = tmp_path / "colour.png"
    gray = images[..., :1]
    assert_png(out, plots.plot_colorization_examples(gray, rng.random((6, 12, 12, 3)), rng.random((6, 12, 12, 3)), out))


def test_failed_write_leaves_no_temp_file(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(plots.Figure, "savefig", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        plots.plot_boxplots(results(), tmp_path / "box.png")
    assert list(tmp_path.iterdir()) == []
