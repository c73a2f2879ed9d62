"""`typiclust`: TypiClust (Hacohen, Dekel & Weinshall, ICML 2022, "Active Learning on a Budget: Opposite
Strategies Suit High and Low Budgets"; reference code github.com/avihu111/TypiClust).

The pool's features are clustered by k-means into as many clusters as there will be labels (already labeled +
budget, at most MAX_CLUSTERS); each pick takes the cluster with the fewest labeled images (ties: the largest),
ignoring clusters under MIN_CLUSTER_SIZE while larger ones remain, and labels its most typical image:
typicality = 1 / (mean distance to its NEIGHBOURS nearest images in that cluster), the paper's density estimate.
k-means from scikit-learn (KMeans up to FULL_KMEANS clusters, MiniBatchKMeans above, as the reference code does),
seeded from (seed, repeat). Cosine distance (unit rows), like the knn evaluation.
"""

from __future__ import annotations

import numpy as np

from sslrun.select.base import SELECTORS, check_budget, sklearn_seed, squared_distances, unit_rows

MAX_CLUSTERS = 500  # the reference code's cap: more clusters than that add k-means cost, not coverage
MIN_CLUSTER_SIZE = 5  # the reference code's: smaller clusters are outliers, labeled only when nothing else is left
NEIGHBOURS = 20  # the paper's k for typicality
FULL_KMEANS = 50  # clusters up to which full KMeans runs (the reference code's switch to MiniBatchKMeans)


def kmeans_labels(f: np.ndarray, k: int, seed: int, repeat: int) -> np.ndarray:
    """Cluster of each row: scikit-learn's KMeans (k <= FULL_KMEANS) or MiniBatchKMeans, seeded."""
    from sklearn.cluster import KMeans, MiniBatchKMeans

    state = sklearn_seed(seed, repeat)
    model = (
        KMeans(n_clusters=k, n_init=1, random_state=state)
        if k <= FULL_KMEANS
        else MiniBatchKMeans(n_clusters=k, n_init=3, batch_size=4096, random_state=state)
    )
    return model.fit_predict(f).astype(np.int64)


def typicality(members: np.ndarray) -> np.ndarray:
    """1 / (mean distance to the NEIGHBOURS nearest other rows) of each row of `members` (unit rows)."""
    k = min(NEIGHBOURS, len(members) - 1)
    if k < 1:
        return np.ones(len(members))
    out = np.empty(len(members))
    for start in range(0, len(members), 2048):
        d2 = squared_distances(members[start : start + 2048], members)
        near = np.partition(d2, k, axis=1)[:, : k + 1]  # itself (0) and its k nearest
        out[start : start + 2048] = 1.0 / (np.sqrt(np.sort(near, axis=1)[:, 1:]).mean(axis=1) + 1e-5)
    return out


@SELECTORS.register("typiclust")
def select_typiclust(
    features: np.ndarray, budget: int, seed: int, repeat: int = 0, labeled: np.ndarray | None = None
) -> np.ndarray:
    f = unit_rows(features)
    labeled = check_budget(len(f), budget, np.empty(0) if labeled is None else labeled)
    k = min(len(labeled) + budget, MAX_CLUSTERS, len(f))
    cluster = kmeans_labels(f, k, seed, repeat)
    size = np.bincount(cluster, minlength=k)
    covered = np.bincount(cluster[labeled], minlength=k)
    taken = np.zeros(len(f), dtype=bool)
    taken[labeled] = True
    scores: dict[int, np.ndarray] = {}  # cluster -> typicality of its members, computed when first needed
    picks = []
    for _ in range(budget):
        left = size - np.bincount(cluster[taken], minlength=k)
        usable = left > 0
        if np.any(usable & (size >= MIN_CLUSTER_SIZE)):
            usable &= size >= MIN_CLUSTER_SIZE
        # fewest labeled first, then the largest; lexsort's last key is its first
        c = int(np.lexsort((-size[usable], covered[usable]))[0])
        c = int(np.flatnonzero(usable)[c])
        members = np.flatnonzero(cluster == c)
        if c not in scores:
            scores[c] = typicality(f[members])
        score = np.where(taken[members], -np.inf, scores[c])
        pick = int(members[int(np.argmax(score))])
        picks.append(pick)
        taken[pick] = True
        covered[c] += 1
    return np.array(picks, dtype=np.int64)
