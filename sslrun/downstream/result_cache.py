"""The baseline cache: `<cache_dir>/downstream/<key>/`, the scratch baseline's result keyed by everything that
determines it, so runs that differ only in their pretext stage (a `compare` sweep) train it once per label draw.

The key hashes the images and labels of the labeled, validation and test splits (so a different draw, data set
or limit is a different key), the downstream settings that reach the baseline (not the other evaluations' own:
knn_k, linear_*, propagate_*, selftrain_*, feature_flip, nor evals, repeats and label_budgets, which only choose
what runs), the encoder architecture, the training seed, the dtype policy and the sslrun and Keras versions.
Like the pretext cache, a miss trains under a file lock (a second process with the same key waits, then hits)
and the entry is written to a temp folder and renamed, so a killed run leaves no half entry.

    result.json       test and validation accuracy, test loss, seconds it took to train, its history rows
    predictions.npy   the test predictions (the prediction grid)
    classifier.keras  the inference model (the export, when the baseline wins on validation images)
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
from omegaconf import DictConfig, OmegaConf

import sslrun
from sslrun.data.splits import Splits
from sslrun.downstream.rows import is_stored, load_result, store_result
from sslrun.training.cache import locked

log = logging.getLogger("sslrun")

# downstream options that cannot change the scratch baseline's result
NOT_SCRATCH = (
    "evals",
    "repeats",
    "label_budgets",
    "linear_epochs",
    "linear_lr",
    "knn_k",
    "propagate_k",
    "propagate_alpha",
    "propagate_classifier",
    "feature_flip",
    "selftrain_teacher",
    "selftrain_threshold",
    "selftrain_epochs",
    "cache",
    "saved_model",
    "workers",
    "write_pseudo_labels",
)


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.shape, a.dtype.str)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def baseline_key_parts(splits: Splits, d: DictConfig, encoder: dict[str, Any], seed: int) -> dict[str, Any]:
    plain = OmegaConf.to_container(d, resolve=True, enum_to_str=True)
    return {
        "downstream": {k: v for k, v in plain.items() if k not in NOT_SCRATCH},
        "encoder": {k: encoder.get(k) for k in ("name", "width", "input_scale")},
        "seed": seed,
        "init": "seeded",  # the initial weights drawn from `seed` (entries from before that carry other weights)
        "data": {
            "labeled": _digest(splits.labeled_x, splits.labeled_y),
            "val": _digest(splits.val_x, splits.val_y),
            "test": _digest(splits.test_x, splits.test_y),
            "num_classes": splits.num_classes,
        },
        "dtype_policy": keras.config.dtype_policy().name,
        "sslrun_version": sslrun.__version__,
        "keras_version": keras.__version__,
    }


def cached_baseline(
    root: Path,
    parts: dict[str, Any],
    train: Callable[[], dict[str, Any]],
    lock_timeout: float | None = None,
    with_classifier: bool = True,
) -> dict[str, Any]:
    """The baseline's result from root/<key>/, or train() it (once, under the key's lock) and store it there.
    with_classifier=False: a hit does not load the classifier (only the study's first draw keeps one)."""
    key = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]
    entry = root / key
    if not is_stored(entry):
        with locked(root / f"{key}.lock", f"baseline cache key {key}", timeout=lock_timeout):
            if not is_stored(entry):  # another process may have stored it while we waited
                result = train()
                store_result(entry, result, {"key.json": parts})
                return {**result, "cached": False, "cache_key": key}
    result = load_result(entry, with_classifier)
    log.info(
        "scratch: reusing cache key %s (%s; trained in %.1fs); downstream.cache=false retrains",
        key,
        entry,
        result["seconds"],
    )
    return {**result, "cached": True, "cache_key": key}
