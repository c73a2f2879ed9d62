"""`make bench-precision`: does trainer.precision=mixed_bfloat16 speed up pretext training on this CPU?

For each (pretext task, encoder) the task is built twice from the real config (`trainer.precision`
float32 and mixed_bfloat16; the policy is global, so it is set before each build), trained for a
few warm-up steps, then timed over the same number of steps in alternating rounds (float32 first in
odd rounds, bf16 first in even ones) within ONE process: other jobs share the cores, and
alternating spreads their load over both settings. Images/s counts input images (a SimCLR image
makes two views; rotation mode=random, the default, one rotated copy). The median of the rounds
and the bf16/fp32 ratio per round go to bench/PRECISION_RESULTS.md.

    python bench/precision.py [--rounds 6] [--seconds 4] [--quick] [--out bench/PRECISION_RESULTS.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist"
BATCH = 256  # conf/trainer/default.yaml
SETTINGS = [("rotation", "small_cnn"), ("simclr", "small_cnn"), ("rotation", "resnet20"), ("simclr", "resnet20")]
PRECISIONS = ("float32", "mixed_bfloat16")


def images(n: int):
    """MNIST train images and labels (../shared/data/mnist), else sslrun's synthetic digits-like shapes."""
    if (MNIST / "train-images-idx3-ubyte.gz").is_file():
        from sslrun.data.mnist import load_idx_folder

        raw, source = load_idx_folder(MNIST), f"MNIST IDX files in {MNIST}"
    else:
        from sslrun.data.synthetic import make_synthetic

        raw, source = make_synthetic(n, 10, noise=0.1, seed=0), "synthetic 28x28 shapes (no MNIST files found)"
    return raw.x_train[:n], raw.y_train[:n], source


def compose(task: str, encoder: str, precision: str):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from sslrun.cli import conf_dir
    from sslrun.config import register_schemas
    from sslrun.help import register_help

    register_schemas()
    register_help(conf_dir())
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return hydra_compose(
            "config",
            overrides=[f"pretext={task}", f"encoder={encoder}", "dataset=mnist", f"trainer.precision={precision}"],
        )


def build(task_name: str, encoder_name: str, precision: str, shape: tuple[int, ...]):
    """The task as run_pretext builds it (config defaults, optimizer, jit_compile), under its policy."""
    import keras

    from sslrun.encoders import build_encoder
    from sslrun.training.optim import make_optimizer
    from sslrun.training.pretext import build_task

    cfg = compose(task_name, encoder_name, precision)
    keras.mixed_precision.set_global_policy(precision)
    try:
        keras.utils.set_random_seed(0)
        encoder = build_encoder(cfg.encoder.name, shape, cfg.encoder.width)
        task = build_task(cfg.pretext, encoder, 0, 10)
        task.compile(
            optimizer=make_optimizer(cfg.trainer.optimizer, cfg.trainer.learning_rate),
            jit_compile=cfg.trainer.jit_compile,
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return task


def dataset(task, x, y):
    import tensorflow as tf

    x = tf.constant(x.astype("float32") / 255.0)
    batches = tf.data.Dataset.from_tensor_slices(x).batch(BATCH, drop_remainder=True).cache().repeat()
    if task.uses_labels:  # two-view tasks train their online probe on labeled batches
        labeled = tf.data.Dataset.from_tensor_slices((x, tf.constant(y))).batch(BATCH, drop_remainder=True)
        batches = tf.data.Dataset.zip((batches, labeled.cache().repeat()))
    return batches.prefetch(2)


def timed(task, data, steps: int) -> float:
    """Images/s of training steps 2..steps of one fit call: from the end of the first step to the end
    of the last, so fit's per-call overhead (iterator, callbacks; ~0.8 s here) is not counted."""
    import keras

    ends: list[float] = []
    clock = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: ends.append(time.perf_counter()))
    task.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[clock])
    return (len(ends) - 1) * BATCH / (ends[-1] - ends[0])


def machine() -> str:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        info = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
        model = info.get("Model name", "?").strip()
        flags = info.get("Flags", "")
        bf16 = ", ".join(f for f in ("avx512_bf16", "amx_bf16") if f in flags.split()) or "no bf16 flags"
    except (OSError, subprocess.CalledProcessError):
        model, bf16 = platform.processor() or "?", "?"
    return f"{model}, {os.cpu_count()} CPUs ({bf16}), {platform.machine()}"


