"""The compare report: pretext methods ranked on the same label draws (`sslrun -m experiment=compare`).

Written into the sweep directory when the sweep ends (a Hydra callback) and by `sslrun-report --compare
SWEEP_DIR` from existing runs:

    compare.md     the answer in one sentence, then per label budget the methods ranked
    compare.csv    the same rows
    compare.json
    figures/compare_accuracy.png, figures/compare_label_efficiency.png (several budgets)

Each run of the sweep is one method (its metrics.json's pretext_task). Per method and label budget: the
headline evaluation's test accuracy over the draws with its 95% t interval; the paired difference against
`scratch` on the same draws (each run's own scratch rows: the same cached results when the baseline cache
served them); the paired difference against the best method on the same draws; paired t-test p-values, Holm-
adjusted over the comparisons of the table (all methods x budgets against scratch; the others against the
best). The best method is the one with the highest mean accuracy on the validation images, never the test
split; the test accuracy is what the table reports. Wall time per method is its run's (pretext and
downstream), from metrics.json.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sslrun.atomic import atomic_write_text
from sslrun.report.results import csv_text, read_results
from sslrun.report.stats import BASELINE, holm, mean_ci, paired_vs_baseline

COLUMNS = [
    "budget",
    "labeled",
    "rank",
    "method",
    "eval",
    "draws",
    "val_pct",
    "test_pct",
    "ci_low_pct",
    "ci_high_pct",
    "vs_scratch_pts",
    "vs_scratch_ci_low",
    "vs_scratch_ci_high",
    "p_vs_scratch",
    "p_vs_scratch_holm",
    "vs_best_pts",
    "vs_best_ci_low",
    "vs_best_ci_high",
    "p_vs_best",
    "p_vs_best_holm",
    "wall_s",
    "pretext_s",
]
ALPHA = 0.05


class CompareError(Exception):
    """What is wrong with the runs handed to the compare report (said in one line)."""


@dataclass
class MethodRun:
    method: str
    eval: str  # the headline evaluation: finetune unless downstream.evals names another first
    path: Path
    rows: list[dict[str, Any]]
    wall: float | None
    pretext_seconds: float | None


def load_method_runs(sweep: Path) -> list[MethodRun]:
    """The finished runs under `sweep` (metrics.json and results.csv), one per method."""
    runs, seen = [], {}
    for metrics_file in sorted(sweep.rglob("metrics.json")):
        run = metrics_file.parent
        if not (run / "results.csv").is_file():
            continue
        metrics = json.loads(metrics_file.read_text())
        method = metrics.get("pretext_task")
        if method in seen:
            raise CompareError(
                f"{run} and {seen[method]} both ran pretext={method}; a compare sweep has one run "
                "per method (report other sweeps with sslrun-report without --compare)"
            )
        seen[method] = run
        rows = [{**r, "val_accuracy": _float(r.get("val_accuracy"))} for r in read_results(run)]
        pre = metrics.get("pretext") or {}
        runs.append(
            MethodRun(
                method,
                metrics.get("ssl_eval") or "finetune",
                run,
                rows,
                metrics.get("seconds"),
                None if pre.get("reused") else pre.get("seconds"),
            )
        )
    if not runs:
        raise CompareError(f"no finished run under {sweep} (no metrics.json next to a results.csv)")
    return runs


def sweep_status(sweep: Path, methods: list[str], current: str) -> str:
    """A compare job's first line: which method of how many, what finished, and the time left at the finished
    methods' mean wall time (every job runs a pretext stage and the same downstream study)."""
    walls = {}
    for metrics_file in sweep.glob("*/metrics.json"):
        try:
            m = json.loads(metrics_file.read_text())
        except (OSError, ValueError):
            continue
        if m.get("pretext_task") != current and m.get("seconds"):
            walls[m.get("pretext_task")] = m["seconds"]
    done = [k for k in methods if k in walls]
    position = methods.index(current) + 1 if current in methods else len(done) + 1
    line = f"compare: method {position} of {len(methods)} ({current})"
    if not done:
        return line + "; no method finished yet"
    mean = sum(walls[k] for k in done) / len(done)
    left = len(methods) - len(done)
    return (
        line + f"; finished: {', '.join(done)} ({mean / 60:.1f} min each on average): about "
        f"{left * mean / 60:.{0 if left * mean >= 600 else 1}f} min left for the {left} "
        f"method{'s' if left != 1 else ''} to go, this one included"
    )


