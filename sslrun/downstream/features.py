"""Frozen-encoder features, computed once per split."""

from __future__ import annotations

import keras
import numpy as np

from sslrun.data.pipeline import image_batches, mirrored


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
