"""`sslrun-report`: the statistics of one or many runs, grouped by the overrides that differ
between them.

    sslrun-report outputs/multirun/2024-05-01/12-00-00
    sslrun-report outputs/run_a outputs/run_b --format csv --out reports/ab
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sslrun.atomic import atomic_write_text
from sslrun.report.names import EVAL_ORDER
from sslrun.report.results import RESULTS, ReportError, csv_text, read_results

PROG = "sslrun-report"
ALL_RUNS = "(all runs)"  # the group name when no override differs
# overrides that only choose the label budget: the figures draw budgets on their own axis (a panel
# per budget, the x of label efficiency), so runs differing only in these share a line and a colour
BUDGET_KEYS = (
    "downstream.labels_per_class",
    "downstream.num_labels",
    "downstream.label_fraction",
    "downstream.label_budgets",
)
COLUMNS = [
    "group",
    "runs",
    "eval",
    "budget",
    "labeled",
    "n",
    "mean_pct",
    "std_pct",
    "ci_low_pct",
    "ci_high_pct",
    "n_pairs",
    "diff_vs_scratch_pct",
    "diff_ci_low_pct",
    "diff_ci_high_pct",
    "p_value",
]

DESCRIPTION = """\
Statistics of sslrun runs: per group of runs, evaluation and label budget, the mean test accuracy,
its standard deviation and 95% t confidence interval, and the paired difference to `scratch` with a
Wilcoxon signed-rank p-value (sslrun.report.stats).

Finding runs: every directory under each PATH (PATH included) that holds a results.csv is a run, so
PATH may be one run directory, a Hydra multirun sweep (outputs/multirun/DATE/TIME) or any folder of
them.

Grouping: each run's overrides come from its .hydra/overrides.yaml (none if the file is missing;
hydra.* overrides are ignored). Overrides whose value differs between the runs found (an override
missing from some runs counts as the value "-") name the groups, "key=value key=value"; overrides
equal in every run are printed once as common. `seed` is an override like any other: runs that
differ in seed are separate groups unless you pass --pool seed. Runs in one group are pooled: each
(run, repeat) is one sample, and every evaluation is paired with `scratch` of the same run and
repeat (the same label draw).

Output: one row per group x evaluation x budget. Accuracies, standard deviations, intervals and
differences are in percent (percentage points for differences). --format md (default) prints a
markdown report; csv and json print the rows, with the columns:
{columns}
"""

EPILOG = """\
exit codes: 0 ok; 2 a PATH does not exist, holds no run, or a results.csv cannot be read.

examples:
  sslrun-report outputs/multirun/2024-05-01/12-00-00
  sslrun-report outputs/multirun/2024-05-01/12-00-00 --pool seed --format json
  sslrun-report outputs/ --out reports/all   # also report.md, summary.csv, summary.json, PNGs
  sslrun-report --compare outputs/multirun/2024-05-01/12-00-00   # experiment=compare's compare.md again
"""


@dataclass
class Run:
    path: Path
    overrides: dict[str, str]
    rows: list[dict[str, Any]] = field(default_factory=list)


# --- finding and reading runs --------------------------------------------------------------------


def _natural(path: Path) -> list[Any]:
    """Sort key: sweep jobs 0, 1, ..., 10 in numeric order."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(path))]


def find_runs(paths: list[str | os.PathLike]) -> list[Path]:
    """Run directories (holding results.csv) under every path, each once, in natural order."""
    found: dict[Path, None] = {}
    problems = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            problems.append(f"'{raw}' does not exist")
            continue
        runs = sorted({p.parent for p in path.rglob(RESULTS) if p.is_file()}, key=_natural) if path.is_dir() else []
        if not runs:
            problems.append(
                f"no run under '{raw}': no {RESULTS} in it or below it; pass a run "
                "directory or a multirun sweep directory (outputs/multirun/DATE/TIME)"
            )
        found.update(dict.fromkeys(r.resolve() for r in runs))
    if problems:
        raise ReportError("; ".join(problems))
    return list(found)


def read_overrides(run: Path) -> dict[str, str]:
    """{key: value} from .hydra/overrides.yaml; `+key=v` counts as `key=v`; hydra.* are dropped."""
    path = run / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return {}
    try:
        items = yaml.safe_load(path.read_text()) or []
    except yaml.YAMLError as err:
        raise ReportError(f"{path} is not YAML: {err}") from err
    if not isinstance(items, list):
        raise ReportError(f"{path}: expected a list of override strings, got {type(items).__name__}")
    out = {}
    for item in map(str, items):
        key, _, value = item.partition("=")
        key = key.lstrip("+")
        if not key.startswith("hydra."):
            out[key] = value
    return out