def _float(value: Any) -> float | None:
    return None if value in (None, "", "None") else float(value)


def _by_repeat(rows: list[dict[str, Any]], name: str, budget: str, key: str = "test_accuracy") -> dict[int, float]:
    return {
        int(r["repeat"]): float(r[key])
        for r in rows
        if r["eval"] == name and str(r["budget"]) == budget and r.get(key) is not None
    }


def _budgets(runs: list[MethodRun]) -> list[str]:
    labeled: dict[str, int] = {}
    for run in runs:
        for r in run.rows:
            labeled[str(r["budget"])] = int(r.get("labeled") or 0)
    return sorted(labeled, key=lambda b: labeled[b])


def table(runs: list[MethodRun]) -> list[dict[str, Any]]:
    """One row per budget and method (scratch included), ranked by validation accuracy within each budget."""
    out = []
    for budget in _budgets(runs):
        entries = []
        for run in runs:
            test = _by_repeat(run.rows, run.eval, budget)
            if not test:
                continue
            val = _by_repeat(run.rows, run.eval, budget, "val_accuracy")
            scratch = _by_repeat(run.rows, BASELINE, budget)
            entries.append(
                {
                    "budget": budget,
                    "method": run.method,
                    "eval": run.eval,
                    "test": test,
                    "val": val,
                    "vs_scratch": paired_vs_baseline(test, scratch) if scratch else None,
                    "wall_s": run.wall,
                    "pretext_s": run.pretext_seconds,
                    "labeled": _labeled(run, budget),
                }
            )
        scratch_row = _scratch_entry(runs, budget)
        ranked = sorted(entries, key=lambda e: -(np.mean(list(e["val"].values())) if e["val"] else -1))
        best = ranked[0] if ranked else None
        for rank, e in enumerate(ranked, 1):
            e["rank"] = rank
            e["vs_best"] = paired_vs_baseline(e["test"], best["test"]) if e is not best else None
        out += ranked + ([scratch_row] if scratch_row else [])
    _adjust(out, "vs_scratch")
    _adjust(out, "vs_best")
    return [_flat(e) for e in out]


def _labeled(run: MethodRun, budget: str) -> int:
    return next(int(r.get("labeled") or 0) for r in run.rows if str(r["budget"]) == budget)


def _scratch_entry(runs: list[MethodRun], budget: str) -> dict[str, Any] | None:
    """The baseline pooled over the runs per draw (identical values when the baseline cache served them)."""
    by: dict[int, list[float]] = defaultdict(list)
    val: dict[int, list[float]] = defaultdict(list)
    for run in runs:
        for k, v in _by_repeat(run.rows, BASELINE, budget).items():
            by[k].append(v)
        for k, v in _by_repeat(run.rows, BASELINE, budget, "val_accuracy").items():
            val[k].append(v)
    if not by:
        return None
    return {
        "budget": budget,
        "method": BASELINE,
        "eval": BASELINE,
        "rank": None,
        "labeled": _labeled(runs[0], budget),
        "test": {k: float(np.mean(v)) for k, v in by.items()},
        "val": {k: float(np.mean(v)) for k, v in val.items()},
        "vs_scratch": None,
        "vs_best": None,
        "wall_s": None,
        "pretext_s": None,
    }


def _adjust(entries: list[dict[str, Any]], key: str) -> None:
    """Holm over every comparison of this kind in the table."""
    have = [e for e in entries if e.get(key) and e[key].get("p_t") is not None]
    for e, p in zip(have, holm([e[key]["p_t"] for e in have]), strict=True):
        e[key]["p_holm"] = p


def _pct(x: float | None) -> float | None:
    return None if x is None else round(100 * x, 4)


