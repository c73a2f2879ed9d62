"""`make bench` / `make bench-quick`: each seed document's own pipeline vs its sslrun presets.

For every protocol (seed000 .. seed004), three separate subprocesses, one after another:
  faithful  bench/faithful/seedNNN.py: the document's pipeline as written, in Keras 3
  preset     sslrun experiment=<preset>
  plus       sslrun experiment=<preset>_plus
  plus-short the _plus preset on a shorter schedule (seed000 only, full scale: SEED000_SHORT)
Each is timed (wall clock) and its peak RSS read with os.wait4 (ru_maxrss of that child, KiB).
Accuracy and pretext images/s come from the faithful script's --out JSON and from the run
dir's metrics.json. Each subprocess gets a fresh SSLRUN_CACHE_DIR, so nothing (pretext stage,
decoded images) is reused from an earlier run. A preset whose YAML does not exist yet gets a
"not built" row. The table, the exact commands, the machine and the date go to
bench/RESULTS.md (--quick: bench/RESULTS_QUICK.md).

    python bench/run.py [--quick] [--only seed001,seed004] [--rows faithful,plus] [--stl10 DIR]
                        [--work DIR [--resume]]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from sslrun.atomic import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
FAITHFUL = ROOT / "bench" / "faithful"
EXPERIMENTS = ROOT / "conf" / "experiment"
SHARED = Path(os.environ.get("BENCH_SHARED_DATA", "/work/shared/data"))
CIFAR_JPG = Path(os.environ.get("BENCH_CIFAR_JPG", "/tmp/sslrun-bench/cifar10-jpg"))
# The files the faithful scripts read (bench/faithful/common.py: the same variables).
MNIST = Path(os.environ.get("BENCH_MNIST", SHARED / "mnist"))
FASHION = Path(os.environ.get("BENCH_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"))


@dataclass
class Protocol:
    name: str
    preset: str
    runnable: bool = True  # seed002: only with --stl10 (no STL-10 on this machine)
    # A fourth row, "plus-short": the _plus preset with these overrides (full scale only), for a
    # target on how soon the _plus pipeline reaches an accuracy (seed000: 84.3% in a fifth of the
    # faithful wall); only whole processes are timed, so the shorter schedule is its own run.
    short: tuple[str, ...] = ()


# seed000_fashion_rotation_plus cut short: 1 pretext epoch, 1 frozen + 11 unfrozen epochs without random erasing
# (which slows the first epochs), finetune alone. The faithful run took 2,003 s here (2026-11-25): a fifth is
# 400 s for the whole process; 1 + 5 epochs with erasing took 265 s and reached 82.24% (each unfrozen epoch ~15 s)
SEED000_SHORT = (
    "trainer.epochs=1",
    "downstream.frozen_epochs=1",
    "downstream.unfrozen_epochs=11",
    "downstream.augment.erase_prob=0.0",
    "downstream.evals=[finetune]",
)

PROTOCOLS = {
    p.name: p
    for p in (
        Protocol("seed000", "seed000_fashion_rotation", short=SEED000_SHORT),
        Protocol("seed001", "seed001_mnist_rotation"),
        Protocol("seed002", "seed002_stl10_simclr", runnable=False),
        Protocol("seed003", "seed003_cifar10_colorization"),
        Protocol("seed004", "seed004_mnist_rotation_150"),
    )
}

# --quick: every preset at about the scale of its faithful script's --quick (see each script's
# docstring). "pretext_images": pretext training examples in total (rotation mode=all: each
# rotated copy counts, as the faithful scripts count them), turned into trainer.epochs x
# trainer.steps_per_epoch with the preset's own batch size; "downstream_epochs": a cap on each
# of the preset's own phases (frozen, unfrozen, scratch); "repeats": a cap on its repeats;
# "scratch": whether the faithful script trains a scratch baseline. A quick row runs only the
# evaluations the table shows: the preset's first one, and scratch where the faithful row has it
# (the full run keeps every evaluation of the preset).
# Keyed by preset; a _plus preset without its own entry uses its base's.
QUICK = {
    # faithful --quick: 4,500 rotated images x 1 epoch; 1 frozen epoch on the 10,000 labels
    "seed000_fashion_rotation": {
        "epochs": 1,
        "pretext_images": 4_500,
        "downstream_epochs": 1,
        "repeats": 1,
        "scratch": False,
    },
    # faithful --quick: 5 epochs x 4,000 rotated images; <= 10 frozen epochs
    "seed001_mnist_rotation": {
        "epochs": 5,
        "pretext_images": 20_000,
        "downstream_epochs": 10,
        "repeats": 1,
        "scratch": False,
    },
    # faithful --quick: colorizer 1 epoch x 1,000 images; scratch and fine-tune 5 epochs; 2,000 held-out
    # test images (QUICK_TEST_FRACTION)
    "seed003_cifar10_colorization": {
        "epochs": 1,
        "pretext_images": 1_000,
        "downstream_epochs": 5,
        "repeats": 1,
        "scratch": True,
    },
    # faithful --quick: rotation 1 epoch x 48,000; 2 + 2 repeats, fine-tuning epochs unchanged
    "seed004_mnist_rotation_150": {
        "epochs": 1,
        "pretext_images": 48_000,
        "downstream_epochs": None,
        "repeats": 2,
        "scratch": True,
    },
    # only with --stl10; faithful --quick: 20 contrastive steps of 525; 1 epoch downstream
    "seed002_stl10_simclr": {
        "epochs": 1,
        "pretext_images": 10_500,
        "downstream_epochs": 1,
        "repeats": 1,
        "scratch": True,
    },
}
DOWNSTREAM_PHASES = ("frozen_epochs", "unfrozen_epochs", "scratch_epochs")
# --quick, seed003: the share of each CIFAR-10 class held out as the test split, for every row (the faithful
# script's --quick and the presets' dataset.test_fraction): 2,000 images instead of 10,000, whose pass through
# ResNet-50 took 17 s of each evaluation
QUICK_TEST_FRACTION = 0.04


# ----------------------------------------------------------------------------- running


PIPELINES = ("faithful", "preset", "plus", "plus-short")


@dataclass
class Run:
    protocol: str
    pipeline: str  # one of PIPELINES
    command: list[str]
    status: str = "ok"  # ok | not built | failed (...)
    wall: float | None = None
    rss_kib: int | None = None
    metrics: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    examples_per_image: int = 1  # pretext examples per image sslrun counts (rotation mode=all: 4)
    finished: str = ""  # local time the process ended
    code: str = ""  # the commit it ran from (code_version)


def compose(preset: str, overrides: list[str]):
    """The preset's resolved config, as `sslrun experiment=<preset> <overrides>` would see it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from sslrun.cli import conf_dir
    from sslrun.config import register_schemas
    from sslrun.help import register_help

    register_schemas()
    register_help(conf_dir())
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return hydra_compose("config", overrides=[f"experiment={preset}", *overrides])


