"""CSV files that say which image carries which class, by file where the data set knows its files (image
folders; else by row number):

    downstream/labeled_0.csv  the labeled draw of the first budget, repeat 0 (the one model/ was trained on):
                              path (or index: the row of the train split), class
    pseudo_labels.csv         downstream.write_pseudo_labels=true: model/'s class for every image of the pretext
                              pool: path (or index: the row of the pool), class, confidence, eval

The pseudo-labels come from the exported classifier as `sslrun-predict` runs it (model/model.keras, softmax
of its outputs), so they are that command's classes for the same files.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from pathlib import Path

import numpy as np

from sslrun.atomic import atomic_open
from sslrun.data.splits import Splits
from sslrun.data.stack import as_stack
from sslrun.downstream.model_dir import INFO, KERAS_FILE, MODEL_DIR

log = logging.getLogger("sslrun")

LABELED = Path("downstream") / "labeled_0.csv"
PSEUDO_LABELS = "pseudo_labels.csv"
POOL_BATCH = 1024  # pool images per forward pass: a streamed pool (ImageStack) is read this many at a time


def _names(splits: Splits) -> list[str]:
    return list(splits.class_names) or [str(k) for k in range(splits.num_classes)]


def write_labeled(run_dir: Path, splits: Splits) -> Path:
    """downstream/labeled_0.csv, one row per labeled image in the order of splits.labeled_x."""
    ids, column = (
        (splits.labeled_paths, "path") if splits.labeled_paths is not None else (splits.labeled_index, "index")
    )
    names, out = _names(splits), run_dir / LABELED
    with atomic_open(out, "w", perms=0o644) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow([column, "class"])
        writer.writerows([str(i), names[y]] for i, y in zip(ids, splits.labeled_y, strict=True))
    return out


def write_pseudo_labels(run_dir: Path, splits: Splits) -> Path:
    """pseudo_labels.csv: model/'s class and confidence for every pretext pool image, batch by batch."""
    import keras
    import tensorflow as tf

    info = json.loads((run_dir / MODEL_DIR / INFO).read_text())
    model = keras.models.load_model(run_dir / MODEL_DIR / KERAS_FILE)
    spec = tf.TensorSpec((None, *splits.image_shape), tf.uint8)
    infer = tf.function(lambda x: tf.nn.softmax(model(x, training=False)), input_signature=[spec])
    pool, ids, names = as_stack(splits.pretext_x), splits.pretext_paths, info["class_names"]
    out, start = run_dir / PSEUDO_LABELS, time.perf_counter()
    with atomic_open(out, "w", perms=0o644) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["path" if ids is not None else "index", "class", "confidence", "eval"])
        for lo in range(0, len(pool), POOL_BATCH):
            rows = np.arange(lo, min(lo + POOL_BATCH, len(pool)))
            probs = infer(pool.take(rows)).numpy()
            top = probs.argmax(axis=1)
            writer.writerows(
                [ids[r] if ids is not None else int(r), names[k], f"{p:.4f}", info["eval"]]
                for r, k, p in zip(rows, top, probs[np.arange(len(rows)), top], strict=True)
            )
    log.info(
        "pseudo-labels: %d pool images labeled by %s (model/) in %.1fs: %s",
        len(pool),
        info["eval"],
        time.perf_counter() - start,
        out,
    )
    return out
