"""`random`: uniformly over the images not yet labeled (not per class). With nothing labeled it is
downstream.draw=random's draw itself: the same generator of (seed, repeat), the same permutation."""

from __future__ import annotations

import numpy as np

from sslrun.select.base import SELECTORS, check_budget, rng_of


@SELECTORS.register("random")
def select_random(
    features: np.ndarray, budget: int, seed: int, repeat: int = 0, labeled: np.ndarray | None = None
) -> np.ndarray:
    n = len(features)
    labeled = check_budget(n, budget, np.empty(0) if labeled is None else labeled)
    order = rng_of(seed, repeat).permutation(n)
    return order[~np.isin(order, labeled)][:budget]