def _flat(e: dict[str, Any]) -> dict[str, Any]:
    test = mean_ci([e["test"][k] for k in sorted(e["test"])])
    vs, best = e.get("vs_scratch") or {}, e.get("vs_best") or {}
    val = list(e["val"].values())
    return {
        "budget": e["budget"],
        "labeled": e["labeled"],
        "rank": e["rank"],
        "method": e["method"],
        "eval": e["eval"],
        "draws": test["n"],
        "val_pct": _pct(float(np.mean(val))) if val else None,
        "test_pct": _pct(test["mean"]),
        "ci_low_pct": _pct(test["ci_low"]),
        "ci_high_pct": _pct(test["ci_high"]),
        "vs_scratch_pts": _pct(vs.get("diff_mean")),
        "vs_scratch_ci_low": _pct(vs.get("diff_ci_low")),
        "vs_scratch_ci_high": _pct(vs.get("diff_ci_high")),
        "p_vs_scratch": vs.get("p_t"),
        "p_vs_scratch_holm": vs.get("p_holm"),
        "vs_best_pts": _pct(best.get("diff_mean")),
        "vs_best_ci_low": _pct(best.get("diff_ci_low")),
        "vs_best_ci_high": _pct(best.get("diff_ci_high")),
        "p_vs_best": best.get("p_t"),
        "p_vs_best_holm": best.get("p_holm"),
        "wall_s": e["wall_s"],
        "pretext_s": e["pretext_s"],
    }


# --- words -------------------------------------------------------------------------------------------


def _f(x: float | None, fmt: str = ".2f", suffix: str = "") -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:{fmt}}{suffix}"


def answer(rows: list[dict[str, Any]]) -> list[str]:
    """Per budget: the best method on validation images, its gain over scratch with CI and Holm p."""
    out = []
    for budget in dict.fromkeys(r["budget"] for r in rows):
        best = next((r for r in rows if r["budget"] == budget and r["rank"] == 1), None)
        if best is None:
            continue
        n = sum(1 for r in rows if r["budget"] == budget and r["rank"] is not None)
        head = (
            f"{best['method']} pretext is the best of {n} method{'s' if n != 1 else ''} on validation images "
            f"at {best['labeled']:,} labels"
        )
        if best["vs_scratch_pts"] is None:
            out.append(head + f": {_f(best['test_pct'])}% test accuracy (no scratch baseline ran)")
            continue
        if best["draws"] < 2:
            out.append(head + f": {best['vs_scratch_pts']:+.2f} points over scratch (1 label draw: no interval)")
            continue
        p = best["p_vs_scratch_holm"]
        verdict = "significant" if p is not None and p < ALPHA else "not significant"
        out.append(
            head + f": {best['vs_scratch_pts']:+.2f} points over the same network from scratch "
            f"({_f(best['test_pct'])}% vs {_f(_scratch_pct(rows, budget))}%; 95% CI "
            f"{best['vs_scratch_ci_low']:+.2f} .. {best['vs_scratch_ci_high']:+.2f}, {best['draws']} label "
            f"draws, {verdict}: Holm-adjusted p = {_f(p, '.2g')})"
        )
    return out


def _scratch_pct(rows: list[dict[str, Any]], budget: str) -> float | None:
    return next((r["test_pct"] for r in rows if r["budget"] == budget and r["method"] == BASELINE), None)


