"""`make bench-steps`: what does downstream.steps_per_execution save per training step on this CPU?

For each (encoder, labeled batch size) a classifier is built as sslrun's fine-tuning builds it (encoder +
Dense head, Adam, the same loss), once per steps_per_execution value, and fitted on 120 labeled images
(seed 004's labeled count) for a warm-up epoch, then timed over whole epochs in alternating rounds (the
order of the settings rotates each round) within ONE process, so load from other jobs falls on all of
them. Reported: the median milliseconds per step over the rounds, and each setting's time per step
relative to steps_per_execution=1 in the same round (the median of those ratios).

    python bench/steps_per_execution.py [--rounds 5] [--epochs 3] [--out bench/STEPS_RESULTS.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist"
LABELED = 120  # seed 004: 150 labels, validation_split 0.2
SETTINGS = [("seed004_cnn", 1), ("small_cnn", 32)]  # seed 004's batch-1 fine-tuning; the default batch
SPE = (1, 8, 32)


def labeled_images():
    """The first 120 MNIST train images (../shared/data/mnist), else sslrun's synthetic shapes."""
    if (MNIST / "train-images-idx3-ubyte.gz").is_file():
        from sslrun.data.mnist import load_idx_folder

        raw, source = load_idx_folder(MNIST), f"MNIST IDX files in {MNIST}"
    else:
        from sslrun.data.synthetic import make_synthetic

        raw, source = make_synthetic(LABELED, 10, noise=0.1, seed=0), "synthetic 28x28 shapes"
    return raw.x_train[:LABELED], raw.y_train[:LABELED], source


def build(encoder: str, spe: int):
    import keras

    from sslrun.downstream.finetune import LOSS, classifier
    from sslrun.encoders import build_encoder

    keras.utils.set_random_seed(0)
    model = classifier(build_encoder(encoder, (28, 28, 1)), 10, 0.0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=LOSS, metrics=["accuracy"], steps_per_execution=spe)
    return model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=3, help="epochs timed per setting and round")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "STEPS_RESULTS.md")
    args = p.parse_args()
    from sslrun.data.pipeline import image_batches

    x, y, source = labeled_images()
    rows = []
    for encoder, batch in SETTINGS:
        data = image_batches(x, y, batch_size=batch, shuffle=True, seed=0)
        steps = -(-LABELED // batch) * args.epochs
        models = {spe: build(encoder, spe) for spe in SPE}
        for model in models.values():
            model.fit(data, epochs=1, verbose=0)  # trace and warm up
        ms = {spe: [] for spe in SPE}
        for r in range(args.rounds):
            order = SPE[r % len(SPE) :] + SPE[: r % len(SPE)]
            for spe in order:
                start = time.perf_counter()
                models[spe].fit(data, epochs=args.epochs, verbose=0)
                ms[spe].append((time.perf_counter() - start) / steps * 1000)
        for spe in SPE:
            ratio = statistics.median(a / b for a, b in zip(ms[spe], ms[1], strict=True))
            rows.append((encoder, batch, spe, statistics.median(ms[spe]), ratio))
            print(
                f"{encoder} batch {batch} steps_per_execution {spe}: {rows[-1][3]:.2f} ms/step, "
                f"{ratio:.2f}x the time of 1",
                flush=True,
            )
    write(args, rows, source)


def write(args: argparse.Namespace, rows: list, source: str) -> None:
    import keras
    import tensorflow as tf

    lines = [
        "# downstream.steps_per_execution: time per fine-tuning step (`make bench-steps`)",
        "",
        f"Command: `python bench/steps_per_execution.py --rounds {args.rounds} --epochs {args.epochs}`  ",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; Python "
        f"{sys.version.split()[0]}, Keras {keras.__version__}, TensorFlow {tf.__version__}  ",
        f"Date: {datetime.now():%Y-%m-%d %H:%M}; data: {LABELED} images from {source}",
        "",
        "Each setting fits the same classifier (encoder + Dense head, Adam) for whole epochs, alternating "
        "with the others in each round in one process. ms/step: median over the rounds; vs 1: the median of "
        "each round's ratio to steps_per_execution=1.",
        "",
        "| encoder | batch | steps_per_execution | ms per step | vs 1 |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    lines += [f"| {e} | {b} | {s} | {m:.2f} | {r:.2f}x |" for e, b, s, m, r in rows]
    from sslrun.atomic import atomic_write_text

    atomic_write_text(args.out, "\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
