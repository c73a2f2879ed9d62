"""Label propagation over the unlabeled pool on frozen pretext features.

The few labels spread along a k-nearest-neighbour graph of the pool's features
(Zhou et al. 2004, "Learning with local and global consistency"; the graph,
weights and class balancing of Iscen et al. 2019, "Label propagation for deep
semi-supervised learning"). Test and validation images are then classified by
a kNN vote among the pool's propagated labels: they never enter the graph, so a
test prediction never depends on other test images.

The pool's features and graph depend only on the encoder and the pool, so a
study computes them once and shares them across label draws (`cache`).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from omegaconf import DictConfig
from scipy import sparse
from scipy.optimize import minimize
from scipy.sparse.linalg import cg

from sslrun.data.splits import Splits
from sslrun.downstream.features import features
from sslrun.downstream.knn import nearest, unit, weighted_vote

EDGE_POWER = 3  # edge weight = cosine similarity ** 3 (Iscen et al.): near neighbours dominate
CG_TOLERANCE = 1e-6  # conjugate gradient on (I - alpha S) F = Y, solved to convergence: a capped solve
CG_MAX_STEPS = 1000  # (Iscen et al. stop at 20 steps) leaves images more than ~20 hops from a label unlabeled
# propagate_classifier=linear: softmax regression on every graph node's unit features and propagated label
PSEUDO_L2 = 1e-4  # weak: tens of thousands of weighted labels do not let a linear model overfit
PSEUDO_MAX_STEPS = 1000  # L-BFGS iterations; it converges in a few hundred


def unit_rows(f: np.ndarray, centre: np.ndarray) -> np.ndarray:
    return unit(f - centre)


def propagate_scores(
    idx: np.ndarray, sim: np.ndarray, seeds: np.ndarray, seed_labels: np.ndarray, num_classes: int, alpha: float
) -> np.ndarray:
    """(n, num_classes) class scores of every graph node: the labels of the `seeds` nodes diffused along the graph.

    idx/sim: each node's neighbours and cosine similarities. Solves
    (I - alpha * D^-1/2 W D^-1/2) F = Y per class, then balances the classes
    (each column of F divided by its sum). A node that no label reaches (a graph
    component without labeled nodes) has a row of zeros.
    """
    n, k = idx.shape
    weights = np.clip(sim, 0.0, None).ravel() ** EDGE_POWER
    w = sparse.csr_matrix((weights, (np.repeat(np.arange(n), k), idx.ravel())), shape=(n, n))
    w = w + w.T
    inv_sqrt = 1.0 / np.sqrt(np.maximum(np.asarray(w.sum(axis=1)).ravel(), 1e-12))
    a = sparse.identity(n, format="csr") - alpha * (sparse.diags(inv_sqrt) @ w @ sparse.diags(inv_sqrt))
    f = np.zeros((n, num_classes), np.float64)
    for c in range(num_classes):
        y = np.zeros(n)
        y[seeds[seed_labels == c]] = 1.0
        if y.any():
            f[:, c] = cg(a, y, rtol=CG_TOLERANCE, maxiter=CG_MAX_STEPS)[0]
    f = np.maximum(f, 0.0)
    return f / np.maximum(f.sum(axis=0, keepdims=True), 1e-300)


def scores_to_labels(f: np.ndarray, seeds: np.ndarray, seed_labels: np.ndarray) -> np.ndarray:
    """Each node's class (argmax of its scores; -1 where no label reached it); seeds keep their own labels."""
    out = np.where(f.max(axis=1) > 0, f.argmax(axis=1), -1)
    out[seeds] = seed_labels
    return out


def propagate_labels(
    idx: np.ndarray, sim: np.ndarray, seeds: np.ndarray, seed_labels: np.ndarray, num_classes: int, alpha: float
) -> np.ndarray:
    """The class of every graph node (-1: unreached); see propagate_scores."""
    return scores_to_labels(propagate_scores(idx, sim, seeds, seed_labels, num_classes, alpha), seeds, seed_labels)


def certainty(f: np.ndarray) -> np.ndarray:
    """Per node, 1 - entropy / log(classes) of its normalised scores: 1 = one class only, 0 = uniform or unreached."""
    total = f.sum(axis=1, keepdims=True)
    z = f / np.maximum(total, 1e-300)
    entropy = -(z * np.log(np.maximum(z, 1e-300))).sum(axis=1)
    return np.where(total[:, 0] > 0, 1.0 - entropy / np.log(f.shape[1]), 0.0)


