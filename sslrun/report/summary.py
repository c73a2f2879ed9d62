"""metrics.json, report.md and the closing rich table of a run."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

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


EVAL_LABELS = {
    "finetune": "fine-tuned from pretext (frozen, then unfrozen)",
    "linear": "linear probe on pretext features",
    "knn": "kNN on pretext features",
    "scratch": "from scratch (baseline)",
}


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def result_rows(metrics: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows = []
    pre = metrics.get("pretext") or {}
    if pre:
        accuracy = pre.get("val_accuracy", pre.get("val_probe_accuracy", pre.get("accuracy")))  # two-view: the probe
        loss = pre.get("val_loss", pre.get("loss", float("nan")))
        label = f"pretext {metrics['pretext_task']} (validation images)"
        rows.append((label, _pct(accuracy), f"{loss:.4f}", f"{pre.get('seconds', 0):.1f}"))
    for key, r in (metrics.get("downstream") or {}).items():
        loss = "-" if r.get("test_loss") is None else f"{r['test_loss']:.4f}"
        rows.append((EVAL_LABELS.get(key, key), _pct(r["test_accuracy"]), loss, f"{r['seconds']:.1f}"))
    return rows


def print_table(metrics: dict[str, Any]) -> None:
    table = Table(title=f"sslrun: {metrics['pretext_task']} on {metrics['dataset']} (seed {metrics['seed']})")
    for col in ("model", "accuracy", "loss", "seconds"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for row in result_rows(metrics):
        table.add_row(*row)
    if metrics.get("gain") is not None:
        table.caption = f"pretext gain over baseline: {100 * metrics['gain']:+.2f} points of test accuracy"
    Console().print(table)


def report_markdown(metrics: dict[str, Any], command: str) -> str:
    sizes = metrics["splits"]
    lines = [
        f"# sslrun report: {metrics['pretext_task']} on {metrics['dataset']}",
        "",
        f"Command: `{command}`",
        "",
        f"Splits: {sizes['pretext']} unlabeled for pretext, {sizes['labeled']} labeled, "
        f"{sizes['val']} validation, {sizes['test']} test. Data: {metrics['data_source']}.",
        "",
        "| model | test accuracy (pretext row: its own validation metric) | loss | seconds |",
        "| --- | ---: | ---: | ---: |",
    ]
    lines += [f"| {' | '.join(row)} |" for row in result_rows(metrics)]
    if metrics.get("gain") is not None:
        lines += ["", f"Gain of pretext training over the scratch baseline: **{100 * metrics['gain']:+.2f}** points."]
    lines += ["", "Histories: `pretext/history.csv`, `downstream/history.csv`. Config: `.hydra/config.yaml`.", ""]
    return "\n".join(lines)


def write_reports(run_dir: Path, metrics: dict[str, Any], command: str) -> None:
    atomic_write_json(run_dir / "metrics.json", metrics)
    atomic_write_text(run_dir / "report.md", report_markdown(metrics, command))