def markdown(rows: list[dict[str, Any]], runs: list[MethodRun], sweep: Path, figures: dict[str, Path]) -> str:
    lines = ["# sslrun compare: pretext methods on the same label draws", ""]
    lines += [f"**{s}.**" for s in answer(rows)]
    lines += [
        "",
        f"Sweep: `{sweep}`; {len(runs)} runs: " + ", ".join(f"{r.method} (`{r.path.name}`)" for r in runs) + ".",
        "",
        "Ranked by mean accuracy on the validation images (the test split chooses nothing). Test accuracy: "
        "mean over the label draws with its 95% t interval. Differences in points, paired by draw: against "
        "the same network from scratch, and against the best method; p: paired t-test, two-sided, and "
        "Holm-adjusted over the table's comparisons of that kind. Wall: the method's whole run.",
        "",
    ]
    head = (
        "| rank | method | draws | val | test (95% CI) | vs scratch (95% CI) | p (Holm) | vs best (95% CI) | "
        "p (Holm) | wall |"
    )
    for budget in dict.fromkeys(r["budget"] for r in rows):
        mine = [r for r in rows if r["budget"] == budget]
        lines += [
            f"## {mine[0]['labeled']:,} labels (budget {budget})",
            "",
            head,
            "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in mine:
            label = r["method"] + ("" if r["eval"] in ("finetune", BASELINE) else f" ({r['eval']})")
            lines.append(
                f"| {r['rank'] or '-'} | {label} | {r['draws']} | {_f(r['val_pct'], suffix='%')} | "
                f"{_f(r['test_pct'], suffix='%')}{_ci(r['ci_low_pct'], r['ci_high_pct'], '.2f')} | "
                f"{_f(r['vs_scratch_pts'], '+.2f')}{_ci(r['vs_scratch_ci_low'], r['vs_scratch_ci_high'])} | "
                f"{_f(r['p_vs_scratch'], '.2g')}{_paren(r['p_vs_scratch_holm'])} | "
                f"{_f(r['vs_best_pts'], '+.2f')}{_ci(r['vs_best_ci_low'], r['vs_best_ci_high'])} | "
                f"{_f(r['p_vs_best'], '.2g')}{_paren(r['p_vs_best_holm'])} | {_wall(r)} |"
            )
        lines.append("")
    for name, path in figures.items():
        lines += [f"![{name}]({path.relative_to(sweep) if path.is_relative_to(sweep) else path})", ""]
    lines += ["Rows: `compare.csv`, `compare.json`; each run's own report: `<job>/report.md`.", ""]
    return "\n".join(lines)


def _ci(low: float | None, high: float | None, fmt: str = "+.2f") -> str:
    return "" if low is None or high is None else f" ({low:{fmt}} .. {high:{fmt}})"


def _paren(p: float | None) -> str:
    return "" if p is None else f" ({p:.2g})"


def _wall(r: dict[str, Any]) -> str:
    if r["wall_s"] is None:
        return "-"
    pre = f", pretext {r['pretext_s'] / 60:.1f}" if r["pretext_s"] else ""
    return f"{r['wall_s'] / 60:.1f} min{pre}"


def figures(rows: list[dict[str, Any]], runs: list[MethodRun], out: Path) -> dict[str, Path]:
    from sslrun.report import plots
    from sslrun.report.stats import summarize

    fig = out / "figures"
    made = {"accuracy": plots.plot_compare(rows, fig / "compare_accuracy.png")}
    if len({r["budget"] for r in rows}) > 1:
        summary = []
        for run in runs:
            mine = [r for r in run.rows if r["eval"] == run.eval]
            summary += [{**s, "group": "", "eval": run.method} for s in summarize(mine)]
        baseline = [r for r in runs[0].rows if r["eval"] == BASELINE]
        summary += [{**s, "group": "", "eval": BASELINE} for s in summarize(baseline)]
        made["label_efficiency"] = plots.plot_label_efficiency(summary, fig / "compare_label_efficiency.png")
    return made


def to_csv(rows: list[dict[str, Any]]) -> str:
    return csv_text(rows, COLUMNS)


def write_compare(sweep: Path, out: Path | None = None) -> tuple[Path, list[str]]:
    """compare.md, .csv, .json and figures for the runs under `sweep`, into `out` (default: `sweep`)."""
    out = out or sweep
    runs = load_method_runs(sweep)
    rows = table(runs)
    figs = figures(rows, runs, out)
    atomic_write_text(out / "compare.csv", to_csv(rows))
    atomic_write_text(out / "compare.json", json.dumps(rows, indent=1))
    atomic_write_text(out / "compare.md", markdown(rows, runs, out, figs))
    return out / "compare.md", answer(rows)
