"""metrics.json, report.md and the closing rich table of a run."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from sslrun.report.names import EVAL_LABELS
from sslrun.training.artifacts import atomic_write_json, atomic_write_text


def write_history_csv(rows: list[dict[str, Any]], path: Path) -> None:
    if not rows:
        return
    columns = list(dict.fromkeys(k for row in rows for k in row))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def result_rows(metrics: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows = []
    pre = metrics.get("pretext") or {}
    if "reused_from" in pre:
        rows.append((f"pretext {metrics['pretext_task']} (reused from {pre['reused_from']})", "-", "-", "-"))
    elif pre:
        accuracy = pre.get("val_accuracy", pre.get("val_probe_accuracy", pre.get("accuracy")))  # two-view: the probe
        loss = pre.get("val_loss", pre.get("loss", float("nan")))
        label = f"pretext {metrics['pretext_task']} (validation images)"
        rows.append((label, _pct(accuracy), f"{loss:.4f}", f"{pre.get('seconds', 0):.1f}"))
    for key, r in (metrics.get("downstream") or {}).items():
        loss = "-" if r.get("test_loss") is None else f"{r['test_loss']:.4f}"
        label = EVAL_LABELS.get(key, key) + (f" (mean of {r['n']})" if r.get("n", 1) > 1 else "")
        rows.append((label, _pct(r["test_accuracy"]), loss, f"{r['seconds']:.1f}"))
    return rows


def health_line(pre: dict[str, Any]) -> str | None:
    """The pretext encoder's label-free health at its last epoch (sslrun/training/health.py), in one sentence."""
    if pre.get("rankme") is None:
        return None
    dim = pre.get("embedding_dim")
    parts = [
        f"RankMe {pre['rankme']:.1f}" + (f" of {dim} dimensions" if dim else ""),
        f"std of the l2-normalised embedding {pre['embedding_std']:.3g}"
        + (f" (spread: about {dim**-0.5:.3g})" if dim else ""),
    ]
    if pre.get("alignment") is not None:
        parts.append(f"alignment {pre['alignment']:.3g}, uniformity {pre['uniformity']:.3g} (lower is better)")
    collapsed = pre.get("collapsed_epochs") or []
    verdict = f"collapsed at epoch(s) {', '.join(map(str, collapsed))}" if collapsed else "no epoch collapsed"
    return f"Pretext health at the last epoch, without labels: {'; '.join(parts)}; {verdict}."


def study_rows(metrics: dict[str, Any]) -> list[tuple[str, ...]]:
    """One row per evaluation x budget: n, mean, std, 95% CI, paired difference against scratch and its p-value."""
    rows = []
    for s in metrics.get("study") or []:
        ci = "-" if s["ci_low"] is None else f"{_pct(s['ci_low'])} .. {_pct(s['ci_high'])}"
        std = "-" if s["std"] is None else f"{100 * s['std']:.2f}"
        vs = s.get("vs_scratch") or {}
        diff = "-" if not vs else f"{100 * vs['diff_mean']:+.2f}"
        p = "-" if vs.get("p_value") is None else f"{vs['p_value']:.3g}"
        p_t = "-" if vs.get("p_t") is None else f"{vs['p_t']:.3g}"
        rows.append(
            (s["eval"], str(s["budget"]), str(s["labeled"]), str(s["n"]), _pct(s["mean"]), std, ci, diff, p_t, p)
        )
    return rows


STUDY_COLUMNS = (
    "eval",
    "budget",
    "labeled",
    "repeats",
    "mean",
    "std (pts)",
    "95% CI",
    "vs scratch (pts)",
    "p (paired t)",
    "p (Wilcoxon)",
)


