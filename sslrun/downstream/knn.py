"""k-nearest neighbours on frozen features: cosine similarity, similarity-weighted vote."""

from __future__ import annotations

import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from omegaconf import DictConfig

from sslrun.data.splits import Splits
from sslrun.downstream.features import features

CHUNK = 256  # query rows per similarity block: 256 x 60,000 rows is ~60 MB per float32 copy


def unit(f: np.ndarray) -> np.ndarray:
    return (f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def nearest(
    queries: np.ndarray, base: np.ndarray, k: int, *, exclude_self: bool = False, chunk: int = CHUNK
) -> tuple[np.ndarray, np.ndarray]:
    """(indices, similarities), each (n, k): every query row's k most similar `base` rows (unit rows in).

    exclude_self: queries are `base` itself, and row i is not its own neighbour. Each block of `chunk`
    queries is one matmul and one `tf.math.top_k` (bench/nearest.py: 1.9-3.3x numpy's argpartition).
    """
    k = min(k, len(base) - int(exclude_self))
    idx = np.empty((len(queries), k), np.int64)
    sim = np.empty((len(queries), k), np.float32)
    base_t = tf.constant(np.asarray(base, np.float32))
    for lo in range(0, len(queries), chunk):
        s = tf.matmul(tf.constant(np.asarray(queries[lo : lo + chunk], np.float32)), base_t, transpose_b=True)
        if exclude_self:
            own = tf.one_hot(tf.range(lo, lo + s.shape[0]), len(base), on_value=True, off_value=False)
            s = tf.where(own, tf.constant(-np.inf, s.dtype), s)
        top_sim, top_idx = tf.math.top_k(s, k, sorted=False)
        idx[lo : lo + chunk], sim[lo : lo + chunk] = top_idx.numpy(), top_sim.numpy()
    return idx, sim


def weighted_vote(classes: np.ndarray, weights: np.ndarray, num_classes: int) -> np.ndarray:
    """Per row, the class whose entries carry the most weight; entries of class -1 do not count."""
    votes = np.zeros((len(classes), num_classes))
    rows = np.broadcast_to(np.arange(len(classes))[:, None], classes.shape)
    counted = classes >= 0
    np.add.at(votes, (rows[counted], classes[counted]), weights[counted])
    return votes.argmax(axis=1)


def knn_predict(
    train_f: np.ndarray, train_y: np.ndarray, query_f: np.ndarray, k: int, num_classes: int, chunk: int = CHUNK
) -> np.ndarray:
    """Class of each query row: the k most cosine-similar training rows vote with their similarity."""
    idx, sim = nearest(unit(query_f), unit(train_f), k, chunk=chunk)
    return weighted_vote(np.asarray(train_y)[idx], sim, num_classes)


def knn_eval(encoder: keras.Model, splits: Splits, d: DictConfig, seed: int, tb_dir=None) -> dict[str, Any]:
    start = time.perf_counter()
    f_lab, f_test, f_val = (
        features(encoder, x, flip=d.feature_flip) for x in (splits.labeled_x, splits.test_x, splits.val_x)
    )
    pred = knn_predict(f_lab, splits.labeled_y, f_test, d.knn_k, splits.num_classes)
    val = None
    if len(splits.val_x):
        val_pred = knn_predict(f_lab, splits.labeled_y, f_val, d.knn_k, splits.num_classes)
        val = float(np.mean(val_pred == splits.val_y))
    return {
        "test_accuracy": float(np.mean(pred == splits.test_y)),
        "test_loss": None,
        "predictions": pred,
        "val_accuracy": val,
        "seconds": round(time.perf_counter() - start, 2),
        "history": [],
    }
