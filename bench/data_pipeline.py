"""`make bench-data`: does the input pipeline outrun training, for every data set?

For each data set: load it from its original files (real data where this
machine has it, a generated fixture in the original format where it does not),
then measure in one process
  - the pipeline alone: images/s of `image_batches` over the pretext pool
    (shuffled, uint8 gathered per batch, converted to float32), and
  - training: images/s that rotation pretext training with `small_cnn`
    consumes on the same images (the same batch size),
and report the ratio (target >= 5x), the load time (decoding included: the
JPEG folder is decoded, not read from sslrun's cache) and the process' peak RSS.
Each data set runs in its own subprocess so peak RSS is its own.

    python bench/data_pipeline.py [--quick] [--out bench/DATA_RESULTS.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tarfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
WORK = Path(os.environ.get("SSLRUN_BENCH_DIR", "/tmp/sslrun-bench"))
BATCH = 256


def cifar_jpeg_folder() -> Path:
    """../shared's CIFAR-10 JPEG tarball, unpacked once."""
    folder = WORK / "cifar10-jpg"
    if not (folder / "train").is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        with tarfile.open(SHARED / "cifar10-train-jpg.tar.gz") as tar:
            tar.extractall(folder, filter="data")
    return folder


def stl10_fixture(n_unlabeled: int) -> Path:
    """STL-10's original binary layout, generated: the real files (2.6 GB) are not on this machine."""
    import numpy as np

    from sslrun.data import writers

    root = WORK / f"stl10-{n_unlabeled}"
    if not (root / "stl10_binary" / "unlabeled_X.bin").exists():
        rng = np.random.default_rng(0)
        img = lambda n: rng.integers(0, 256, (n, 96, 96, 3), dtype=np.uint8)  # noqa: E731
        writers.write_stl10_binary(
            root, img(500), np.arange(500) % 10, img(800), np.arange(800) % 10, img(n_unlabeled), archive=False
        )
    return root


def prepare_files(name: str, quick: bool) -> None:
    """Write the generated or converted files a data set needs, outside the measured process."""
    from sslrun.data.image_folder import load_image_folder
    from sslrun.data.writers import write_cifar10_binary

    if name == "cifar10 (binary files)" and not (WORK / "cifar10-bin" / "cifar-10-batches-bin").is_dir():
        jpg = load_image_folder(cifar_jpeg_folder(), 32, 3, cache_dir=None)
        write_cifar10_binary(WORK / "cifar10-bin", jpg.x_train, jpg.y_train, jpg.x_test, jpg.y_test, archive=False)
    if name == "image_folder (CIFAR-10 JPEG)":
        cifar_jpeg_folder()
    if name == "stl10 (generated fixture)":
        stl10_fixture(5000 if quick else 20000)


def load(name: str, quick: bool):
    """RawData for bench data set `name`, from the files prepare_files wrote."""
    from sslrun.data.cifar import load_cifar10
    from sslrun.data.image_folder import load_image_folder
    from sslrun.data.mnist import load_idx_folder
    from sslrun.data.stl10 import load_stl10

    cache = WORK / "cache"
    if name == "mnist":
        return load_idx_folder(SHARED / "mnist")
    if name == "fashion_mnist":
        return load_idx_folder(Path("/usr/share/datasets/fashion-mnist"))
    if name == "image_folder (CIFAR-10 JPEG)":
        return load_image_folder(cifar_jpeg_folder(), 32, 3, cache_dir=None)
    if name == "cifar10 (binary files)":
        return load_cifar10(WORK / "cifar10-bin" / "cifar-10-batches-bin")
    if name == "stl10 (generated fixture)":
        return load_stl10(stl10_fixture(5000 if quick else 20000) / "stl10_binary", cache)
    raise SystemExit(f"unknown bench data set {name}")


POOLS = {"stl10 (generated fixture)": "unlabeled"}


def images_per_second(batches, n_batches: int) -> float:
    it = iter(batches)
    next(it)  # warm-up: tracing, first prefetch
    start, seen = time.perf_counter(), 0
    for _ in range(n_batches):
        seen += len(next(it))
    return seen / (time.perf_counter() - start)


