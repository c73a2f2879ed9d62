"""Pool hygiene on a real image folder: the check's cost and what it finds -> bench/HYGIENE_RESULTS.md figures.

    python bench/hygiene.py --folder /tmp/cifarjpg [--cache-dir /tmp/hyg-cache] [--imagehash]

The folder is decoded as a run decodes it (`load_image_folder`, 32x32 RGB; without test/ 20% of each class is
held out as the test split, as in a run). Then, each timed on its own: the check as a run does it
(`hygiene.check`: BLAKE2b + vectorised pHash of every image, the pigeonhole pair search at NEAR_BITS), the
pair search alone at 4, 6, 8 bits (what a stricter or looser threshold would cost and find), and with
--imagehash (`pip install imagehash`, not a dependency of sslrun) `imagehash.phash` per PIL image on every
image, with the count of hashes that differ from ours. Writes a figure of found pairs at each distance.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sslrun.data import hygiene  # noqa: E402
from sslrun.data.image_folder import load_image_folder  # noqa: E402


def _cpu() -> str:
    text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Model name")), "?")
    flags = next((line for line in text.splitlines() if line.startswith("Flags")), "")
    return f"{model}; avx512f: {'avx512f' in flags}; amx: {'amx_tile' in flags}; {platform.python_version()}"


def _imagehash(images: np.ndarray, ours: np.ndarray) -> dict:
    import imagehash
    from PIL import Image

    start = time.perf_counter()
    theirs = [imagehash.phash(Image.fromarray(x)) for x in images]
    seconds = time.perf_counter() - start
    as_int = np.array([int(str(h), 16) for h in theirs], dtype=np.uint64)
    return {
        "imagehash_version": imagehash.__version__,
        "seconds": round(seconds, 2),
        "hashes_differing_from_ours": int(np.sum(as_int != ours)),
    }


def _figure(images: np.ndarray, hashes: np.ndarray, digests: np.ndarray, path: Path) -> None:
    from sslrun.report.plots import plot_duplicate_pairs

    a, b, dist = hygiene.close_pairs(hashes, 8)
    rng = np.random.default_rng(0)
    rows = np.concatenate([rng.permutation(np.flatnonzero(dist == d))[:4] for d in (0, 2, 4, 6, 8)])
    titles = [f"d={dist[r]}{' exact' if digests[a[r]] == digests[b[r]] else ''}" for r in rows]
    plot_duplicate_pairs(
        images[a[rows]],
        images[b[rows]],
        titles,
        path,
        "CIFAR-10 train JPEGs: 4 random pairs at each pHash distance 0, 2, 4, 6, 8 (6: the threshold)",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", required=True)
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--imagehash", action="store_true")
    parser.add_argument("--figure", default=str(ROOT / "bench" / "figures" / "hygiene_pairs.png"))
    args = parser.parse_args()
    start = time.perf_counter()
    raw = load_image_folder(args.folder, 32, 3, cache_dir=args.cache_dir)
    out = {
        "cpu": _cpu(),
        "decode_seconds": round(time.perf_counter() - start, 1),
        "train": len(raw.x_train),
        "test": len(raw.x_test),
    }
    found = hygiene.check(raw)
    out["check_seconds"] = round(found.seconds, 2)
    out["check"] = found.counts()
    out["chance_neighbours"] = round(found.chance, 4)  # near copies are looked for up to hygiene.CHANCE_LIMIT
    images = np.concatenate([raw.x_train, raw.x_test])
    start = time.perf_counter()
    digests, hashes = hygiene.fingerprints(images)
    out["fingerprint_seconds"] = round(time.perf_counter() - start, 2)
    pool = len(raw.x_train)
    for bits in (4, 6, 8):
        start = time.perf_counter()
        a, b, dist = hygiene.close_pairs(hashes, bits)
        seconds = time.perf_counter() - start
        test = (a < pool) & (b >= pool)
        out[f"search_{bits}_bits"] = {
            "seconds": round(seconds, 2),
            "pool_pairs": int(np.sum(b < pool)),
            "pool_test_pairs": int(test.sum()),
            "pool_images_copying_test": int(len(np.unique(a[test]))),
            "pairs_per_distance": np.bincount(dist[a < pool], minlength=bits + 1)[::2].tolist(),
        }
    if args.imagehash:
        out["imagehash"] = _imagehash(images, hashes)
    Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
    _figure(images, hashes, digests, Path(args.figure))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