def quick_overrides(preset: str, base: str) -> list[str]:
    plan = QUICK.get(preset, QUICK[base])
    cfg = compose(preset, [])
    per_step = int(cfg.trainer.batch_size) * examples_per_image(cfg)
    steps = math.ceil(plan["pretext_images"] / plan["epochs"] / per_step)
    out = [
        f"trainer.epochs={plan['epochs']}",
        f"trainer.steps_per_epoch={steps}",
        f"downstream.repeats={min(cfg.downstream.repeats, plan['repeats'])}",
    ]
    if cfg.trainer.budget_minutes is not None:  # quick rows train the images QUICK gives, not a time
        out.append("trainer.budget_minutes=null")
    if cfg.trainer.warmup_epochs >= plan["epochs"]:  # a cosine warm-up must end inside the shortened run
        out.append(f"trainer.warmup_epochs={plan['epochs'] - 1}")
    cap = plan["downstream_epochs"]
    for key in DOWNSTREAM_PHASES if cap is not None else ():
        value = cfg.downstream.get(key)
        if value is not None and value > cap:
            out.append(f"downstream.{key}={cap}")
    evals = list(cfg.downstream.evals)
    kept = evals[:1] + [e for e in evals[1:] if e == "scratch" and plan["scratch"]]
    if kept != evals:
        out.append(f"downstream.evals=[{','.join(kept)}]")
    return out


