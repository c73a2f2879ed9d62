"""`kcenter`: greedy k-center, the coreset of Sener & Savarese (ICLR 2018, "Active Learning for Convolutional
Neural Networks: A Core-Set Approach"): each pick is the image farthest from every image picked or labeled so
far, so the picks cover the feature space with the smallest radius greedy can give (a 2-approximation). With
nothing labeled the first pick is uniform at random from (seed, repeat). Cosine distance (unit rows)."""

from __future__ import annotations

import numpy as np

from sslrun.select.base import SELECTORS, check_budget, rng_of, squared_distances, unit_rows

CHUNK = 4096  # labeled rows whose distances are computed at once (memory: CHUNK x pool floats)


@SELECTORS.register("kcenter")
def select_kcenter(
    features: np.ndarray, budget: int, seed: int, repeat: int = 0, labeled: np.ndarray | None = None
) -> np.ndarray:
    f = unit_rows(features)
    labeled = check_budget(len(f), budget, np.empty(0) if labeled is None else labeled)
    nearest = np.full(len(f), np.inf, dtype=np.float32)  # squared distance to the closest centre so far
    for start in range(0, len(labeled), CHUNK):
        nearest = np.minimum(nearest, squared_distances(f[labeled[start : start + CHUNK]], f).min(axis=0))
    nearest[labeled] = -1.0  # already labeled: never picked again
    picks = []
    for _ in range(budget):
        pick = int(rng_of(seed, repeat).integers(len(f))) if not picks and not len(labeled) else int(np.argmax(nearest))
        picks.append(pick)
        nearest = np.minimum(nearest, squared_distances(f[pick : pick + 1], f)[0])
        nearest[pick] = -1.0  # never picked twice, even where features repeat
    return np.array(picks, dtype=np.int64)
