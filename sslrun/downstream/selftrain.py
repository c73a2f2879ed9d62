"""Self-training: a teacher labels the unlabeled pool; a student learns from labels and pseudo-labels.

Teacher (`selftrain_teacher`): `finetune` on the labeled images (frozen, then
unfrozen), which predicts every pool image; or `propagate`, the labels spread over the
pool's nearest-neighbour graph (Iscen et al. 2019 train the network on these, each
label weighted by its certainty and its class's rarity; so does the student here). Pool
images the teacher is at least `selftrain_threshold` sure of join the labeled images
with its class. Student: a fresh copy of the pretrained encoder and head,
trained with the same phases on that larger set (`selftrain_epochs` unfrozen epochs),
with the label augmentation (Xie et al. 2020, "Self-training with Noisy Student",
where the student's noise is what lets it beat its teacher). Only the student is
scored; the teacher's test accuracy is logged. Test images are never pseudo-labeled.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
from omegaconf import DictConfig

from sslrun.data.pipeline import image_batches
from sslrun.data.splits import Splits
from sslrun.data.stack import ImageStack, as_stack
from sslrun.downstream.finetune import inference_model, score, train_classifier
from sslrun.downstream.propagate import label_weights, propagate_eval, propagation

log = logging.getLogger("sslrun")


def pseudo_labels(model: keras.Model, x, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(rows of x the model is at least `threshold` sure of, its class for each of them)."""
    probs = keras.ops.convert_to_numpy(
        keras.ops.softmax(model.predict(image_batches(x, batch_size=512, shuffle=False), verbose=0), axis=-1)
    )
    keep = np.flatnonzero(probs.max(axis=1) >= threshold)
    return keep, probs.argmax(axis=1)[keep]


def with_pseudo_labels(splits: Splits, keep: np.ndarray, classes: np.ndarray) -> Splits:
    """splits whose labeled set is its labeled images plus the pool rows `keep` labeled `classes`."""
    pool = as_stack(splits.pretext_x)
    rows = pool if len(keep) == len(pool) else pool.take(keep)  # all rows: no copy of the pool
    parts = [splits.labeled_x, *(rows.parts if isinstance(rows, ImageStack) else [rows])]
    return dataclasses.replace(
        splits,
        labeled_x=ImageStack(parts),
        labeled_y=np.concatenate([splits.labeled_y, classes]).astype(splits.labeled_y.dtype),
    )


@dataclass
class Teaching:
    """What a teacher hands the student: pool rows, their classes, loss weights (labeled images first)."""

    test_accuracy: float
    keep: np.ndarray
    classes: np.ndarray
    history: list[dict]
    weights: np.ndarray | None = None  # None: every image weighs 1


def finetune_teacher(
    pretrained: Callable[[], keras.Model], splits: Splits, d: DictConfig, seed: int, tb_dir: Path | None
) -> Teaching:
    teacher, rows = train_classifier(
        pretrained(), splits, d, seed, "selftrain teacher", True, tb_dir / "teacher" if tb_dir else None
    )
    acc = score(teacher, splits, "selftrain teacher", time.perf_counter(), d.tta.value)["test_accuracy"]
    keep, classes = pseudo_labels(teacher, splits.pretext_x, d.selftrain_threshold)
    return Teaching(acc, keep, classes, [{**r, "phase": f"teacher {r['phase']}"} for r in rows])


def propagate_teacher(pretrained: Callable[[], keras.Model], splits: Splits, d: DictConfig, cache: dict) -> Teaching:
    """The labels propagated over the pool (the pool graph shared with the study's other draws); loss weights
    as Iscen et al.: each label's certainty times its class's inverse frequency (label_weights)."""
    encoder = pretrained()
    p = propagation(encoder, splits, d, cache)
    acc = propagate_eval(encoder, splits, d, cache, p)["test_accuracy"]
    n_pool = len(p.pool["unit"])
    keep = np.flatnonzero((p.labels[:n_pool] >= 0) & (p.pool_confidence() >= d.selftrain_threshold))
    weights = label_weights(p.scores, p.labels, np.arange(n_pool, len(p.labels)))
    return Teaching(acc, keep, p.labels[keep], [], np.concatenate([weights[n_pool:], weights[keep]]))


def selftrain(
    pretrained: Callable[[], keras.Model],
    splits: Splits,
    d: DictConfig,
    seed: int,
    tb_dir: Path | None = None,
    cache: dict | None = None,
) -> dict[str, Any]:
    start = time.perf_counter()
    teacher = d.selftrain_teacher.value
    if teacher == "propagate":
        t = propagate_teacher(pretrained, splits, d, {} if cache is None else cache)
    else:
        t = finetune_teacher(pretrained, splits, d, seed, tb_dir)
    log.info(
        "selftrain: teacher (%s) test accuracy %.4f; %d of %d pool images pseudo-labeled (confidence >= %g)",
        teacher,
        t.test_accuracy,
        len(t.keep),
        len(splits.pretext_x),
        d.selftrain_threshold,
    )
    student_splits = with_pseudo_labels(splits, t.keep, t.classes)
    epochs = d.unfrozen_epochs if d.selftrain_epochs is None else d.selftrain_epochs
    encoder = pretrained()
    student, student_rows = train_classifier(
        encoder,
        student_splits,
        d,
        seed + 1,
        "selftrain student",
        True,
        tb_dir / "student" if tb_dir else None,
        unfrozen_epochs=epochs,
        weights=t.weights,
    )
    result = score(student, splits, "selftrain student", start, d.tta.value)
    rows = t.history + [{**r, "phase": f"student {r['phase']}"} for r in student_rows]
    return {
        **result,
        "teacher_test_accuracy": t.test_accuracy,
        "pseudo_labeled": len(t.keep),
        "history": rows,
        "classifier": inference_model(student, encoder, d.tta.value),
    }
