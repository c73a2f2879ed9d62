"""`make bench-methods`: every registered pretext method with the same wall-clock pretext budget, plus the same
encoder at random initialisation; the frozen encoder's linear probe and kNN, and the label-free RankMe.

    python bench/methods.py [--minutes 10] [--methods all|rotation,simclr,...] [--quick]
                            [--work DIR] [--out FILE]

Fashion-MNIST at 100 labels per class (sslrun's default), one label draw, `trainer.budget_minutes` the same for
every method (its epochs sized to that wall time on this machine), small_cnn for every method (colorization needs
colour images and is left out on Fashion-MNIST). The random-initialisation row is the same encoder after one
pretext step at learning rate 0 (its initial weights), with the same downstream evaluations. Reported: pretext
images/s, pretext epochs, peak RSS, linear and kNN test accuracy, RankMe at the last epoch, and the Spearman
correlation of RankMe with the linear probe's accuracy over the methods (whatever it is: the question is whether
RankMe ranks the methods as the probe does). `--quick`: synthetic data (experiment=smoke), a few seconds per
method: the script's test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import FASHION, ROOT, machine, measured, shown  # noqa: E402

from sslrun.atomic import atomic_write_text  # noqa: E402

SSLRUN = str(Path(sys.executable).with_name("sslrun"))
RANDOM = "random init"
COMMON = [
    "downstream.evals=[linear,knn]",
    "downstream.repeats=1",
    "tensorboard=false",
    "trainer.progress=false",
    "pretext.cache=false",
    "encoder=small_cnn",
]


def methods(wanted: str, colour: bool) -> list[str]:
    from sslrun.pretext import PRETEXTS

    names = PRETEXTS.names() if wanted == "all" else wanted.split(",")
    return [n for n in names if colour or not PRETEXTS.get(n).needs_colour]


def spearman(x: list[float], y: list[float]) -> float | None:
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic) if len(x) >= 3 else None


def run_one(name: str, data: list[str], budget: list[str], work: Path, env: dict) -> dict:
    run_dir = work / name.replace(" ", "_")
    # random init: one pretext step at learning rate 0 (sslrun wants >= 1 epoch): the weights stay their initial
    # values; BatchNorm's moving statistics take one step of their momentum (1%)
    pretext = (
        [
            "pretext=rotation",
            "trainer.epochs=1",
            "trainer.steps_per_epoch=1",
            "trainer.optimizer=sgd",
            "trainer.learning_rate=0",
            "trainer.momentum=0",
            "trainer.budget_minutes=null",
        ]
        if name == RANDOM
        else [f"pretext={name}", *budget]
    )
    cmd = [SSLRUN, *data, *pretext, *COMMON, f"hydra.run.dir={run_dir}"]
    print(f"[{time.strftime('%H:%M:%S')}] {shown(cmd)}", flush=True)
    code, wall, rss = measured(cmd, work / f"{run_dir.name}.log", env, None)
    if code:
        sys.exit(f"{name} failed (exit {code}); see {work / f'{run_dir.name}.log'}")
    m = json.loads((run_dir / "metrics.json").read_text())
    pre = m["pretext"]
    return {
        "method": name,
        "command": shown(cmd),
        "wall": wall,
        "rss_gib": rss / 2**20,
        "images_per_second": pre.get("images_per_second"),
        "epochs": pre.get("epochs"),
        "linear": m["downstream"]["linear"]["test_accuracy"],
        "knn": m["downstream"]["knn"]["test_accuracy"],
        "rankme": pre.get("rankme"),
        "dim": pre.get("embedding_dim"),
        "collapsed": pre.get("collapsed_epochs"),
    }


def table(rows: list[dict]) -> list[str]:
    lines = [
        "| method | pretext img/s | epochs | peak RSS | linear | kNN | RankMe | collapsed epochs |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        ips = "-" if r["images_per_second"] is None else f"{r['images_per_second']:.0f}"
        rank = "-" if r["rankme"] is None else f"{r['rankme']:.1f} of {r['dim']}"
        lines.append(
            f"| {r['method']} | {ips} | {r['epochs']} | {r['rss_gib']:.2f} GiB | {100 * r['linear']:.2f}% | "
            f"{100 * r['knn']:.2f}% | {rank} | {', '.join(map(str, r['collapsed'] or [])) or '-'} |"
        )
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0, help="pretext wall-clock budget per method")
    p.add_argument("--methods", default="all")
    p.add_argument("--quick", action="store_true", help="synthetic data, seconds per method: tests the script")
    p.add_argument("--work", type=Path, default=Path("/tmp/sslrun-bench/methods"))
    p.add_argument("--out", type=Path, default=None, help="default: bench/METHODS_RESULTS.md; --quick: in --work")
    args = p.parse_args()
    work = args.work / ("quick" if args.quick else "fashion_mnist")
    out = args.out or (args.work / "METHODS_QUICK.md" if args.quick else ROOT / "bench" / "METHODS_RESULTS.md")
    shutil.rmtree(work, ignore_errors=True)
    env = {**os.environ, "SSLRUN_CACHE_DIR": str(work / "cache"), "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    if args.quick:
        data = ["experiment=smoke", "trainer.batch_size=32", "trainer.steps_per_epoch=4"]
        budget = ["trainer.epochs=2"]  # seconds: a budget probe would be most of the run
    else:
        data = ["dataset=fashion_mnist", f"dataset.path={FASHION}", "downstream.labels_per_class=100"]
        budget = [f"trainer.budget_minutes={args.minutes}", "trainer.epochs=1000"]  # epochs: only a cap
    started = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    rows = [run_one(name, data, budget, work, env) for name in [*methods(args.methods, colour=False), RANDOM]]
    trained = [r for r in rows if r["method"] != RANDOM]
    rho = spearman([r["rankme"] for r in trained], [r["linear"] for r in trained])
    random_row = rows[-1]
    beaten = [r["method"] for r in trained if r["linear"] > random_row["linear"] and r["knn"] > random_row["knn"]]
    lines = [
        f"# Pretext methods side by side (`make bench-methods{' METHODS_ARGS=--quick' if args.quick else ''}`)",
        "",
        f"Measured {started} on {machine()}.",
        "",
        (
            "Quick mode: synthetic data, 2 epochs of 4 steps per method; tests the script, measures nothing."
            if args.quick
            else f"Pretext budget {args.minutes:g} min per method (trainer.budget_minutes), "
            "small_cnn, 100 labels per class, one label draw."
        ),
        "",
        *table(rows),
        "",
        f"Spearman correlation of RankMe with the linear probe over the {len(trained)} methods: "
        + ("-" if rho is None else f"{rho:+.2f}")
        + ".",
        f"Beat the random-initialisation row on both linear and kNN: {len(beaten)} of {len(trained)}"
        + (f" ({', '.join(beaten)})" if beaten else "")
        + ".",
        "",
        "Commands:",
        "",
    ]
    lines += [f"- {r['method']}: `{r['command']}` ({r['wall'] / 60:.1f} min)" for r in rows]
    atomic_write_text(out, "\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
