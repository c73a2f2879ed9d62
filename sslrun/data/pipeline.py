"""tf.data input pipelines: uint8 in memory, float32 only per batch."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def image_batches(
    x: np.ndarray,
    y: np.ndarray | None = None,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
) -> tf.data.Dataset:
    """Batches of float32 images in [0, 1] (and int labels), reshuffled every epoch with `seed`.

    Images stay uint8 in one tensor; each batch gathers its rows by index, so
    there is no per-image Python work and no float copy of the data set.
    """
    images = tf.constant(x)
    labels = None if y is None else tf.constant(np.asarray(y, dtype=np.int32))
    ds = tf.data.Dataset.range(len(x))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)

    def gather(idx: tf.Tensor):
        xb = tf.cast(tf.gather(images, idx), tf.float32) / 255.0
        return xb if labels is None else (xb, tf.gather(labels, idx))

    return ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
