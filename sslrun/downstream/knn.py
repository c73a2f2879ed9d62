"""k-nearest neighbours on frozen features: cosine similarity, similarity-weighted vote."""

from __future__ import annotations

import time
from typing import Any

import keras
import numpy as np
from omegaconf import DictConfig

from sslrun.data.splits import Splits
from sslrun.downstream.features import features


def knn_predict(train_f: np.ndarray, train_y: np.ndarray, query_f: np.ndarray, k: int, num_classes: int,
                chunk: int = 2048) -> np.ndarray:
    """Class of each query row: the k most cosine-similar training rows vote with their similarity."""
    unit = lambda f: f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)  # noqa: E731
    train_u, k = unit(train_f), min(k, len(train_f))
    out = np.empty(len(query_f), dtype=np.int64)
    for lo in range(0, len(query_f), chunk):
        sims = unit(query_f[lo:lo + chunk]) @ train_u.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        votes = np.zeros((len(sims), num_classes))
        np.add.at(votes, (np.arange(len(sims))[:, None], train_y[top]), np.take_along_axis(sims, top, 1))
        out[lo:lo + chunk] = votes.argmax(axis=1)
    return out


def knn_eval(encoder: keras.Model, splits: Splits, d: DictConfig, seed: int, tb_dir=None) -> dict[str, Any]:
    start = time.perf_counter()
    f_lab, f_test = features(encoder, splits.labeled_x), features(encoder, splits.test_x)
    pred = knn_predict(f_lab, splits.labeled_y, f_test, d.knn_k, splits.num_classes)
    val = None
    if len(splits.val_x):
        val_pred = knn_predict(f_lab, splits.labeled_y, features(encoder, splits.val_x), d.knn_k, splits.num_classes)
        val = float(np.mean(val_pred == splits.val_y))
    return {"test_accuracy": float(np.mean(pred == splits.test_y)), "test_loss": None, "predictions": pred,
            "val_accuracy": val,
            "seconds": round(time.perf_counter() - start, 2), "history": []}
