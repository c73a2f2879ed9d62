"""The strategies' registry and what they share: a seeded generator, unit-length features, the budget check."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sslrun.errors import DataError
from sslrun.registry import Registry

# (features (n, d), budget, seed, repeat, labeled rows) -> budget new rows, in the order to label them
Selector = Callable[..., np.ndarray]
SELECTORS: Registry[np.ndarray] = Registry("label selection strategy")


def rng_of(seed: int, repeat: int) -> np.random.Generator:
    """The generator of (seed, repeat): the one sslrun.data.splits.draw_labels uses, so `random` is its draw."""
    return np.random.default_rng([seed, repeat])


def sklearn_seed(seed: int, repeat: int) -> int:
    """An int random_state for scikit-learn from (seed, repeat)."""
    return int(np.random.SeedSequence([seed, repeat]).generate_state(1)[0] % (2**31 - 1))


def unit_rows(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32): Euclidean distance between them orders as cosine similarity does,
    the knn evaluation's measure (sslrun.downstream.knn)."""
    f = np.asarray(features, dtype=np.float32)
    return f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)


def check_budget(n: int, budget: int, labeled: np.ndarray) -> np.ndarray:
    """labeled as distinct int64 rows of the pool, after checking that `budget` more fit in it."""
    labeled = np.unique(np.asarray(labeled, dtype=np.int64))
    if len(labeled) and (labeled.min() < 0 or labeled.max() >= n):
        raise DataError(f"already-labeled rows must lie in 0..{n - 1}, got {labeled.min()}..{labeled.max()}")
    if budget <= 0:
        raise DataError(f"a label budget of {budget}: ask for at least one image")
    if budget > n - len(labeled):
        raise DataError(
            f"a label budget of {budget} but the pool has {n - len(labeled)} images not yet labeled "
            f"({n} in all, {len(labeled)} labeled); lower the budget"
        )
    return labeled


def squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) squared Euclidean distances of unit rows, clipped at 0 (rounding)."""
    return np.maximum(2.0 - 2.0 * (a @ b.T), 0.0)
