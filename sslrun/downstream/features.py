"""Frozen-encoder features, computed once per split."""

from __future__ import annotations

import keras
import numpy as np

from sslrun.data.pipeline import image_batches


def features(encoder: keras.Model, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Encoder outputs (n, d) float32 in inference mode (BatchNorm on its moving statistics)."""
    if len(x) == 0:
        return np.zeros((0, encoder.output_shape[-1]), np.float32)
    return encoder.predict(image_batches(x, batch_size=batch_size, shuffle=False), verbose=0).astype(np.float32)