def check_preset(run: Run, protocol: Protocol, preset: str, overrides: list[str], quick: bool) -> list[str]:
    """Compose the preset with the bench's overrides (fails early); notes on comparability."""
    cfg = compose(preset, overrides)
    run.examples_per_image = examples_per_image(cfg)
    notes = []
    fraction = QUICK_TEST_FRACTION if quick else 0.2
    if protocol.name == "seed003" and (cfg.dataset.name != "image_folder" or cfg.dataset.test_fraction != fraction):
        notes.append(
            f"{preset}: dataset {cfg.dataset.name} test_fraction "
            f"{cfg.dataset.get('test_fraction')}: NOT the faithful script's held-out "
            f"test images (image_folder, test_fraction {fraction})"
        )
    return notes


def data_overrides(protocol: Protocol, stl10: Path | None, quick: bool) -> list[str]:
    """Point the presets at the very files the faithful script reads."""
    path = {"seed000": FASHION, "seed001": MNIST, "seed004": MNIST, "seed002": stl10}
    if protocol.name == "seed003":  # CIFAR-10's own files are not here: its JPEG train split
        held_out = [f"dataset.test_fraction={QUICK_TEST_FRACTION}"] if quick else []
        return ["dataset=image_folder", f"dataset.path={cifar_folder()}", *held_out]
    return [f"dataset.path={path[protocol.name]}"] if path.get(protocol.name) else []


def examples_per_image(cfg) -> int:
    """Training examples per pretext image: 4 for rotation with mode=all (every rotation), as
    the faithful scripts of seeds 000 and 001 count their materialised rotated copies."""
    mode = str(getattr(cfg.pretext, "mode", "")).split(".")[-1]
    return 4 if cfg.pretext.name == "rotation" and mode == "all" else 1


def cifar_folder() -> Path:
    """The CIFAR-10 JPEG folder, unpacked from ../shared once if missing."""
    if not (CIFAR_JPG / "train").is_dir():
        CIFAR_JPG.mkdir(parents=True, exist_ok=True)
        with tarfile.open(SHARED / "cifar10-train-jpg.tar.gz") as tar:
            tar.extractall(CIFAR_JPG, filter="data")
    return CIFAR_JPG


