"""Seed-to-seed spread of seed 001 (1,000 MNIST images, 300 test images): the faithful notebook
(bench/faithful/seed001.py) and `sslrun experiment=seed001_mnist_rotation` over the same seeds, each
run its own process; per seed both test accuracies, then mean, std and a Mann-Whitney U test of the
two samples (scipy). A single seed's row in bench/RESULTS.md moves by points from seed to seed on
300 test images; this says whether the preset and the notebook differ beyond that.

    python bench/seed_spread.py [--seeds 10] [--work DIR] [--no-faithful] [PRESET OVERRIDES ...]

e.g. `python bench/seed_spread.py pretext.head_init=glorot_uniform downstream.head_init=glorot_uniform`
for the preset with Keras' default head initializer.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from run import MNIST, ROOT  # bench/run.py's: the files `make bench` gives seed 001's rows

PRESET = "seed001_mnist_rotation"


def run(command: list[str], log: Path, env: dict[str, str]) -> None:
    with open(log, "wb") as out:
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT).returncode
    if code != 0:
        sys.exit(f"{command[1]} failed (exit {code}); its log: {log}")


def faithful(seed: int, work: Path, env: dict[str, str]) -> float:
    out = work / f"faithful-{seed}.json"
    run(
        [sys.executable, str(ROOT / "bench" / "faithful" / "seed001.py"), "--seed", str(seed), "--out", str(out)],
        work / f"faithful-{seed}.log",
        env,
    )
    return json.loads(out.read_text())["test_accuracy"]


def preset(seed: int, work: Path, env: dict[str, str], overrides: list[str]) -> float:
    run_dir = work / f"preset-{seed}"
    sslrun = str(Path(sys.executable).with_name("sslrun"))
    run(
        [
            sslrun,
            f"experiment={PRESET}",
            f"seed={seed}",
            f"hydra.run.dir={run_dir}",
            "trainer.progress=false",
            f"dataset.path={MNIST}",
            "downstream.evals=[finetune]",
            *overrides,
        ],
        work / f"preset-{seed}.log",
        {**env, "SSLRUN_CACHE_DIR": str(run_dir / "cache")},
    )
    return json.loads((run_dir / "metrics.json").read_text())["ssl_test_accuracy"]


def describe(values: list[float]) -> str:
    return f"{100 * statistics.mean(values):.2f}% +- {100 * statistics.stdev(values):.2f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=10, help="seeds 0 .. N-1 (default 10)")
    p.add_argument("--work", type=Path, default=Path("/tmp/sslrun-bench/seed-spread"))
    p.add_argument("--no-faithful", action="store_true", help="the preset only")
    p.add_argument("overrides", nargs="*", help="overrides for the preset, e.g. downstream.head_init=glorot_uniform")
    args = p.parse_args()
    if args.seeds < 2:
        p.error("--seeds must be at least 2: a spread needs two values")
    if not MNIST.is_dir():
        p.error(f"no MNIST IDX files at {MNIST}: set BENCH_MNIST to the folder holding them")
    args.work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    rows = []
    print(f"| seed | faithful | {PRESET} {' '.join(args.overrides)} |\n| ---: | ---: | ---: |", flush=True)
    for seed in range(args.seeds):
        f = None if args.no_faithful else faithful(seed, args.work, env)
        s = preset(seed, args.work, env, args.overrides)
        rows.append((f, s))
        print(f"| {seed} | {'-' if f is None else f'{100 * f:.2f}%'} | {100 * s:.2f}% |", flush=True)
    ours = [s for _, s in rows]
    print(f"\npreset: {describe(ours)} over seeds 0-{args.seeds - 1}")
    if not args.no_faithful:
        from scipy import stats

        theirs = [f for f, _ in rows]
        test = stats.mannwhitneyu(theirs, ours)
        print(f"faithful: {describe(theirs)}; Mann-Whitney U {test.statistic:.1f}, two-sided p = {test.pvalue:.3g}")


if __name__ == "__main__":
    main()
