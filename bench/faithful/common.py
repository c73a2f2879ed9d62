"""Shared by the faithful scripts: local stand-ins for keras.datasets, timing, the result file.

Nothing here trains anything: each seedNNN.py holds its document's whole pipeline.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MNIST = Path(os.environ.get("BENCH_MNIST", "/work/shared/data/mnist"))
FASHION = Path(os.environ.get("BENCH_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"))


def _idx(path: Path) -> np.ndarray:
    """One gzipped IDX file as the uint8 array it holds (images (n, 28, 28), labels (n,))."""
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4)
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims).copy()


def load_data(folder: Path) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """What keras.datasets.mnist/fashion_mnist.load_data() returns, read from local IDX files."""
    if not (folder / "train-images-idx3-ubyte.gz").is_file():
        raise SystemExit(
            f"no IDX files in {folder}: expected train-images-idx3-ubyte.gz and the other three "
            "(MNIST: /work/shared/data/mnist; Fashion-MNIST: apt-get install dataset-fashion-mnist)"
        )
    part = lambda name: _idx(folder / f"{name}-ubyte.gz")  # noqa: E731
    return (
        (part("train-images-idx3"), part("train-labels-idx1")),
        (part("t10k-images-idx3"), part("t10k-labels-idx1")),
    )


def parser(doc: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="scaled-down run (see the module docstring)")
    p.add_argument("--out", type=Path, help="write the result as JSON here")
    p.add_argument("--seed", type=int, default=42, help="NumPy/TF seed (the documents set none, or R's)")
    return p


class Clock:
    """Wall time of the whole script and of the pretext fit; pretext images/s like sslrun's:
    images the pretext fit trained on (epochs x training images) / seconds of that fit,
    validation passes included."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.pretext_seconds = 0.0
        self.pretext_images = 0

    def pretext(self, images: int, seconds: float) -> None:
        self.pretext_images += images
        self.pretext_seconds += seconds

    def result(self, **fields) -> dict:
        ips = self.pretext_images / self.pretext_seconds if self.pretext_seconds else None
        return {
            **fields,
            "pretext_images": self.pretext_images,
            "pretext_seconds": round(self.pretext_seconds, 2),
            "pretext_images_per_second": round(ips, 1) if ips else None,
            "seconds": round(time.perf_counter() - self.start, 2),
        }


def finish(result: dict, out: Path | None) -> None:
    text = json.dumps(result, indent=2)
    print(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
