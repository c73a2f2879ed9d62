"""Pool hygiene: duplicate images among the training images, and training images that copy a test image.

Checked: every train and unlabeled image (what the pretext pool and the labeled draw come from), against each
other and against the test split. A copy of a test image in the pool lets pretext (and a pseudo-label) see the
test set, which inflates a semi-supervised score. Two kinds of match:

- exact: the same decoded pixels (BLAKE2b of the uint8 array): a file copied or saved twice.
- near: perceptual hashes at most NEAR_BITS of their 64 bits apart: a re-encoded, resized, brightened or
  lightly edited copy. The hash is pHash as the `imagehash` library defines it (luma, resized to 32x32,
  2-D DCT-II, the 8x8 lowest frequencies, bit = coefficient > their median), computed here for all images
  at once as one matrix product per image, on the arrays already decoded; bench/hygiene.py checks it bit for
  bit against `imagehash.phash` and measures both (bench/HYGIENE_RESULTS.md).

Why a perceptual hash and not the pretext embedding's neighbours: a leaked image must leave the pool before
pretext trains, when there is no embedding yet; and the whole check costs under 3 s for 50,000 images.

Pairs are found by the pigeonhole principle (multi-index hashing): the 64 bits are cut into NEAR_BITS + 1
pieces, and two hashes within NEAR_BITS bits agree on at least one whole piece, so only images sharing a
piece are compared, never all n^2 pairs.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from sslrun.atomic import atomic_open
from sslrun.data.base import RawData

log = logging.getLogger("sslrun")

HASH_BITS = 64
# Hamming distance (of 64 bits) up to which two images are near duplicates. On CIFAR-10's train JPEGs
# (bench/HYGIENE_RESULTS.md) about 11 of 16 pairs 6 bits apart are the same photograph to the eye, 10 of 16 at 8,
# and 8 costs five times the search: 6.
NEAR_BITS = 6
# Near copies are looked for only where an image has few hash neighbours: estimated from CHANCE_PAIRS random
# pairs, an image has at most CHANCE_LIMIT others within NEAR_BITS (CIFAR-10's JPEGs: 0.25; MNIST's centred
# digits: 71; a folder holding each picture three times: 2). Else the hash does not tell this data's images apart,
# and only exact copies are reported (and dropped).
CHANCE_PAIRS, CHANCE_LIMIT = 200_000, 3.0
_HASH_SIZE, _DCT_SIZE = 8, 32  # imagehash.phash's hash_size=8, highfreq_factor=4
_CHUNK = 4096  # images hashed at a time: a memory-mapped split is read this many rows at a time
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)

EXACT, NEAR, TEST_EXACT, TEST_NEAR = "exact", "near", "test_exact", "test_near"
KINDS = (EXACT, NEAR, TEST_EXACT, TEST_NEAR)  # pairs.csv's kinds; test_*: a is the training image, b the test one


# ----------------------------------------------------------------------------- fingerprints


def _dct_resize(size: int) -> np.ndarray:
    """(8, size): area-resize from `size` to 32 pixels, then the 8 lowest DCT-II basis rows (scipy's
    unnormalised dct: y[k] = 2 sum_n x[n] cos(pi k (2n + 1) / 64)). size 32: no resize, as PIL does."""
    edges = np.linspace(0, size, _DCT_SIZE + 1)
    left, right = edges[:-1, None], edges[1:, None]
    pixel = np.arange(size)[None, :]
    overlap = np.clip(np.minimum(right, pixel + 1) - np.maximum(left, pixel), 0, None)
    resize = overlap / overlap.sum(axis=1, keepdims=True)  # (32, size), each output pixel an average
    k, n = np.arange(_HASH_SIZE)[:, None], np.arange(_DCT_SIZE)[None, :]
    dct = 2 * np.cos(np.pi * k * (2 * n + 1) / (2 * _DCT_SIZE))
    return dct @ resize


def _luma(x: np.ndarray) -> np.ndarray:
    """PIL's convert("L"): ITU-R 601-2 weights in 16-bit fixed point, rounded; one channel passes."""
    if x.shape[-1] == 1:
        return x[..., 0].astype(np.float64)
    r, g, b = (x[..., c].astype(np.int32) for c in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.float64)


def phash(x: np.ndarray) -> np.ndarray:
    """64-bit perceptual hashes (uint64, first DCT coefficient in the top bit) of uint8 NHWC images."""
    basis = _dct_resize(x.shape[1]) if x.shape[1] == x.shape[2] else None
    if basis is None:
        raise ValueError(f"square images expected, got {x.shape[1]}x{x.shape[2]}")
    low = basis @ _luma(x) @ basis.T  # (n, 8, 8): the lowest frequencies only
    bits = low.reshape(len(x), -1) > np.median(low.reshape(len(x), -1), axis=1, keepdims=True)
    return np.packbits(bits, axis=1).view(">u8")[:, 0].astype(np.uint64)


