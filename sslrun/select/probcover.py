"""`probcover`: ProbCover (Yehuda, Dekel, Hacohen & Weinshall, NeurIPS 2022, "Active Learning Through a
Covering Lens"; reference code github.com/avihu111/TypiClust, deep-al/pycls/al/prob_cover.py).

Each image covers the ball of radius delta around it; each pick is the image whose ball holds the most images
not yet covered (balls of already-labeled images count as covered), greedy max coverage. When every image is
covered, the rest are uniform at random from (seed, repeat), as in the reference code. delta is chosen from the
features alone, as in the paper: the largest radius at which at least PURITY of the balls are pure, a ball
being pure when it holds no image of another k-means cluster (pseudo-labels, never the labels). That radius is
exactly the (1 - PURITY) quantile of each image's distance to its nearest image of another cluster.
The paper clusters into as many clusters as there are classes; a pool has no known classes here, so the
clusters are as many as there will be labels (TypiClust's choice; at least 2). Cosine distance (unit rows).
"""

from __future__ import annotations

import logging

import numpy as np

from sslrun.select.base import SELECTORS, check_budget, rng_of, squared_distances, unit_rows
from sslrun.select.typiclust import MAX_CLUSTERS, kmeans_labels

log = logging.getLogger("sslrun")

PURITY = 0.95  # the paper's alpha: the share of pure balls the radius keeps
CHUNK = 1024  # rows whose distances to the whole pool are computed at once (memory: CHUNK x pool floats)


def purity_radius(f: np.ndarray, cluster: np.ndarray) -> float:
    """The largest delta with a share >= PURITY of pure balls: the (1 - PURITY) quantile of the distance
    from each row to the nearest row of another cluster."""
    other = np.empty(len(f), dtype=np.float32)
    for start in range(0, len(f), CHUNK):
        d2 = squared_distances(f[start : start + CHUNK], f)
        d2[cluster[start : start + CHUNK, None] == cluster[None, :]] = np.inf
        other[start : start + CHUNK] = d2.min(axis=1)
    return float(np.sqrt(np.quantile(other, 1.0 - PURITY)))


def ball_counts(f: np.ndarray, rows: np.ndarray, columns: np.ndarray, radius2: float) -> np.ndarray:
    """For each of `columns`, how many of `rows` lie within the radius (squared: radius2)."""
    counts = np.zeros(len(columns), dtype=np.int64)
    for start in range(0, len(rows), CHUNK):
        counts += (squared_distances(f[rows[start : start + CHUNK]], f[columns]) < radius2).sum(axis=0)
    return counts


@SELECTORS.register("probcover")
def select_probcover(
    features: np.ndarray, budget: int, seed: int, repeat: int = 0, labeled: np.ndarray | None = None
) -> np.ndarray:
    f = unit_rows(features)
    n, labeled = len(f), check_budget(len(f), budget, np.empty(0) if labeled is None else labeled)
    k = max(2, min(len(labeled) + budget, MAX_CLUSTERS, n))
    radius = purity_radius(f, kmeans_labels(f, k, seed, repeat))
    r2, everyone = radius**2, np.arange(n)
    covered = ball_counts(f, labeled, everyone, r2) > 0
    degree = ball_counts(f, np.flatnonzero(~covered), everyone, r2)  # uncovered images in each ball
    free = np.ones(n, dtype=bool)
    free[labeled] = False
    picks, rng = [], rng_of(seed, repeat)
    for _ in range(budget):
        if degree[free].max() > 0:
            pick = int(np.flatnonzero(free)[np.argmax(degree[free])])
        else:  # everything covered: the reference code's random rest
            pick = int(rng.choice(np.flatnonzero(free)))
        picks.append(pick)
        free[pick] = False
        new = np.flatnonzero(~covered & (squared_distances(f[pick : pick + 1], f)[0] < r2))
        covered[new] = True
        degree -= ball_counts(f, new, everyone, r2)
    log.info(
        "probcover: radius %.4f (cosine: %.4f) from %d k-means clusters at purity %.2f; %.1f%% of %d images covered",
        radius,
        1 - r2 / 2,
        k,
        PURITY,
        100 * covered.mean(),
        n,
    )
    return np.array(picks, dtype=np.int64)
