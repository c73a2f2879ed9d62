"""Frozen-encoder features, computed once per split (the evaluations) or batch by batch (`sslrun-embed`)."""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from sslrun.data.pipeline import image_batches, mirror, mirrored, unit_range


def features(encoder: keras.Model, x: np.ndarray, batch_size: int = 512, flip: bool = False) -> np.ndarray:
    """Encoder outputs (n, d) float32 in inference mode (BatchNorm on its moving statistics).
    flip: each image's features averaged with its mirror image's (downstream.feature_flip)."""
    if len(x) == 0:
        return np.zeros((0, encoder.output_shape[-1]), np.float32)
    batches = image_batches(x, batch_size=batch_size, shuffle=False)
    f = encoder.predict(batches, verbose=0).astype(np.float32)
    if flip:
        f = (f + encoder.predict(mirrored(batches), verbose=0).astype(np.float32)) / 2
    return f


def batch_features(encoder: keras.Model, flip: bool = False) -> Callable[[tf.Tensor], np.ndarray]:
    """`features` for one batch of uint8 images at a time: the same scaling (image_batches' unit_range),
    inference mode, float32 outputs and mirror average, for images that arrive in batches (decoded files)."""

    @tf.function(input_signature=[tf.TensorSpec((None, *encoder.input_shape[1:]), tf.uint8)])
    def outputs(images: tf.Tensor) -> list[tf.Tensor]:
        x = unit_range(images)
        views = [x, mirror(x)] if flip else [x]
        return [tf.cast(encoder(v, training=False), tf.float32) for v in views]

    def run(images: tf.Tensor) -> np.ndarray:
        f = [o.numpy() for o in outputs(images)]
        return (f[0] + f[1]) / 2 if flip else f[0]

    return run