def measure(name: str, quick: bool) -> dict:
    import keras

    from sslrun.data.pipeline import image_batches
    from sslrun.data.splits import make_splits
    from sslrun.encoders import build_encoder
    from sslrun.pretext import PRETEXTS

    start = time.perf_counter()
    raw = load(name, quick)
    load_s = time.perf_counter() - start
    splits = make_splits(raw, 10, 0, seed=0, num_classes=None, pool=POOLS.get(name, "train"))
    n = 40 if quick else 150
    pipe = image_batches(splits.pretext_x, batch_size=BATCH, shuffle=True, seed=0).repeat()
    pipeline_ips = images_per_second(pipe, n)
    pipeline_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2

    keras.utils.set_random_seed(0)
    task = PRETEXTS.build(
        "rotation", encoder=build_encoder("small_cnn", splits.image_shape), seed=0, mode="random", head_hidden=0
    )
    task.compile(optimizer=keras.optimizers.Adam(1e-3))
    steps = 10 if quick else 30
    task.fit(pipe, epochs=1, steps_per_epoch=3, verbose=0)  # build and trace
    t0 = time.perf_counter()
    task.fit(pipe, epochs=1, steps_per_epoch=steps, verbose=0)
    train_ips = steps * BATCH / (time.perf_counter() - t0)
    return {
        "dataset": name,
        "source": raw.source,
        "pool": splits.pool,
        "pool_images": len(splits.pretext_x),
        "shape": "x".join(map(str, splits.image_shape)),
        "load_s": round(load_s, 2),
        "pipeline_ips": round(pipeline_ips),
        "train_ips": round(train_ips),
        "ratio": round(pipeline_ips / train_ips, 1),
        "pipeline_rss_gb": round(pipeline_rss, 2),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 2),
    }


DATASETS = [
    "mnist",
    "fashion_mnist",
    "cifar10 (binary files)",
    "image_folder (CIFAR-10 JPEG)",
    "stl10 (generated fixture)",
]


def report(rows: list[dict], command: str, quick: bool) -> str:
    lines = [
        "# Input pipeline vs training throughput (`make bench-data`)",
        "",
        f"Command: `{command}`{' (quick)' if quick else ''}  ",
        f"Machine: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}; date {time.strftime('%Y-%m-%d %H:%M')}  ",
        f"Batch {BATCH}; training = rotation pretext (mode=random) with small_cnn, the images/s it consumes; "
        "pipeline = `image_batches` alone over the same pretext pool. Target: ratio >= 5.",
        "",
        "Peak RSS: after loading and the pipeline run (data), and after training too (whole process).",
        "",
        "| data set | source | pool | shape | load s | pipeline img/s | training img/s | ratio "
        "| peak RSS GB data / whole |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['source']} | {r['pool']} ({r['pool_images']:,}) | {r['shape']} | "
            f"{r['load_s']} | {r['pipeline_ips']:,} | {r['train_ips']:,} | {r['ratio']} | "
            f"{r['pipeline_rss_gb']} / {r['peak_rss_gb']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(ROOT / "bench" / "DATA_RESULTS.md"))
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.quick)))
        return
    rows = []
    for name in DATASETS:
        prepare_files(name, args.quick)
        cmd = [sys.executable, __file__, "--one", name] + (["--quick"] if args.quick else [])
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode:
            print(out.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"bench-data: {name} failed")
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(
            f"{name}: pipeline {rows[-1]['pipeline_ips']:,} img/s, training {rows[-1]['train_ips']:,} img/s, "
            f"ratio {rows[-1]['ratio']}",
            flush=True,
        )
    text = report(rows, "make bench-data" if not args.quick else "python bench/data_pipeline.py --quick", args.quick)
    Path(args.out).write_text(text)
    print(text)
    slow = [r["dataset"] for r in rows if r["ratio"] < 5]
    if slow:
        raise SystemExit(f"bench-data: the pipeline is under 5x training for {', '.join(slow)}")


if __name__ == "__main__":
    main()