def load_runs(paths: list[str | os.PathLike]) -> list[Run]:
    return [Run(p, read_overrides(p), read_results(p)) for p in find_runs(paths)]


# --- grouping ------------------------------------------------------------------------------------


def split_overrides(runs: list[Run], pool: tuple[str, ...] = ()) -> tuple[list[str], dict[str, str]]:
    """(keys whose value differs between runs, in order of first appearance, except those in pool;
    {key: value} of the overrides equal in every run)."""
    keys = list(dict.fromkeys(k for run in runs for k in run.overrides))
    varying, common = [], {}
    for key in keys:
        values = {run.overrides.get(key, "-") for run in runs}
        if len(values) > 1:
            if key not in pool:
                varying.append(key)
        else:
            common[key] = values.pop()
    return varying, common


def group_name(run: Run, varying: list[str]) -> str:
    return " ".join(f"{k}={run.overrides.get(k, '-')}" for k in varying) or ALL_RUNS


def group_runs(runs: list[Run], varying: list[str]) -> dict[str, list[Run]]:
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(group_name(run, varying), []).append(run)
    return groups


def pooled_rows(runs: list[Run]) -> list[dict[str, Any]]:
    """The runs' rows with `repeat` renumbered per (run, repeat): pairs never cross runs."""
    ids: dict[tuple[int, int], int] = {}
    out = []
    for i, run in enumerate(runs):
        for row in run.rows:
            out.append({**row, "repeat": ids.setdefault((i, row["repeat"]), len(ids))})
    return out


# --- the table -----------------------------------------------------------------------------------


def _pct(value: float | None) -> float | None:
    return None if value is None else 100 * value


def table_rows(groups: dict[str, list[Run]]) -> list[dict[str, Any]]:
    """One row per group x eval x budget (COLUMNS), ordered by group, evaluation, labeled count."""
    from sslrun.report.stats import summarize  # scipy: only once there is something to summarize

    out = []
    for name, runs in groups.items():
        summary = summarize(pooled_rows(runs))
        evals = [e for e in EVAL_ORDER if any(s["eval"] == e for s in summary)]
        evals += sorted({s["eval"] for s in summary} - set(evals))
        summary.sort(key=lambda s: (evals.index(s["eval"]), s["labeled"], s["budget"]))
        for s in summary:
            vs = s.get("vs_scratch") or {}
            out.append(
                {
                    "group": name,
                    "runs": len(runs),
                    "eval": s["eval"],
                    "budget": s["budget"],
                    "labeled": s["labeled"],
                    "n": s["n"],
                    "mean_pct": _pct(s["mean"]),
                    "std_pct": _pct(s["std"]),
                    "ci_low_pct": _pct(s["ci_low"]),
                    "ci_high_pct": _pct(s["ci_high"]),
                    "n_pairs": vs.get("n_pairs"),
                    "diff_vs_scratch_pct": _pct(vs.get("diff_mean")),
                    "diff_ci_low_pct": _pct(vs.get("diff_ci_low")),
                    "diff_ci_high_pct": _pct(vs.get("diff_ci_high")),
                    "p_value": vs.get("p_value"),
                }
            )
    return out


def _num(value: float | None, fmt: str = ".2f") -> str:
    return "-" if value is None else format(value, fmt)


def _interval(low: float | None, high: float | None, fmt: str = ".2f") -> str:
    return "-" if low is None or high is None else f"[{low:{fmt}}, {high:{fmt}}]"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(
    rows: list[dict[str, Any]],
    runs: list[Run],
    varying: list[str],
    common: dict[str, str],
    pooled: tuple[str, ...] = (),
) -> str:
    common_text = " ".join(f"`{k}={v}`" for k, v in common.items()) or "none"
    grouped_by = ", ".join(f"`{k}`" for k in varying) or "nothing (one group)"
    header = f"Runs: {len(runs)}. Grouped by: {grouped_by}. Common overrides: {common_text}."
    if pooled:
        header += f" Pooled over: {', '.join(f'`{k}`' for k in pooled)}."
    lines = [
        "# sslrun report",
        "",
        header,
        "",
        "Accuracy in %; 95% CI: t interval of the mean; diff vs scratch: mean paired difference "
        "(same run and repeat) in points with its 95% CI; p: Wilcoxon signed-rank, two-sided.",
        "",
        "| group | eval | budget | labeled | n | mean % | std | 95% CI | diff vs scratch | p |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | --- | --- | ---: |",
    ]
    for r in rows:
        diff = _num(r["diff_vs_scratch_pct"], "+.2f")
        if r["diff_ci_low_pct"] is not None:
            diff += " " + _interval(r["diff_ci_low_pct"], r["diff_ci_high_pct"], "+.2f")
        cells = [
            r["group"],
            r["eval"],
            r["budget"],
            f"{r['labeled']:,}",
            str(r["n"]),
            _num(r["mean_pct"]),
            _num(r["std_pct"]),
            _interval(r["ci_low_pct"], r["ci_high_pct"]),
            diff,
            _num(r["p_value"], ".3g"),
        ]
        lines.append("| " + " | ".join(map(_cell, cells)) + " |")
    lines += ["", "## Runs", ""]
    lines += [f"- `{run.path}`: {group_name(run, varying)}" for run in runs]
    return "\n".join(lines) + "\n"


