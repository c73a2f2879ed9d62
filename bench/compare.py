"""`make bench-compare`: `sslrun -m experiment=compare` on real data, timed, with its peak RSS, the number of
scratch baselines it trained, and a separate run of one method checked against its row.

    python bench/compare.py [--dataset fashion_mnist|cifar10] [--methods rotation,simclr,vicreg]
                            [--separate rotation] [--work DIR] [--out bench/COMPARE_RESULTS.md]

Fashion-MNIST at sslrun's default 100 labels per class; CIFAR-10 (the JPEG folder) at 10 labels per class.
The sweep and the separate run share one SSLRUN_CACHE_DIR, as a user's runs do: the separate run reuses the
sweep's pretext stage and scratch results (both cached by everything that determines them) and trains its own
fine-tuning, so its accuracy differs from the sweep's row only by the run-to-run variation of fine-tuning.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import FASHION, ROOT, cifar_folder, machine, measured, shown  # noqa: E402

from sslrun.atomic import atomic_write_text  # noqa: E402

SSLRUN = str(Path(sys.executable).with_name("sslrun"))
DATA = {
    "fashion_mnist": lambda: ["dataset=fashion_mnist", f"dataset.path={FASHION}"],
    "cifar10": lambda: ["dataset=image_folder", f"dataset.path={cifar_folder()}", "downstream.labels_per_class=10"],
}


def scratch_trainings(sweep: Path) -> tuple[int, int]:
    """(scratch results trained, served from the cache) over the sweep's runs."""
    trained = served = 0
    for results in sweep.glob("*/results.csv"):
        with open(results) as fh:
            for row in csv.DictReader(fh):
                if row["eval"] == "scratch":
                    served += row["cached"] == "True"
                    trained += row["cached"] != "True"
    return trained, served


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", choices=list(DATA), default="fashion_mnist")
    p.add_argument("--methods", default="rotation,simclr,vicreg")
    p.add_argument("--separate", default="rotation", help="a method to rerun alone and compare ('' : none)")
    p.add_argument("--work", type=Path, default=Path("/tmp/sslrun-bench/compare"))
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "COMPARE_RESULTS.md")
    args = p.parse_args()
    work = args.work / args.dataset
    shutil.rmtree(work, ignore_errors=True)
    env = {**os.environ, "SSLRUN_CACHE_DIR": str(work / "cache"), "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    started = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    sweep = work / "sweep"
    cmd = [
        SSLRUN,
        "-m",
        "experiment=compare",
        *DATA[args.dataset](),
        f"compare.methods=[{args.methods}]",
        "tensorboard=false",
        f"hydra.sweep.dir={sweep}",
    ]
    print(f"[{time.strftime('%H:%M:%S')}] {shown(cmd)}", flush=True)
    code, wall, rss = measured(cmd, work / "sweep.log", env, None)
    if code:
        sys.exit(f"compare failed (exit {code}); see {work / 'sweep.log'}")
    trained, served = scratch_trainings(sweep)
    rows = json.loads((sweep / "compare.json").read_text())
    lines = [
        f"# `experiment=compare` on {args.dataset} (`make bench-compare`)",
        "",
        f"Measured {started} on {machine()}.",
        "",
        f"Command: `{shown(cmd)}`",
        "",
        f"Wall {wall / 60:.1f} min, peak RSS {rss / 2**20:.2f} GiB (the sweep's one process: Hydra's basic "
        f"launcher runs the jobs in turn); scratch baselines trained {trained}, served from the baseline cache "
        f"{served}.",
        "",
        "## compare.md",
        "",
    ]
    # the figures beside the results file, so the file's image links work in a clone (the sweep is in --work)
    figures = args.out.parent / "figures" / f"compare_{args.dataset}"
    shutil.copytree(sweep / "figures", figures, dirs_exist_ok=True)
    shown_figures = os.path.relpath(figures, args.out.parent)
    lines += [
        line.replace("](figures/", f"]({shown_figures}/") for line in (sweep / "compare.md").read_text().splitlines()
    ]
    if args.separate:
        run_dir = work / f"separate_{args.separate}"
        method = next(r for r in rows if r["method"] == args.separate)
        sep = [
            SSLRUN,
            *DATA[args.dataset](),
            f"pretext={args.separate}",
            "tensorboard=false",
            f"hydra.run.dir={run_dir}",
        ]
        print(f"[{time.strftime('%H:%M:%S')}] {shown(sep)}", flush=True)
        code, swall, srss = measured(sep, work / "separate.log", env, None)
        if code:
            sys.exit(f"separate run failed (exit {code}); see {work / 'separate.log'}")
        m = json.loads((run_dir / "metrics.json").read_text())
        ft = m["downstream"]["finetune"]
        lines += [
            "",
            f"## A separate run of {args.separate}",
            "",
            f"Command: `{shown(sep)}` ({swall / 60:.1f} min, "
            f"peak RSS {srss / 2**20:.2f} GiB; pretext reused: {m['pretext'].get('reused')}).",
            "",
            "| | fine-tuned, mean of draws | scratch, mean of draws |",
            "| --- | ---: | ---: |",
            f"| compare row | {method['test_pct']:.2f}% | {_scratch_pct(rows, method['budget']):.2f}% |",
            f"| separate run | {100 * ft['mean']:.2f}% | {100 * m['downstream']['scratch']['mean']:.2f}% |",
            "",
            f"Its sentence: {' '.join(m.get('answer', []))}",
        ]
    atomic_write_text(args.out, "\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()


def _scratch_pct(rows: list[dict], budget) -> float:
    return next(r["test_pct"] for r in rows if r["method"] == "scratch" and r["budget"] == budget)