def print_table(metrics: dict[str, Any]) -> None:
    console = Console(width=None if sys.stdout.isatty() else 150)  # logs and CI: no squeezed columns
    table = Table(title=f"sslrun: {metrics['pretext_task']} on {metrics['dataset']} (seed {metrics['seed']})")
    for col in ("model", "accuracy", "loss", "seconds"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for row in result_rows(metrics):
        table.add_row(*row)
    if metrics.get("gain") is not None:
        table.caption = f"pretext gain over baseline: {100 * metrics['gain']:+.2f} points of test accuracy"
    console.print(table)
    if _is_study(metrics):
        study = Table(title="label-efficiency study: test accuracy over repeats")
        for col in STUDY_COLUMNS:
            study.add_column(col, justify="left" if col == "eval" else "right")
        for row in study_rows(metrics):
            study.add_row(*row)
        console.print(study)


def _is_study(metrics: dict[str, Any]) -> bool:
    return bool(metrics.get("study")) and (
        metrics.get("repeats", 1) > 1 or isinstance(metrics.get("label_budget"), list)
    )


def report_markdown(
    metrics: dict[str, Any], command: str, plots: dict[str, Path] | None = None, run_dir: Path | None = None
) -> str:
    sizes = metrics["splits"]
    lines = [
        f"# sslrun report: {metrics['pretext_task']} on {metrics['dataset']}",
        "",
        *[f"**{line}.**" for line in metrics.get("answer", [])],
        *([""] if metrics.get("answer") else []),
        f"Command: `{command}`",
        "",
        f"Splits: {sizes['pretext']} unlabeled for pretext ({metrics.get('pretext_pool', 'train')}), "
        f"{sizes['labeled']} labeled, {sizes['val']} validation, {sizes['test']} test. "
        f"Label budget: {metrics.get('label_budget')}; repeats: {metrics.get('repeats', 1)}. "
        f"Data: {metrics['data_source']}.",
        "",
        "| model | test accuracy (pretext row: its own validation metric) | loss | seconds |",
        "| --- | ---: | ---: | ---: |",
    ]
    lines += [f"| {' | '.join(row)} |" for row in result_rows(metrics)]
    health = health_line(metrics.get("pretext") or {})
    if health:
        lines += ["", health]
    if metrics.get("gain") is not None:
        lines += ["", f"Gain of pretext training over the scratch baseline: **{100 * metrics['gain']:+.2f}** points."]
    if _is_study(metrics):
        lines += [
            "",
            "## Study",
            "",
            "Mean test accuracy over repeats (label draws); 95% CI of the mean from "
            "Student's t; paired difference against `scratch` on the same draws: the paired t-test (the one "
            "its interval inverts) and the Wilcoxon signed-rank test, both two-sided.",
            "",
            f"| {' | '.join(STUDY_COLUMNS)} |",
            "|" + " --- |" * len(STUDY_COLUMNS),
        ]
        lines += [f"| {' | '.join(row)} |" for row in study_rows(metrics)]
    lines += hygiene_lines(metrics.get("hygiene"))
    for name, path in (plots or {}).items():
        rel = path.relative_to(run_dir) if run_dir and path.is_relative_to(run_dir) else path
        lines += ["", f"![{name}]({rel})"]
    lines += [
        "",
        "Per-repeat results: `results.csv`. Histories: `pretext/history.csv`, `downstream/history.csv`; "
        "TensorBoard: `tensorboard/`. Config: `.hydra/config.yaml`.",
        "",
    ]
    return "\n".join(lines)


def hygiene_lines(h: dict[str, Any] | None) -> list[str]:
    """report.md's pool hygiene section (sslrun/data/hygiene.py), or nothing when the check did not run."""
    if not h:
        return []
    checked = h["checked"]
    leaks = h["images_copying_test"]
    fate = (
        "dropped before pretext: `dataset.drop_test_duplicates=true`"
        if h["dropped"]
        else "kept: `dataset.drop_test_duplicates=true` drops them"
        if leaks
        else "none to drop"
    )
    return [
        "",
        "## Pool hygiene",
        "",
        f"{checked['train']:,} train + {checked['unlabeled']:,} unlabeled images checked against each other and "
        f"{checked['test']:,} test images in {h['seconds']:.1f} s ({h['method']}): "
        f"**{h['exact_pairs']:,} exact and {h['near_pairs']:,} near duplicate pairs** in the pool; "
        f"**{h['test_exact_pairs']:,} exact and {h['test_near_pairs']:,} near pairs with a test image**, "
        f"{leaks:,} train/unlabeled images that copy a test image ({fate}). Pairs: `{h['pairs']}`.",
        "",
        f"![pool hygiene]({h['figure']})",
    ]


def write_reports(run_dir: Path, metrics: dict[str, Any], command: str, plots: dict[str, Path] | None = None) -> None:
    atomic_write_json(run_dir / "metrics.json", metrics)
    atomic_write_text(run_dir / "report.md", report_markdown(metrics, command, plots, run_dir))