def fingerprints(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(BLAKE2b digests of the pixels as 16-byte strings, pHashes) of uint8 images, _CHUNK rows at a time."""
    digests = np.empty(len(x), dtype="S16")
    hashes = np.empty(len(x), dtype=np.uint64)
    for lo in range(0, len(x), _CHUNK):
        part = np.ascontiguousarray(x[lo : lo + _CHUNK])  # a memmap's rows are read here, once
        digests[lo : lo + len(part)] = [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in part]
        hashes[lo : lo + len(part)] = phash(part)
    return digests, hashes


# ----------------------------------------------------------------------------- pairs


def popcount(x: np.ndarray) -> np.ndarray:
    """Set bits of each uint64 (a byte table: works on every NumPy the package supports)."""
    return _POPCOUNT[np.ascontiguousarray(x, dtype=np.uint64).view(np.uint8)].reshape(-1, 8).sum(axis=1)


def _pieces(max_bits: int) -> list[tuple[int, int]]:
    """(shift, width) of max_bits + 1 pieces that cut the 64 bits as evenly as they go."""
    cuts = np.linspace(0, HASH_BITS, max_bits + 2).round().astype(int)
    return [(int(lo), int(hi - lo)) for lo, hi in zip(cuts[:-1], cuts[1:], strict=True)]


def _equal_keys(key: np.ndarray):
    """(a, b) index arrays of pairs with equal keys, a batch per offset: equal keys sit together once sorted, so
    pairs at offset 1, 2, ... until no run of equal keys is that long (memory: one offset's pairs at a time)."""
    order = np.argsort(key, kind="stable")
    key = key[order]
    for offset in range(1, len(key)):
        same = np.flatnonzero(key[:-offset] == key[offset:])
        if not len(same):
            return
        a, b = order[same], order[same + offset]
        yield np.minimum(a, b), np.maximum(a, b)


def _sorted_pairs(found: list[np.ndarray]) -> np.ndarray:
    """(n, 2) unique pairs, sorted; a pair found several times is kept once."""
    return np.unique(np.concatenate(found), axis=0) if found else np.empty((0, 2), dtype=np.int64)


def close_pairs(hashes: np.ndarray, max_bits: int = NEAR_BITS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair (a < b) of hashes at most max_bits apart, with its distance, sorted by (a, b)."""
    hashes = np.asarray(hashes, dtype=np.uint64)
    found = []
    for shift, width in _pieces(max_bits):
        for a, b in _equal_keys((hashes >> np.uint64(shift)) & np.uint64((1 << width) - 1)):
            keep = popcount(hashes[a] ^ hashes[b]) <= max_bits
            found.append(np.stack([a[keep], b[keep]], axis=1))
    pairs = _sorted_pairs(found)
    return pairs[:, 0], pairs[:, 1], popcount(hashes[pairs[:, 0]] ^ hashes[pairs[:, 1]]).astype(np.int64)


def equal_pairs(digests: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (a < b) of equal digests, sorted."""
    pairs = _sorted_pairs([np.stack(ab, axis=1) for ab in _equal_keys(digests)])
    return pairs[:, 0], pairs[:, 1]


def chance_neighbours(hashes: np.ndarray, max_bits: int = NEAR_BITS) -> float:
    """How many other images a random image has within max_bits, estimated from CHANCE_PAIRS random pairs."""
    if len(hashes) < 2:
        return 0.0
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, len(hashes), (2, CHANCE_PAIRS))
    keep = a != b
    rate = np.mean(popcount(hashes[a[keep]] ^ hashes[b[keep]]) <= max_bits)
    return float(rate * (len(hashes) - 1))


# ----------------------------------------------------------------------------- the check


@dataclass
class Hygiene:
    """What the check found. Images are numbered train, then unlabeled, then test (`names` in that order)."""

    names: np.ndarray  # str: the file of each image, or "train:12" / "unlabeled:3" / "test:7"
    kind: np.ndarray  # str, one of KINDS, per pair
    a: np.ndarray  # int64
    b: np.ndarray
    distance: np.ndarray  # Hamming distance of the pHashes; 0 for exact copies
    sizes: tuple[int, int, int]  # train, unlabeled, test
    seconds: float = 0.0
    chance: float = 0.0  # chance_neighbours: above CHANCE_LIMIT no near pairs are looked for

    @property
    def near_checked(self) -> bool:
        return self.chance <= CHANCE_LIMIT

    def leaked(self) -> tuple[np.ndarray, np.ndarray]:
        """Rows of x_train and of x_unlabeled that copy a test image (exactly or nearly), sorted."""
        rows = np.unique(self.a[np.isin(self.kind, (TEST_EXACT, TEST_NEAR))])
        n_train = self.sizes[0]
        return rows[rows < n_train], rows[rows >= n_train] - n_train

    def counts(self) -> dict[str, int]:
        out = {f"{kind}_pairs": int(np.sum(self.kind == kind)) for kind in KINDS}
        train, unlabeled = self.leaked()
        out["images_copying_test"] = len(train) + len(unlabeled)
        return out


def _names(paths: np.ndarray | None, split: str, n: int) -> np.ndarray:
    return np.asarray(paths, dtype=str) if paths is not None else np.array([f"{split}:{i}" for i in range(n)])


def check(raw: RawData, max_bits: int = NEAR_BITS) -> Hygiene:
    """Exact and near pairs among raw's train + unlabeled images, and between them and its test images."""
    start = time.perf_counter()
    n_unl = 0 if raw.x_unlabeled is None else len(raw.x_unlabeled)
    sizes = (len(raw.x_train), n_unl, len(raw.x_test))
    parts = [raw.x_train, *([raw.x_unlabeled] if n_unl else []), raw.x_test]
    prints = [fingerprints(x) for x in parts]
    digests = np.concatenate([d for d, _ in prints])
    hashes = np.concatenate([h for _, h in prints])
    chance = chance_neighbours(hashes, max_bits)
    if chance <= CHANCE_LIMIT:
        a, b, distance = close_pairs(hashes, max_bits)
    else:
        a, b = equal_pairs(digests)
        distance = np.zeros(len(a), dtype=np.int64)
    pool = sizes[0] + sizes[1]
    keep = a < pool  # a test image and a test image: not the pool's business
    a, b, distance = a[keep], b[keep], distance[keep]
    exact = digests[a] == digests[b]
    with_test = b >= pool
    kind = np.where(with_test, np.where(exact, TEST_EXACT, TEST_NEAR), np.where(exact, EXACT, NEAR))
    names = np.concatenate(
        [
            _names(raw.train_paths, "train", sizes[0]),
            _names(raw.unlabeled_paths, "unlabeled", n_unl) if n_unl else np.array([], dtype=str),
            _names(raw.test_paths, "test", sizes[2]),
        ]
    )
    return Hygiene(names, kind.astype(str), a, b, distance, sizes, time.perf_counter() - start, chance)


def drop_leaked(raw: RawData, found: Hygiene) -> RawData:
    """raw without the train and unlabeled images that copy a test image; its source says how many went."""
    train, unlabeled = found.leaked()
    if not len(train) and not len(unlabeled):
        return raw
    keep = np.ones(len(raw.x_train), dtype=bool)
    keep[train] = False
    changes = {
        "x_train": raw.x_train[keep],
        "y_train": raw.y_train[keep],
        "train_paths": None if raw.train_paths is None else raw.train_paths[keep],
    }
    if len(unlabeled):
        # rows of a memory-mapped split (STL-10's 2.8 GB) are read into memory here: the price of a drop from it
        kept = np.setdiff1d(np.arange(len(raw.x_unlabeled)), unlabeled)
        changes["x_unlabeled"] = raw.x_unlabeled[kept]
        changes["unlabeled_paths"] = None if raw.unlabeled_paths is None else raw.unlabeled_paths[kept]
    # in the source, so the pretext cache key (which hashes it, with the pool's size) changes with the pool
    how = f"pHash <= {NEAR_BITS} bits" if found.near_checked else "exact copies only"
    what = f"{len(train) + len(unlabeled):,} images that copy a test image dropped ({how})"
    return replace(raw, source=f"{raw.source}; {what}", **changes)


# ----------------------------------------------------------------------------- in a run

FOLDER = "hygiene"  # <run dir>/hygiene/pairs.csv and pairs.png
_FIGURE_PAIRS = 4  # pairs of each kind in pairs.png


def write_pairs_csv(path: Path, found: Hygiene) -> Path:
    """pairs.csv: kind, a, b, distance; a is always the train/unlabeled image, b its match."""
    with atomic_open(path, "w", perms=0o644) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["kind", "a", "b", "distance"])
        writer.writerows(
            zip(found.kind, found.names[found.a], found.names[found.b], found.distance.tolist(), strict=True)
        )
    return path


def _figure_rows(found: Hygiene) -> np.ndarray:
    """A few pairs of each kind: for near ones spread over the distances found, the farthest included, so the
    figure shows what the threshold lets through."""
    chosen = []
    for kind in KINDS:
        rows = np.flatnonzero(found.kind == kind)
        rows = rows[np.argsort(found.distance[rows], kind="stable")]
        pick = np.unique(np.linspace(0, len(rows) - 1, min(_FIGURE_PAIRS, len(rows))).round().astype(int))
        chosen.append(rows[pick] if len(rows) else rows)
    return np.concatenate(chosen)


def _image(raw: RawData, i: int) -> np.ndarray:
    n_train, n_unl = len(raw.x_train), 0 if raw.x_unlabeled is None else len(raw.x_unlabeled)
    if i < n_train:
        return raw.x_train[i]
    return raw.x_unlabeled[i - n_train] if i < n_train + n_unl else raw.x_test[i - n_train - n_unl]


def write_pairs_figure(path: Path, found: Hygiene, raw: RawData) -> Path:
    from sslrun.report.plots import plot_duplicate_pairs

    rows = _figure_rows(found)
    first = np.stack([_image(raw, int(found.a[r])) for r in rows]) if len(rows) else np.empty(0)
    second = np.stack([_image(raw, int(found.b[r])) for r in rows]) if len(rows) else np.empty(0)
    titles = [f"{found.kind[r]} d={found.distance[r]}" for r in rows]
    heading = f"pool hygiene: left a train/unlabeled image, right its match (near: pHash <= {NEAR_BITS} bits)"
    return plot_duplicate_pairs(first, second, titles, path, heading)


def enabled(dataset: DictConfig) -> bool:
    """dataset.hygiene, where null means: image folders yes, the standard sets no; a drop needs the check."""
    if dataset.hygiene is not None:
        return bool(dataset.hygiene)
    return dataset.name == "image_folder" or bool(dataset.drop_test_duplicates)


def check_pool(raw: RawData, dataset: DictConfig, run_dir: Path) -> tuple[RawData, dict[str, Any] | None]:
    """The run's check (dataset.hygiene): pairs in <run dir>/hygiene/, counts in the log; with
    dataset.drop_test_duplicates, raw without the images that copy a test image. metrics.json's entry, or None."""
    if not enabled(dataset):
        return raw, None
    found = check(raw)
    csv_path = write_pairs_csv(run_dir / FOLDER / "pairs.csv", found)
    write_pairs_figure(run_dir / FOLDER / "pairs.png", found, raw)
    counts = found.counts()
    drop = bool(dataset.drop_test_duplicates)
    near = (
        f"near: 64-bit pHash within {NEAR_BITS} bits"
        if found.near_checked
        else f"near copies not looked for: a random image has about {found.chance:,.0f} others within {NEAR_BITS} "
        f"pHash bits (from {CHANCE_PAIRS:,} random pairs), so the hash does not tell these images apart"
    )
    if not found.near_checked:
        log.warning("pool hygiene: exact copies only; %s", near)
    summary = {
        "method": f"exact: BLAKE2b of the pixels; {near}",
        "near_bits": NEAR_BITS,
        "near_checked": found.near_checked,
        "chance_neighbours": round(found.chance, 3),
        "checked": dict(zip(("train", "unlabeled", "test"), found.sizes, strict=True)),
        **counts,
        "dropped": counts["images_copying_test"] if drop else 0,
        "seconds": round(found.seconds, 2),
        "pairs": f"{FOLDER}/pairs.csv",
        "figure": f"{FOLDER}/pairs.png",
    }
    log.info(
        "pool hygiene: %s train + %s unlabeled images against each other and %s test images in %.1fs: "
        "%d exact and %d near pairs in the pool, %d exact and %d near pairs with a test image; pairs in %s",
        *(f"{n:,}" for n in found.sizes),
        found.seconds,
        counts["exact_pairs"],
        counts["near_pairs"],
        counts["test_exact_pairs"],
        counts["test_near_pairs"],
        csv_path,
    )
    leaks = counts["images_copying_test"]
    if leaks and drop:
        log.info(
            "pool hygiene: dropped the %d train/unlabeled images that copy a test image "
            "(dataset.drop_test_duplicates=true)",
            leaks,
        )
        raw = drop_leaked(raw, found)
    elif leaks:
        log.warning(
            "pool hygiene: %d train/unlabeled images copy a test image, which inflates the test score; "
            "dataset.drop_test_duplicates=true removes them before pretext",
            leaks,
        )
    return raw, summary
