"""sslrun's k-nearest-neighbour search (sslrun/downstream/knn.py `nearest`) against the NumPy
argpartition search it replaced, on random unit rows the size of a propagate pool graph.

usage: python bench/nearest.py [--rounds 2]
Prints seconds per search for each size, the two alternating in one process, and whether they found
the same neighbours.
"""

import argparse
import time

import numpy as np

from sslrun.downstream.knn import nearest, unit

SIZES = ((60_000, 128), (40_000, 512))  # seed 004 _plus (MNIST pool, small_cnn); seed 003 _plus (wide_cnn)


def numpy_nearest(x: np.ndarray, k: int, chunk: int = 256) -> np.ndarray:
    """The earlier implementation: a matmul and an argpartition per block of 256 rows, self excluded."""
    idx = np.empty((len(x), k), np.int64)
    for lo in range(0, len(x), chunk):
        s = x[lo : lo + chunk] @ x.T
        s[np.arange(len(s)), np.arange(lo, lo + len(s))] = -np.inf
        idx[lo : lo + chunk] = np.argpartition(-s, k - 1, axis=1)[:, :k]
    return idx


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    for n, d in SIZES:
        x = unit(rng.standard_normal((n, d)).astype(np.float32))
        times = {"numpy": [], "sslrun": []}
        for _ in range(args.rounds):
            t = time.perf_counter()
            ref = numpy_nearest(x, 10)
            times["numpy"].append(time.perf_counter() - t)
            t = time.perf_counter()
            got, _ = nearest(x, x, 10, exclude_self=True)
            times["sslrun"].append(time.perf_counter() - t)
        same = float(np.mean(np.sort(ref, 1) == np.sort(got, 1)))
        a, b = np.median(times["numpy"]), np.median(times["sslrun"])
        print(
            f"{n:,} x {d}, k=10: numpy {a:.1f} s, sslrun {b:.1f} s ({a / b:.1f}x); same neighbours {same:.4f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