def label_weights(f: np.ndarray, labels: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Training weight of each node's propagated label (Iscen et al. 2019): its certainty times its class's
    inverse frequency; the labeled nodes get the largest weight, unreached nodes 0. Mean 1 over weighted nodes."""
    num_classes = f.shape[1]
    w = certainty(f)
    counts = np.bincount(labels[labels >= 0], minlength=num_classes)
    w = w * np.where(labels >= 0, (labels.size / num_classes) / np.maximum(counts[np.maximum(labels, 0)], 1), 0.0)
    w[seeds] = w.max()
    return (w / max(w[w > 0].mean(), 1e-300)).astype(np.float32) if (w > 0).any() else w.astype(np.float32)


def softmax_regression(
    x: np.ndarray, labels: np.ndarray, weights: np.ndarray, num_classes: int, l2: float = PSEUDO_L2
) -> tuple[np.ndarray, np.ndarray]:
    """(W, b) of the weighted multinomial logistic regression of labels on x, solved by L-BFGS to convergence.

    Minimises sum_i w_i CE(softmax(x_i W + b), labels_i) / sum_i w_i + l2 |W|^2 (rows with weight 0 are left out):
    a convex problem, so the answer does not depend on a learning rate, an epoch count or the data's size.
    """
    keep = weights > 0
    x, y, w = x[keep].astype(np.float64), labels[keep], weights[keep].astype(np.float64)
    w = w / w.sum()
    onehot = np.eye(num_classes)[y]
    dim = x.shape[1]

    def loss_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        W, b = theta[:-num_classes].reshape(dim, num_classes), theta[-num_classes:]
        logits = x @ W + b
        logits -= logits.max(axis=1, keepdims=True)
        logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        loss = -(w * (onehot * logp).sum(axis=1)).sum() + l2 * (W * W).sum()
        g = w[:, None] * (np.exp(logp) - onehot)
        return loss, np.concatenate([(x.T @ g + 2 * l2 * W).ravel(), g.sum(axis=0)])

    theta = minimize(
        loss_and_grad,
        np.zeros(dim * num_classes + num_classes),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": PSEUDO_MAX_STEPS},
    ).x
    return theta[:-num_classes].reshape(dim, num_classes), theta[-num_classes:]


def _fingerprint(x: Any) -> str:
    """Which pool this is, cheaply: its shape and a sample of its rows."""
    rows = np.asarray(x[np.linspace(0, len(x) - 1, num=min(len(x), 64)).astype(int)])
    return hashlib.sha1(repr(x.shape).encode() + rows.tobytes()).hexdigest()


def pool_graph(encoder: keras.Model, pool_x: Any, k: int, cache: dict, flip: bool = False) -> dict[str, np.ndarray]:
    """The pool's unit features and kNN graph, computed once per (pool, k, flip) in this study."""
    key = ("propagate", _fingerprint(pool_x), k, flip)
    if key not in cache:
        raw = features(encoder, pool_x, flip=flip)
        centre = raw.mean(axis=0)
        unit = unit_rows(raw, centre)
        idx, sim = nearest(unit, unit, k, exclude_self=True)
        cache[key] = {"centre": centre, "unit": unit, "idx": idx, "sim": sim}
    return cache[key]


def pool_neighbours(
    encoder: keras.Model, x: Any, pool: dict[str, np.ndarray], k: int, cache: dict, flip: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unit features, k nearest pool rows, their similarities) of images x: the same for every label draw."""
    key = ("neighbours", _fingerprint(x), k, flip)
    if key not in cache:
        query = unit_rows(features(encoder, x, flip=flip), pool["centre"])
        cache[key] = (query, *nearest(query, pool["unit"], k, exclude_self=False))
    return cache[key]


def vote(
    query: np.ndarray,
    pool_idx: np.ndarray,
    pool_sim: np.ndarray,
    lab: np.ndarray,
    labels: np.ndarray,
    k: int,
    num_classes: int,
) -> np.ndarray:
    """Each query's class: its k most similar graph nodes vote with their similarity.

    The candidates are the query's k nearest pool nodes (computed once per study) and every labeled node
    (nodes n_pool..); the k best of them are the k nearest nodes of the whole graph. Nodes that no label
    reached (label -1) are passed over, so in a graph with unreached parts a query whose nearest pool
    images are unreached has fewer pool voters (the labeled nodes are always candidates).
    """
    n_pool = len(labels) - len(lab)
    cand = np.concatenate([pool_idx, np.broadcast_to(np.arange(n_pool, len(labels)), (len(query), len(lab)))], 1)
    sim = np.where(labels[cand] >= 0, np.concatenate([pool_sim, query @ lab.T], 1), -np.inf)
    k = min(k, cand.shape[1])
    top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    return weighted_vote(labels[np.take_along_axis(cand, top, 1)], np.take_along_axis(sim, top, 1), num_classes)


@dataclass
class Propagation:
    """The labels of one draw spread over the graph: nodes 0..n_pool-1 are the pool, then the labeled images."""

    pool: dict[str, np.ndarray]  # pool_graph's entry: centre, unit features, neighbours
    lab: np.ndarray  # the labeled images' unit features
    scores: np.ndarray  # (nodes, classes), propagate_scores
    labels: np.ndarray  # (nodes,) class per node, -1 unreached

    def pool_confidence(self) -> np.ndarray:
        """Per pool image, the share of its scores that its class holds (0 where no label reached it)."""
        f = self.scores[: len(self.pool["unit"])]
        return f.max(axis=1) / np.maximum(f.sum(axis=1), 1e-300)


def propagation(encoder: keras.Model, splits: Splits, d: DictConfig, cache: dict) -> Propagation:
    """Propagate the labeled images' labels over pool + labeled nodes (the pool's graph from the study cache)."""
    pool = pool_graph(encoder, splits.pretext_x, d.propagate_k, cache, d.feature_flip)
    lab = unit_rows(features(encoder, splits.labeled_x, flip=d.feature_flip), pool["centre"])
    n_pool = len(pool["unit"])
    lab_idx, lab_sim = nearest(lab, pool["unit"], pool["idx"].shape[1], exclude_self=False)
    idx = np.concatenate([pool["idx"], lab_idx])  # labeled nodes n_pool.. point into the pool; w + w.T links back
    sim = np.concatenate([pool["sim"], lab_sim])
    seeds, seed_labels = np.arange(n_pool, n_pool + len(lab)), np.asarray(splits.labeled_y)
    scores = propagate_scores(idx, sim, seeds, seed_labels, splits.num_classes, d.propagate_alpha)
    return Propagation(pool, lab, scores, scores_to_labels(scores, seeds, seed_labels))


def propagate_eval(
    encoder: keras.Model, splits: Splits, d: DictConfig, cache: dict, p: Propagation | None = None
) -> dict[str, Any]:
    """Propagate the labeled images' labels over pool + labeled nodes (unless `p` holds that already), then
    classify test and validation: by a kNN vote among the nodes, or (propagate_classifier=linear) by a linear
    classifier fit to them."""
    start = time.perf_counter()
    p = p or propagation(encoder, splits, d, cache)
    if d.propagate_classifier.value == "linear":
        seeds = np.arange(len(p.pool["unit"]), len(p.labels))
        W, b = softmax_regression(
            np.concatenate([p.pool["unit"], p.lab]),
            p.labels,
            label_weights(p.scores, p.labels, seeds),
            splits.num_classes,
        )

    def classify(x: np.ndarray) -> np.ndarray:
        if d.propagate_classifier.value == "linear":  # needs no neighbours
            return (unit_rows(features(encoder, x, flip=d.feature_flip), p.pool["centre"]) @ W + b).argmax(axis=1)
        query, near_idx, near_sim = pool_neighbours(encoder, x, p.pool, d.knn_k, cache, d.feature_flip)
        return vote(query, near_idx, near_sim, p.lab, p.labels, d.knn_k, splits.num_classes)

    pred = classify(splits.test_x)
    val = float(np.mean(classify(splits.val_x) == splits.val_y)) if len(splits.val_x) else None
    return {
        "test_accuracy": float(np.mean(pred == splits.test_y)),
        "test_loss": None,
        "predictions": pred,
        "val_accuracy": val,
        "seconds": round(time.perf_counter() - start, 2),
        "history": [],
    }
