"""tf.data input pipelines: uint8 until the batch, float32 only per batch."""

from __future__ import annotations

import logging

import numpy as np
import tensorflow as tf

from sslrun.data.stack import ImageStack, as_stack

log = logging.getLogger(__name__)

# Pools up to this size live in one uint8 tensor (the in-memory cache); larger ones,
# and memory-mapped ones, are read batch by batch from NumPy.
IN_MEMORY_BYTES = 2 * 1024**3


def image_batches(
    x: np.ndarray | ImageStack,
    y: np.ndarray | None = None,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    weights: np.ndarray | None = None,
) -> tf.data.Dataset:
    """Batches of float32 images in [0, 1] (and int labels, and per-image loss weights for Keras' fit),
    reshuffled every epoch with `seed`.

    Each batch gathers its rows by index: no per-image Python work and no
    float copy of the data set. The float conversion happens per batch.
    """
    stack = as_stack(x)
    ds = tf.data.Dataset.range(len(stack))
    if shuffle:
        ds = ds.shuffle(len(stack), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    gather_images = _tensor_gather(stack) if _fits_in_memory(stack) else _numpy_gather(stack)
    labels = None if y is None else tf.constant(np.asarray(y, dtype=np.int32))
    if weights is not None and (labels is None or len(weights) != len(stack)):
        raise ValueError(
            f"weights: one per labeled image ({len(stack)}), got {len(weights)}"
            + ("" if labels is not None else " without labels")
        )
    w = None if weights is None else tf.constant(np.asarray(weights, dtype=np.float32))

    def gather(idx: tf.Tensor):
        xb = unit_range(gather_images(idx))
        if labels is None:
            return xb
        return (xb, tf.gather(labels, idx)) if w is None else (xb, tf.gather(labels, idx), tf.gather(w, idx))

    return ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def unit_range(images: tf.Tensor) -> tf.Tensor:
    """uint8 images -> float32 in [0, 1]: what every model of a run sees (the encoder scales on by input_scale)."""
    return tf.cast(images, tf.float32) / 255.0


def mirror(images: tf.Tensor) -> tf.Tensor:
    """A batch (n, height, width, channels), each image mirrored left to right."""
    return tf.reverse(images, axis=[2])


def mirrored(batches: tf.data.Dataset) -> tf.data.Dataset:
    """The same image batches, each image mirrored left to right."""
    return batches.map(mirror)


def epoch_batches(
    x: np.ndarray | ImageStack,
    *,
    batch_size: int,
    seed: int,
    epochs: int,
    start_epoch: int = 0,
    steps_per_epoch: int | None = None,
) -> tf.data.Dataset:
    """Training batches for epochs start_epoch..epochs-1 in one stream, images only.

    Epoch e visits the images in a permutation drawn statelessly from (seed, e), so
    a run resumed at epoch e sees exactly the batches an uninterrupted run would.
    `steps_per_epoch` caps an epoch (cycling the permutation if it is longer than the data).
    """
    stack = as_stack(x)
    n = len(stack)
    per_epoch = (steps_per_epoch or -(-n // batch_size)) * batch_size

    def one_epoch(epoch: tf.Tensor) -> tf.data.Dataset:
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), epoch])
        )
        ds = tf.data.Dataset.from_tensor_slices(order)
        if steps_per_epoch:
            ds = ds.repeat().take(per_epoch)
        return ds.batch(batch_size)

    gather_images = _tensor_gather(stack) if _fits_in_memory(stack) else _numpy_gather(stack)
    ds = tf.data.Dataset.range(start_epoch, epochs).flat_map(one_epoch)
    images = ds.map(lambda idx: unit_range(gather_images(idx)), num_parallel_calls=tf.data.AUTOTUNE)
    return images.prefetch(tf.data.AUTOTUNE)


def _fits_in_memory(stack: ImageStack) -> bool:
    return not stack.on_disk and stack.nbytes <= IN_MEMORY_BYTES


def _tensor_gather(stack: ImageStack):
    images = tf.constant(stack.parts[0] if len(stack.parts) == 1 else np.concatenate(stack.parts))
    return lambda idx: tf.gather(images, idx)


def _numpy_gather(stack: ImageStack):
    log.info(
        "streaming %d images (%.2f GB uint8) from %s batch by batch",
        len(stack),
        stack.nbytes / 1e9,
        "disk" if stack.on_disk else "memory",
    )
    shape = stack.shape[1:]

    def gather(idx: tf.Tensor) -> tf.Tensor:
        out = tf.numpy_function(stack.take, [idx], tf.uint8, stateful=False)
        return tf.ensure_shape(out, (None, *shape))

    return gather