def measure(args) -> tuple[list[dict], str]:
    import keras
    import tensorflow as tf

    x, y, source = images(BATCH * 8)
    rows = []
    for task_name, encoder_name in args.settings:
        tasks = {p: build(task_name, encoder_name, p, x.shape[1:]) for p in PRECISIONS}
        data = {p: dataset(tasks[p], x, y) for p in PRECISIONS}
        probe = {p: timed(tasks[p], data[p], args.warmup) for p in PRECISIONS}  # traces the step, warms caches
        probe = {p: timed(tasks[p], data[p], args.warmup) for p in PRECISIONS}
        steps = max(5, round(args.seconds * probe["float32"] / BATCH))  # the same steps for both precisions
        speeds: dict[str, list[float]] = {p: [] for p in PRECISIONS}
        for r in range(args.rounds):
            for p in PRECISIONS if r % 2 == 0 else PRECISIONS[::-1]:
                speeds[p].append(timed(tasks[p], data[p], steps))
        ratios = [b / f for f, b in zip(speeds["float32"], speeds["mixed_bfloat16"], strict=True)]
        row = {
            "task": task_name,
            "encoder": encoder_name,
            "steps": steps,
            "speeds": speeds,
            "ratios": ratios,
            "compute_dtype": tasks["mixed_bfloat16"].encoder.layers[-1].compute_dtype,
        }
        rows.append(row)
        print(
            f"{task_name:9s} {encoder_name:10s} steps {steps:3d}  fp32 {fmt(speeds['float32'])}  "
            f"bf16 {fmt(speeds['mixed_bfloat16'])}  ratio {statistics.median(ratios):.2f}",
            flush=True,
        )
        del tasks, data
        keras.backend.clear_session()
    return rows, f"{source}; TensorFlow {tf.__version__}, Keras {keras.__version__}"


def fmt(values: list[float]) -> str:
    return "/".join(f"{v:,.0f}" for v in values)


def write(rows: list[dict], software: str, args, seconds: float, load: tuple[float, float]) -> None:
    lines = [
        "# Mixed bfloat16 vs float32 pretext training on CPU (`make bench-precision`)",
        "",
        f"Command: `{args.command}`  ",
        f"Machine: {machine()}  ",
        f"Date: {datetime.now():%Y-%m-%d %H:%M}; {seconds / 60:.1f} min; load average at start/end "
        f"{load[0]:.1f}/{load[1]:.1f} (other jobs share these cores)  ",
        f"Software and data: {software}  ",
        f"Batch {BATCH}, Adam, no XLA (the trainer defaults); {args.rounds} alternating rounds of the same step "
        "count per setting after warm-up, in one process, timed from the end of each run's first step to "
        "the end of its last (fit's per-call overhead excluded). Images/s are input images (median of the rounds; "
        "each round in brackets); ratio = bf16 / fp32 images/s, median of the per-round ratios (range).",
        "",
        "| task | encoder | steps/round | float32 img/s | mixed_bfloat16 img/s | bf16/fp32 |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        f32, b16 = r["speeds"]["float32"], r["speeds"]["mixed_bfloat16"]
        lines.append(
            f"| {r['task']} | {r['encoder']} | {r['steps']} | {statistics.median(f32):,.0f} ({fmt(f32)}) | "
            f"{statistics.median(b16):,.0f} ({fmt(b16)}) | **{statistics.median(r['ratios']):.2f}** "
            f"({min(r['ratios']):.2f}-{max(r['ratios']):.2f}) |"
        )
    lines += [
        "",
        f"bf16 layers computed in `{rows[0]['compute_dtype']}` (variables float32); heads and "
        "losses stay float32 (sslrun/pretext/losses.py).",
        "",
    ]
    Path(args.out).write_text("\n".join(lines))
    print(f"wrote {args.out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds (more: fairer under load)")
    parser.add_argument("--seconds", type=float, default=4.0, help="about this long per timed run (fp32)")
    parser.add_argument("--warmup", type=int, default=3, help="steps per warm-up run (two runs)")
    parser.add_argument("--quick", action="store_true", help="small_cnn only, 2 rounds of ~2 s")
    parser.add_argument("--out", default=str(ROOT / "bench" / "PRECISION_RESULTS.md"))
    parser.add_argument("--json", help="write the rows as JSON here instead of the Markdown (bench/cpu.py)")
    parser.add_argument("--only", help="task:encoder,... (default: all four)")
    args = parser.parse_args()
    args.settings = SETTINGS
    if args.quick:
        args.settings, args.rounds, args.seconds = SETTINGS[:2], 2, 2.0
    if args.only:
        args.settings = [tuple(item.split(":")) for item in args.only.split(",")]
    args.command = (
        "make bench-precision" if len(sys.argv) == 1 else "python bench/precision.py " + " ".join(sys.argv[1:])
    )
    load_start, start = os.getloadavg()[0], time.perf_counter()
    rows, software = measure(args)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "software": software}))
        return
    write(rows, software, args, time.perf_counter() - start, (load_start, os.getloadavg()[0]))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
