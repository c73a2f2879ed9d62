"""Label selection against random and stratified draws (issue 29): `make bench-select`.

Each strategy is one `sslrun` run over an already trained pretext encoder (stage=downstream pretext.from=RUN),
which pairs it with draw=random on the same budgets and repeats (results_random.csv); one more run with
draw=stratified (the per-class oracle) on the same repeats. Then bench/SELECT_RESULTS.md-style tables:
the strategy's mean, random's, the paired difference with its 95% CI, and the difference to stratified.

    python bench/select.py --pretext /tmp/select-bench/cifar-pretext --out /tmp/select-bench/cifar \
        --strategies typiclust kcenter --repeats 3
"""

from __future__ import annotations

import os
import sys

# this file's folder first on sys.path would make it the standard library's `select` (subprocess imports that)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import argparse  # noqa: E402
import csv  # noqa: E402
import subprocess  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sslrun.report.stats import paired_vs_baseline  # noqa: E402


def rows(path: Path) -> dict[tuple[str, str], dict[int, float]]:
    out: dict[tuple[str, str], dict[int, float]] = {}
    with open(path) as fh:
        for r in csv.DictReader(fh):
            out.setdefault((r["eval"], r["budget"]), {})[int(r["repeat"])] = float(r["test_accuracy"])
    return out


def sslrun(pretext: Path, run_dir: Path, draw: str, args: argparse.Namespace) -> None:
    if (run_dir / "metrics.json").is_file():
        return
    cmd = [
        sys.executable,
        "-m",
        "sslrun",
        *Path(pretext, ".hydra", "overrides.yaml").read_text().replace("- ", "").split("\n"),
    ]
    cmd = [c for c in cmd if c and not c.startswith("stage=")] + [
        "stage=downstream",
        f"pretext.from={pretext}",
        f"downstream.draw={draw}",
        "downstream.labels_per_class=null",
        f"downstream.num_labels={args.budgets[0]}",
        f"downstream.label_budgets=[{','.join(map(str, args.budgets))}]",
        f"downstream.repeats={args.repeats}",
        "downstream.evals=[linear,propagate]",
        "downstream.val_per_class=0",
        f"hydra.run.dir={run_dir}",
    ]
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def pts(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:+.1f}"


def table(out: Path, strategies: list[str]) -> str:
    strat = rows(out / "stratified" / "results.csv")
    lines = [
        "| strategy | eval | labels | strategy acc | random acc | vs random (pts, 95% CI) | stratified acc | "
        "vs stratified (pts, 95% CI) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in strategies:
        mine, rand = rows(out / name / "results.csv"), rows(out / name / "results_random.csv")
        for key, acc in mine.items():
            vr, vs = paired_vs_baseline(acc, rand[key]), paired_vs_baseline(acc, strat.get(key, {}))
            mean = sum(acc.values()) / len(acc)
            rmean = sum(rand[key].values()) / len(rand[key])
            smean = sum(strat[key].values()) / len(strat[key]) if key in strat else None
            lines.append(
                f"| {name} | {key[0]} | {key[1]} | {100 * mean:.1f} | {100 * rmean:.1f} | "
                f"{pts(vr['diff_mean'])} [{pts(vr['diff_ci_low'])}, {pts(vr['diff_ci_high'])}] | "
                f"{'n/a' if smean is None else f'{100 * smean:.1f}'} | "
                + (f"{pts(vs['diff_mean'])} [{pts(vs['diff_ci_low'])}, {pts(vs['diff_ci_high'])}] |" if vs else "n/a |")
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pretext", type=Path, required=True, help="a finished sslrun run (stage=pretext)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--strategies", nargs="+", default=["typiclust", "probcover", "kcenter"])
    parser.add_argument("--budgets", nargs="+", type=int, default=[10, 20, 50, 100])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for draw in [*args.strategies, "stratified"]:
        sslrun(args.pretext, args.out / draw, draw, args)
    print(table(args.out, args.strategies))


if __name__ == "__main__":
    main()
