"""Features in two dimensions for a map (`sslrun-embed --map`): PCA and t-SNE from scikit-learn, UMAP from
umap-learn where it is installed. Each works on the unit-length features, the cosine geometry the kNN
evaluation sees; each is seeded, so a map is drawn the same way twice."""

from __future__ import annotations

import importlib.util

import numpy as np

MAPS = ("pca", "tsne", "umap")
NEEDS = {"pca": ("sklearn", "scikit-learn"), "tsne": ("sklearn", "scikit-learn"), "umap": ("umap", "umap-learn")}
SEED = 0


def missing_package(method: str) -> str | None:
    """The pip package `method` needs when it is not installed, else None."""
    module, package = NEEDS[method]
    return package if importlib.util.find_spec(module) is None else None


def describe(method: str) -> str:
    return {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}[method]


def project_2d(features: np.ndarray, method: str) -> np.ndarray:
    """(n, 2) coordinates of n >= 2 feature rows."""
    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    n = len(unit)
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=SEED).fit_transform(unit)
    if method == "tsne":
        from sklearn.manifold import TSNE

        # perplexity must stay below the number of points; 30 is scikit-learn's default
        return TSNE(
            n_components=2, perplexity=min(30.0, max(1.0, (n - 1) / 3)), init="pca", metric="cosine", random_state=SEED
        ).fit_transform(unit)
    if method == "umap":
        import umap

        return umap.UMAP(n_components=2, n_neighbors=min(15, n - 1), metric="cosine", random_state=SEED).fit_transform(
            unit
        )
    raise ValueError(f"map {method!r} is not one of {', '.join(MAPS)}")
