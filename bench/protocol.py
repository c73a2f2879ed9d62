"""`make bench-protocol`: which fine-tuning protocol sslrun's default should be, chosen on validation images.

Every candidate protocol fine-tunes the same pretext weights (rotation, the default pretext, trained once per
data set) and trains the scratch baseline, on the same label draws: 2 budgets (10 and 100 labels per class) x
2 draws, on Fashion-MNIST, MNIST and the CIFAR-10 JPEG folder. The choice reads only the validation images
(downstream.val_per_class, carved from the train split): the protocol whose two arms have the highest mean
validation accuracy over every data set, budget and draw, because a fair protocol must be good for the baseline
as much as for the pretrained network (a weak baseline flatters pretext training). Test accuracies are reported
beside it and never used. Results: bench/PROTOCOL_RESULTS.md.

    python bench/protocol.py [--work DIR] [--only fashion_mnist,cifar10] [--protocols documents,cosine]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import FASHION, MNIST, ROOT, cifar_folder, machine, measured, shown  # noqa: E402

from sslrun.atomic import atomic_write_text  # noqa: E402

SSLRUN = str(Path(sys.executable).with_name("sslrun"))
DATASETS = {
    "fashion_mnist": lambda: ["dataset=fashion_mnist", f"dataset.path={FASHION}"],
    "mnist": lambda: ["dataset=mnist", f"dataset.path={MNIST}"],
    "cifar10": lambda: ["dataset=image_folder", f"dataset.path={cifar_folder()}"],
}
# name -> (overrides, what it is). Every one runs 40 epochs of fine-tuning in all.
PROTOCOLS = {
    "documents": (
        [
            "downstream.frozen_epochs=20",
            "downstream.unfrozen_epochs=20",
            "downstream.unfrozen_lr=1e-4",
            "downstream.lr_schedule=constant",
            "downstream.scratch_phases=all_layers",
        ],
        "sslrun's default until 2026-12: 20 head-only epochs at 1e-3 then 20 of everything at 1e-4; the "
        "scratch arm trains every layer in both phases (40 encoder epochs against the pretrained arm's 20, "
        "the latter at a 10x lower rate)",
    ),
    "same_low": (
        [
            "downstream.frozen_epochs=20",
            "downstream.unfrozen_epochs=20",
            "downstream.unfrozen_lr=1e-4",
            "downstream.lr_schedule=constant",
            "downstream.scratch_phases=same",
        ],
        "the same phases for both arms (scratch: its random encoder frozen in phase 1), phase 2 at 1e-4",
    ),
    "constant": (
        [
            "downstream.frozen_epochs=0",
            "downstream.unfrozen_epochs=40",
            "downstream.unfrozen_lr=1e-3",
            "downstream.lr_schedule=constant",
            "downstream.scratch_phases=same",
        ],
        "every layer 40 epochs at a constant 1e-3, both arms",
    ),
    "cosine": (
        [
            "downstream.frozen_epochs=0",
            "downstream.unfrozen_epochs=40",
            "downstream.unfrozen_lr=1e-3",
            "downstream.lr_schedule=cosine",
            "downstream.scratch_phases=same",
        ],
        "every layer 40 epochs from 1e-3 with cosine decay to 0, both arms",
    ),
    "warmup_cosine": (
        [
            "downstream.frozen_epochs=5",
            "downstream.unfrozen_epochs=35",
            "downstream.unfrozen_lr=1e-3",
            "downstream.lr_schedule=cosine",
            "downstream.scratch_phases=same",
        ],
        "5 head-only epochs at 1e-3 (scratch: on its frozen random encoder), then every layer 35 "
        "epochs from 1e-3 with cosine decay, both arms",
    ),
}
STUDY = [
    "downstream.label_budgets=[10,100]",
    "downstream.repeats=2",
    "downstream.evals=[finetune,scratch]",
    "downstream.frozen_lr=1e-3",
    "tensorboard=false",
]


def pretext_run(work: Path, name: str, env: dict) -> Path:
    """The rotation pretext stage of `name` (sslrun's defaults), trained once into work/<name>/pretext."""
    run_dir = work / name / "pretext"
    if not (run_dir / "metrics.json").is_file():
        cmd = [SSLRUN, *DATASETS[name](), "stage=pretext", "tensorboard=false", f"hydra.run.dir={run_dir}"]
        print(f"[{time.strftime('%H:%M:%S')}] {shown(cmd)}", flush=True)
        code, wall, _ = measured(cmd, work / name / "pretext.log", env, None)
        if code:
            sys.exit(f"pretext of {name} failed (exit {code}); see {work / name / 'pretext.log'}")
        print(f"    pretext {name}: {wall:.0f}s", flush=True)
    return run_dir


def protocol_run(work: Path, name: str, protocol: str, pretext: Path, env: dict) -> dict:
    run_dir = work / name / protocol
    cmd = [
        SSLRUN,
        *DATASETS[name](),
        "stage=downstream",
        f"pretext.from={pretext}",
        *STUDY,
        *PROTOCOLS[protocol][0],
        f"hydra.run.dir={run_dir}",
    ]
    done = run_dir / "measured.json"
    if done.is_file() and json.loads(done.read_text())["command"] == cmd:
        return json.loads(done.read_text())
    print(f"[{time.strftime('%H:%M:%S')}] {name} {protocol}: {shown(cmd)}", flush=True)
    code, wall, rss = measured(cmd, work / name / f"{protocol}.log", env, None)
    if code:
        sys.exit(f"{name} {protocol} failed (exit {code}); see {work / name / f'{protocol}.log'}")
    with open(run_dir / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    record = {"command": cmd, "wall": wall, "rss_kib": rss, "rows": rows}
    atomic_write_text(done, json.dumps(record))
    print(f"    {wall:.0f}s", flush=True)
    return record


def mean(values) -> float:
    return float(np.mean([float(v) for v in values]))


def cells(records: dict[tuple[str, str], dict]) -> list[dict]:
    """One entry per (data set, protocol, budget): validation and test accuracy of each arm over the draws."""
    out = []
    for (name, protocol), rec in records.items():
        for budget in sorted({r["budget"] for r in rec["rows"]}, key=int):
            entry = {"dataset": name, "protocol": protocol, "budget": budget}
            for arm in ("finetune", "scratch"):
                rows = [r for r in rec["rows"] if r["eval"] == arm and r["budget"] == budget]
                entry[f"{arm}_val"], entry[f"{arm}_test"] = (
                    mean(r["val_accuracy"] for r in rows),
                    mean(r["test_accuracy"] for r in rows),
                )
                entry[f"{arm}_seconds"] = mean(r["seconds"] for r in rows)
                entry["draws"] = len(rows)
            out.append(entry)
    return out


def ranking(table: list[dict]) -> list[tuple[str, float, float, float]]:
    """(protocol, mean validation accuracy of both arms, of finetune, of scratch), best first."""
    out = []
    for protocol in dict.fromkeys(c["protocol"] for c in table):
        mine = [c for c in table if c["protocol"] == protocol]
        ft, sc = mean(c["finetune_val"] for c in mine), mean(c["scratch_val"] for c in mine)
        out.append((protocol, (ft + sc) / 2, ft, sc))
    return sorted(out, key=lambda r: -r[1])


def pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def report(path: Path, table: list[dict], records: dict, started: str, args: argparse.Namespace) -> None:
    ranked = ranking(table)
    lines = [
        "# Fine-tuning protocol: chosen on validation images (`make bench-protocol`)",
        "",
        f"Measured {started} on {machine()}; `python bench/protocol.py {' '.join(sys.argv[1:])}`.",
        "",
        "Pretext: rotation with sslrun's defaults (5 epochs, small_cnn), trained once per data set; every protocol",
        "fine-tunes those weights and trains the scratch baseline on the same label draws (2 draws per budget,",
        "labels per class 10 and 100, 20 validation images per class from the train split). Choice: the highest",
        "mean validation accuracy of the two arms together over every data set, budget and draw. The test",
        "accuracies are shown and were not used.",
        "",
        "## Protocols",
        "",
    ]
    lines += [
        f"- `{name}`: {PROTOCOLS[name][1]}. Overrides: `{' '.join(PROTOCOLS[name][0])}`"
        for name in dict.fromkeys(c["protocol"] for c in table)
    ]
    lines += [
        "",
        "## Ranking (validation accuracy, mean over data sets, budgets and draws)",
        "",
        "| rank | protocol | both arms | finetune | scratch | finetune - scratch (val) |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {i + 1} | `{p}` | {pct(both)} | {pct(ft)} | {pct(sc)} | {100 * (ft - sc):+.2f} pts |"
        for i, (p, both, ft, sc) in enumerate(ranked)
    ]
    lines += [
        "",
        "## Per data set and budget",
        "",
        "| data set | labels/class | protocol | finetune val | scratch val | finetune test | scratch test | "
        "gain (test) | s per draw (ft + sc) |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in sorted(table, key=lambda c: (c["dataset"], int(c["budget"]), c["protocol"])):
        lines.append(
            f"| {c['dataset']} | {c['budget']} | `{c['protocol']}` | {pct(c['finetune_val'])} | "
            f"{pct(c['scratch_val'])} | {pct(c['finetune_test'])} | {pct(c['scratch_test'])} | "
            f"{100 * (c['finetune_test'] - c['scratch_test']):+.2f} | "
            f"{c['finetune_seconds'] + c['scratch_seconds']:.0f} |"
        )
    lines += ["", "Wall per run (2 budgets x 2 draws x 2 arms, one process):", ""]
    lines += [
        f"- {n} `{p}`: {r['wall']:.0f} s, peak RSS {r['rss_kib'] / 2**20:.2f} GiB" for (n, p), r in records.items()
    ]
    atomic_write_text(path, "\n".join(lines) + "\n")
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/sslrun-bench/protocol"))
    parser.add_argument("--only", default=",".join(DATASETS))
    parser.add_argument("--protocols", default=",".join(PROTOCOLS))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "PROTOCOL_RESULTS.md")
    args = parser.parse_args()
    started = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    env = {
        **os.environ,
        "SSLRUN_CACHE_DIR": str(args.work / "cache"),
        "PYTHONUNBUFFERED": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    records = {}
    for name in args.only.split(","):
        pretext = pretext_run(args.work, name, env)
        for protocol in args.protocols.split(","):
            records[(name, protocol)] = protocol_run(args.work, name, protocol, pretext, env)
            report(args.out, cells(records), records, started, args)  # after each run: a partial table survives
    subprocess.run(["git", "-C", str(ROOT), "status", "--short", str(args.out)], check=False)


if __name__ == "__main__":
    main()