def to_csv(rows: list[dict[str, Any]]) -> str:
    return csv_text(rows, COLUMNS)


def to_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, indent=2) + "\n"


# --- writing -------------------------------------------------------------------------------------


def figure_groups(runs: list[Run], varying: list[str]) -> dict[str, list[Run]]:
    """The groups of the figures: by the varying overrides except BUDGET_KEYS; "" if only one."""
    groups = group_runs(runs, [k for k in varying if k not in BUDGET_KEYS])
    return groups if len(groups) > 1 else {"": runs}


def write_outputs(out: Path, report: str, rows: list[dict[str, Any]], runs: list[Run], varying: list[str]) -> None:
    """report.md, summary.csv, summary.json and the two figures in out. The figures group runs by
    the varying overrides other than BUDGET_KEYS, since the budget is already on their axes."""
    from sslrun.report import plots
    from sslrun.report.stats import summarize

    atomic_write_text(out / "report.md", report)
    atomic_write_text(out / "summary.csv", to_csv(rows))
    atomic_write_text(out / "summary.json", to_json(rows))
    pooled = {name: pooled_rows(members) for name, members in figure_groups(runs, varying).items()}
    plots.plot_boxplots([{**r, "group": name} for name, rs in pooled.items() for r in rs], out / "boxplots.png")
    summary = [{**s, "group": name} for name, rs in pooled.items() for s in summarize(rs)]
    plots.plot_label_efficiency(summary, out / "label_efficiency.png")


# --- entry point ---------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    columns = textwrap.fill(", ".join(COLUMNS), 96, initial_indent="  ", subsequent_indent="  ")
    p = argparse.ArgumentParser(
        prog=PROG,
        description=DESCRIPTION.format(columns=columns),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="a run directory, a multirun sweep directory, or any folder holding runs",
    )
    p.add_argument(
        "--format", choices=("md", "csv", "json"), default="md", help="what to print on stdout (default: md)"
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        type=Path,
        help="also write report.md, summary.csv, summary.json, boxplots.png and "
        "label_efficiency.png into DIR (created if needed); the figures put the "
        "budget on an axis, so they leave the budget overrides (downstream."
        "labels_per_class, num_labels, label_fraction, label_budgets) out of "
        "the group names",
    )
    p.add_argument(
        "--compare",
        action="store_true",
        help="PATH is a compare sweep (sslrun -m experiment=compare): write compare.md, compare.csv, "
        "compare.json and its figures into --out (default: the sweep directory) and print "
        "compare.md",
    )
    p.add_argument(
        "--pool",
        metavar="KEY",
        action="append",
        default=[],
        help="do not group by this override: runs differing only in KEY are pooled (repeatable; e.g. --pool seed)",
    )
    return p


def compare_main(args: argparse.Namespace) -> int:
    from sslrun.report.compare import CompareError, write_compare

    if len(args.paths) != 1 or not Path(args.paths[0]).is_dir():
        print(f"{PROG}: error: --compare takes one sweep directory, got {' '.join(args.paths)}", file=sys.stderr)
        return 2
    try:
        path, _ = write_compare(Path(args.paths[0]), args.out)
    except (CompareError, ReportError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    sys.stdout.write(path.read_text())
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.compare:
        return compare_main(args)
    try:
        runs = load_runs(args.paths)
        varying, common = split_overrides(runs, tuple(args.pool))
        groups = group_runs(runs, varying)
        rows = table_rows(groups)
        pooled = tuple(
            k
            for k in dict.fromkeys(args.pool)
            if k not in common and k not in varying and any(k in run.overrides for run in runs)
        )
        report = markdown(rows, runs, varying, common, pooled)
        if args.out is not None:
            write_outputs(args.out, report, rows, runs, varying)
    except ReportError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    sys.stdout.write({"md": report, "csv": to_csv(rows), "json": to_json(rows)}[args.format])
    return 0


if __name__ == "__main__":
    sys.exit(main())