def measured(command: list[str], log: Path, env: dict[str, str], timeout: float | None) -> tuple[int, float, int]:
    """Run `command`; its exit code, wall seconds and peak RSS (KiB, this child's own)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        deadline = start + timeout if timeout else None
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG if deadline else 0)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
            time.sleep(0.5)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return proc.returncode, wall, usage.ru_maxrss


def shown(command: list[str]) -> str:
    """The command as run from the checkout (paths inside it relative)."""
    return shlex.join(command).replace(f"{ROOT}/", "")


def last_lines(log: Path, n: int = 3) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return " / ".join(lines[-n:])[-300:]


MEASURED = "measured.json"  # per run folder: wall, peak RSS, status and when, for --resume
# A finished row's measurement and result, small enough to commit:
# bench/records/<work dir name>/<protocol>-<pipeline>.json.
# A full run takes longer than a sitting and /tmp does not outlive the machine, so --resume reads a row back from
# here when its work folder is gone (same command, so the same --work path).
RECORDS = ROOT / "bench" / "records"


def record_file(run: Run, work: Path) -> Path:
    return RECORDS / work.name / f"{run.protocol}-{run.pipeline}.json"


def code_version() -> str:
    """The commit the rows run from, "+dirty" if tracked files differ from it (bench/records/ aside: rerunning a
    row rewrites its own record there, which changes no code)."""

    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench/records")
    return head + ("+dirty" if changed else "")


def resumed(run: Run, work: Path, result_file: Path) -> bool:
    """Load a run that an earlier `--work DIR --resume` invocation finished with the same command."""
    record, kept = work / run.protocol / run.pipeline / MEASURED, record_file(run, work)
    if record.is_file() and result_file.is_file():
        saved = json.loads(record.read_text())
        metrics = json.loads(result_file.read_text())
        where = "reused (--resume)"
    elif kept.is_file():
        saved = json.loads(kept.read_text())
        metrics = saved.get("metrics", {})
        where = f"read back from {kept.relative_to(ROOT)} (--resume)"
    else:
        return False
    # the same command from another checkout (its own venv and paths) is the same row
    command = [c.replace(saved.get("root", str(ROOT)), str(ROOT)) for c in saved.get("command", [])]
    if command != run.command or saved.get("status") != "ok":
        return False
    run.wall, run.rss_kib, run.finished = saved["wall"], saved["rss_kib"], saved["finished"]
    run.code = saved.get("code", "")
    run.metrics = metrics
    print(f"    {run.protocol} {run.pipeline}: finished {run.finished}, {where}", flush=True)
    return True


def run_one(run: Run, work: Path, timeout: float | None, result_file: Path, keep_record: bool) -> None:
    folder = work / run.protocol / run.pipeline
    # A row that runs starts from nothing: an earlier attempt's run dir (interrupted, or of another command)
    # would be resumed or refused by sslrun, and its cache would be reused
    shutil.rmtree(folder, ignore_errors=True)
    env = {
        **os.environ,
        "SSLRUN_CACHE_DIR": str(folder / "cache"),
        "PYTHONUNBUFFERED": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    run.code = code_version()
    print(
        f"[{time.strftime('%H:%M:%S')}] {run.protocol} {run.pipeline} at {run.code}: {shown(run.command)}", flush=True
    )
    code, run.wall, run.rss_kib = measured(run.command, folder / "log.txt", env, timeout)
    if code != 0:
        run.status = f"failed (exit {code}): {last_lines(folder / 'log.txt')}"
    elif result_file.is_file():
        run.metrics = json.loads(result_file.read_text())
    else:
        run.status = f"failed: no {result_file.name}"
    run.finished = time.strftime("%Y-%m-%d %H:%M")
    saved = {
        "command": run.command,
        "status": run.status,
        "wall": run.wall,
        "rss_kib": run.rss_kib,
        "finished": run.finished,
        "code": run.code,
        "root": str(ROOT),
    }
    (folder / MEASURED).write_text(json.dumps(saved))
    if run.status == "ok" and keep_record:
        record = record_file(run, work)
        record.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(record, json.dumps({**saved, "metrics": run.metrics}, indent=1) + "\n")
    print(f"    {run.status}, {run.wall:.0f} s, peak RSS {run.rss_kib / 2**20:.2f} GiB", flush=True)


def plan(protocol: Protocol, args: argparse.Namespace, work: Path) -> list[tuple[Run, Path]]:
    """The three runs of a protocol and where each writes its result."""
    runs = []
    folder = work / protocol.name
    script = [sys.executable, str(FAITHFUL / f"{protocol.name}.py")]
    if protocol.name == "seed002":
        script += ["--data", str(args.stl10)] if args.stl10 else []
    if protocol.name == "seed003":
        script += ["--data", str(cifar_folder()), "--cache-dir", str(folder / "faithful" / "cache")]
    out = folder / "faithful" / "result.json"
    runs.append(
        (Run(protocol.name, "faithful", script + ["--out", str(out)] + (["--quick"] if args.quick else [])), out)
    )
    sslrun = str(Path(sys.executable).parent / "sslrun")
    presets = [("preset", protocol.preset, ()), ("plus", protocol.preset + "_plus", ())]
    if protocol.short and not args.quick:
        presets.append(("plus-short", protocol.preset + "_plus", protocol.short))
    for pipeline, preset, extra in presets:
        run_dir = folder / pipeline / "run"
        command = [
            sslrun,
            f"experiment={preset}",
            f"hydra.run.dir={run_dir}",
            "trainer.progress=false",
            *data_overrides(protocol, args.stl10, args.quick),
            *extra,
        ]
        run = Run(protocol.name, pipeline, command)
        if not (EXPERIMENTS / f"{preset}.yaml").is_file():
            run.status = f"not built (no conf/experiment/{preset}.yaml)"
        else:
            try:
                if args.quick:
                    command += quick_overrides(preset, protocol.preset)
                plain = [o for o in command[1:] if not o.startswith(("experiment=", "hydra."))]
                run.notes = check_preset(run, protocol, preset, plain, args.quick)
            except Exception as err:  # noqa: BLE001  (a preset that does not compose is a row)
                run.status = f"failed: config does not compose: {str(err).splitlines()[0]}"
        runs.append((run, run_dir / "metrics.json"))
    return runs


# ----------------------------------------------------------------------------- reading results


def ssl_eval(metrics: dict) -> dict:
    """The evaluation behind ssl_test_accuracy: sslrun reports the first pretrained one its preset lists."""
    downstream = metrics.get("downstream") or {}
    return downstream.get(metrics.get("ssl_eval"), {})


def summary(run: Run) -> dict:
    """accuracy, its spread, images/s and pretext seconds, whichever pipeline wrote them."""
    m = run.metrics
    if run.pipeline == "faithful":
        return {
            "accuracy": m.get("test_accuracy"),
            "std": m.get("test_accuracy_std"),
            "n": m.get("n"),
            "scratch": m.get("scratch_accuracy"),
            "ips": m.get("pretext_images_per_second"),
            "pretext_s": m.get("pretext_seconds"),
            "test_n": m.get("test_images"),
        }
    ev = ssl_eval(m)
    pretext = m.get("pretext") or {}
    ips = pretext.get("images_per_second")
    ips = ips * run.examples_per_image if ips is not None else None
    return {
        "accuracy": m.get("ssl_test_accuracy"),
        "std": ev.get("std"),
        "n": ev.get("n"),
        "ci": (ev.get("ci_low"), ev.get("ci_high")),
        "scratch": m.get("baseline_test_accuracy"),
        "p": (ev.get("vs_scratch") or {}).get("p_value"),
        "ips": ips,
        "pretext_s": pretext.get("seconds"),
        "test_n": (m.get("splits") or {}).get("test"),
    }


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def accuracy_cell(s: dict) -> str:
    if s.get("accuracy") is None:
        return "-"
    text = pct(s["accuracy"])
    if s.get("n") and s["n"] > 1:
        text += f" ± {100 * s['std']:.2f} (n={s['n']})" if s.get("std") is not None else ""
        ci = s.get("ci") or (None, None)
        if ci[0] is not None:
            text += f", 95% CI [{pct(ci[0])}, {pct(ci[1])}]"
    if s.get("scratch") is not None:
        text += f"; scratch {pct(s['scratch'])}"
    if s.get("p") is not None:
        text += f"; paired p={s['p']:.2g}"
    if s.get("test_n"):
        text += f"; {s['test_n']:,} test images"
    return text


# ----------------------------------------------------------------------------- targets


def targets(run: Run, faithful: Run, quick: bool) -> list[tuple[str, bool | None]]:
    """(target from issue 8, met?) for one preset row; None: cannot be judged here."""
    if run.pipeline == "faithful" or run.status != "ok":
        return []
    s, f = summary(run), faithful
    acc = s["accuracy"]
    ok_f = f.status == "ok"
    out: list[tuple[str, bool | None]] = []

    def accuracy_target(text: str, value: bool) -> None:
        out.append((text, None if quick or acc is None else value))

    key = (run.protocol, run.pipeline)
    if key == ("seed000", "preset"):
        accuracy_target("accuracy >= 84.32% (the document)", acc is not None and acc >= 0.8432)
    if key == ("seed000", "plus"):
        accuracy_target("accuracy >= 92%", acc is not None and acc >= 0.92)
    if key == ("seed000", "plus-short"):
        # Only whole processes are timed: the short schedule's run has reached its accuracy when it ends.
        out.append(
            (
                "reaches 84.3% within 1/5 of faithful wall",
                None if quick or not ok_f or acc is None else acc >= 0.843 and run.wall <= f.wall / 5,
            )
        )
    if key == ("seed001", "plus"):
        accuracy_target(
            "accuracy >= 98% on the 300 test images", acc is not None and acc >= 0.98 and s.get("test_n") == 300
        )
    if key == ("seed004", "plus"):
        has_ci = (s.get("ci") or (None,))[0] is not None
        accuracy_target(
            "mean >= 96% with 95% CI and paired test vs scratch",
            acc is not None and acc >= 0.96 and has_ci and s.get("p") is not None,
        )
        out.append(("wall <= faithful", run.wall <= f.wall if ok_f else None))
    if key == ("seed003", "plus"):
        accuracy_target("accuracy >= 50% (10 labels/class, held-out)", acc is not None and acc >= 0.50)
        pre = s.get("pretext_s")
        out.append(("pretext <= 60 min", None if quick or pre is None else pre <= 3600))
    out.append(("peak RSS <= 1/2 faithful", run.rss_kib <= f.rss_kib / 2 if ok_f else None))
    return out


def verdict(met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "not judged"}[met]


# ----------------------------------------------------------------------------- report


def sh(cmd: str) -> str:
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, check=False).stdout
    except OSError:
        return ""


def machine() -> str:
    model = next(
        (line.split(":", 1)[1].strip() for line in sh("lscpu").splitlines() if line.startswith("Model name")),
        platform.processor() or "unknown",
    )
    mem = next(
        (
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        0,
    )
    versions = sh(
        f"{shlex.quote(sys.executable)} -c 'import keras, tensorflow as tf, numpy; "
        "print(keras.__version__, tf.__version__, numpy.__version__)'"
    ).split()
    v = dict(zip(("Keras", "TensorFlow", "NumPy"), versions, strict=False))
    return (
        f"{model}, {os.cpu_count()} CPUs, {mem / 2**20:.1f} GiB RAM; Python "
        f"{platform.python_version()}, " + ", ".join(f"{k} {x}" for k, x in v.items())
    )


def ratio(a: float | None, b: float | None, fmt: str = "{:.2f}x") -> str:
    return "-" if not a or not b else fmt.format(a / b)


def table(results: list[Run], quick: bool) -> list[str]:
    lines = [
        "| protocol | pipeline | wall | pretext img/s | peak RSS | test accuracy | speedup vs "
        "faithful | RSS vs faithful | targets (issue 8) |",
        "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | --- |",
    ]
    by_protocol: dict[str, list[Run]] = {}
    for r in results:
        by_protocol.setdefault(r.protocol, []).append(r)
    for name, runs in by_protocol.items():
        faithful = runs[0]
        for r in runs:
            if r.status != "ok":
                lines.append(f"| {name} | {r.pipeline} | - | - | - | {r.status} | - | - | - |")
                continue
            s = summary(r)
            fs = faithful.status == "ok"
            speed = ratio(faithful.wall, r.wall) if fs and r is not faithful else "-"
            rss = ratio(r.rss_kib, faithful.rss_kib) if fs and r is not faithful else "-"
            marks = "; ".join(f"{t}: {verdict(m)}" for t, m in targets(r, faithful, quick)) or "-"
            ips = "-" if s.get("ips") is None else f"{s['ips']:,.0f}"
            lines.append(
                f"| {name} | {r.pipeline} | {r.wall:,.0f} s | {ips} | "
                f"{r.rss_kib / 2**20:.2f} GiB | {accuracy_cell(s)} | {speed} | {rss} | "
                f"{marks} |"
            )
    return lines


def stl10_row(args: argparse.Namespace) -> list[str]:
    if args.stl10:
        return []
    return ["| seed002 | all | - | - | - | not runnable here (no data); preset smoke-tested on a fixture | - | - | - |"]


def write_report(
    path: Path, results: list[Run], args: argparse.Namespace, started: str, wall: float, loads: tuple[str, str]
) -> None:
    scale = "reduced scale (--quick)" if args.quick else "full scale"
    target = "bench-quick" if args.quick else "bench"
    lines = [
        f"# Faithful pipelines vs sslrun presets, {scale} (`make {target}`)",
        "",
        f"Command: `{shlex.join(['python', 'bench/run.py', *sys.argv[1:]])}`  ",
        f"Machine: {machine()}  ",
        f"Date: {started}; total {wall / 60:.1f} min; load average (1 min) at start {loads[0]}, "
        f"at end {loads[1]} (2 cores shared with other work make wall times noisy)",
        "",
        "faithful = bench/faithful/seedNNN.py (the document's own pipeline, bench/README.md); "
        "preset = `sslrun experiment=<preset>`; plus = `sslrun experiment=<preset>_plus`; "
        "plus-short = the same with the shorter schedule in its command. "
        "Each is its own process; wall = the whole process, peak RSS = its ru_maxrss (os.wait4). "
        "Pretext img/s: images the pretext stage trained on / seconds of that stage "
        "(sslrun's `pretext.images_per_second`, x4 for rotation with mode=all, whose four "
        "rotations of an image the faithful scripts of seeds 000/001 count as four images). "
        "Speedup = faithful wall / this wall; RSS = this peak / faithful peak.",
    ]
    done = sorted(r.finished for r in results if r.finished)
    if args.resume and done:
        lines += [
            "",
            f"Continued with --resume in `{args.work}`: the runs finished between {done[0]} and "
            f"{done[-1]} (each row's wall and RSS are its own process's; the total above is this "
            "invocation's).",
        ]
    if args.quick:
        lines += [
            "",
            "Reduced scale: the faithful scripts with --quick, the presets with the "
            "overrides in the commands below (bench/run.py QUICK). Accuracies are not "
            "comparable with the documents' and accuracy targets are not judged; wall, "
            "images/s and RSS ratios are indicative.",
        ]
    lines += ["", *table(results, args.quick)]
    if not args.only or "seed002" in args.only:
        lines += stl10_row(args)
    notes = [n for r in results for n in r.notes]
    if notes:
        lines += ["", "Notes:", *[f"- {n}" for n in notes]]
    lines += ["", "## Commands", ""]
    for r in results:
        when = f" (finished {r.finished}{', at ' + r.code if r.code else ''})" if r.finished else ""
        lines.append(f"- {r.protocol} {r.pipeline}{when}: `{shown(r.command)}`")
    lines += [
        "",
        f"Logs and run dirs: `{args.work}` (temporary); each finished row's measurement and result: "
        f"`bench/records/{args.work.name}/` (committed, read back by --resume on another machine).",
        "",
    ]
    path.write_text("\n".join(lines))
    print(f"wrote {path}")


def comma_list(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="reduced scale -> bench/RESULTS_QUICK.md")
    p.add_argument("--only", type=comma_list, default=None, help="comma-separated protocols, e.g. seed001,seed004")
    p.add_argument("--stl10", type=Path, help="an STL-10 binary folder: makes seed002 runnable")
    p.add_argument("--work", type=Path, help="where logs and run dirs go (default: /tmp/...)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="with --work: keep the runs an earlier invocation finished there (same command), run the rest",
    )
    p.add_argument(
        "--rows",
        type=comma_list,
        default=None,
        help="comma-separated pipelines to run, e.g. faithful,plus (with --resume the others are read "
        "back if an earlier invocation finished them, else listed as not run)",
    )
    p.add_argument(
        "--report-only",
        action="store_true",
        help="with --resume: run nothing, write the report from the rows that finished",
    )
    p.add_argument("--timeout", type=float, help="seconds per subprocess (default: none)")
    p.add_argument("--out", type=Path, help="report file (default bench/RESULTS[_QUICK].md)")
    args = p.parse_args()
    if args.resume and not args.work:
        p.error("--resume needs --work DIR: the folder of the bench run to continue")
    if args.report_only and not args.resume:
        p.error("--report-only needs --work DIR --resume: it reports the rows an earlier invocation finished")
    unknown = set(args.only or []) - set(PROTOCOLS)
    if unknown:
        p.error(f"unknown protocol(s) {', '.join(sorted(unknown))}; valid: {', '.join(PROTOCOLS)}")
    unknown = set(args.rows or []) - set(PIPELINES)
    if unknown:
        p.error(f"unknown row(s) {', '.join(sorted(unknown))}; valid: {', '.join(PIPELINES)}")
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    suffix = "-quick" if args.quick else ""
    keep_records = args.work is not None  # a named run can span machines: its rows go to bench/records too
    args.work = args.work or Path("/tmp/sslrun-bench") / f"bench-{stamp}{suffix}"
    out = args.out or ROOT / "bench" / ("RESULTS_QUICK.md" if args.quick else "RESULTS.md")
    started, t0 = dt.datetime.now().strftime("%Y-%m-%d %H:%M"), time.perf_counter()
    load_start = f"{os.getloadavg()[0]:.1f}"
    results: list[Run] = []
    for protocol in PROTOCOLS.values():
        if args.only and protocol.name not in args.only:
            continue
        if not protocol.runnable and not args.stl10:
            continue
        for run, result_file in plan(protocol, args, args.work):
            if run.status != "ok" or (args.resume and resumed(run, args.work, result_file)):
                pass  # not built / not runnable, or read back from an earlier invocation
            elif args.report_only:
                run.status = "not run yet"
            elif args.rows and run.pipeline not in args.rows:
                run.status = "not run (left out by --rows)"
            else:
                run_one(run, args.work, args.timeout, result_file, keep_records)
            results.append(run)
    write_report(out, results, args, started, time.perf_counter() - t0, (load_start, f"{os.getloadavg()[0]:.1f}"))


if __name__ == "__main__":
    main()
