"""A learnable synthetic data set, generated in memory for smoke runs and tests.

Ten classes of 28x28 shapes; each class has its own shape and its own
horizontal position, and every shape sits in the upper half of the frame, so
both the class and the rotation of an image can be learned from pixels.
"""

from __future__ import annotations

import numpy as np

from sslrun.data.base import RawData
from sslrun.errors import ConfigError

CLASS_NAMES = (
    "square",
    "frame",
    "disk",
    "ring",
    "plus",
    "x",
    "triangle",
    "ell",
    "bar",
    "tee",
)


def _masks(shape_id: np.ndarray, dy: np.ndarray, dx: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Boolean masks (n, h, w) of each image's shape, from offsets to its centre."""
    ady, adx = np.abs(dy), np.abs(dx)
    cheb, r2 = np.maximum(ady, adx), dy**2 + dx**2
    shapes = [
        cheb <= s,
        (cheb <= s) & (cheb >= s - 1.5),
        r2 <= s**2,
        (r2 <= s**2) & (r2 >= (s - 1.8) ** 2),
        ((ady <= 1) & (adx <= s)) | ((adx <= 1) & (ady <= s)),
        (np.abs(ady - adx) <= 1) & (cheb <= s),
        (dy >= -s) & (dy <= s) & (adx <= (dy + s) / 2),
        ((dx >= -s) & (dx <= -s + 2) & (ady <= s)) | ((dy >= s - 2) & (dy <= s) & (adx <= s)),
        (ady <= 1.5) & (adx <= s + 2),
        ((dy >= -s) & (dy <= -s + 2) & (adx <= s)) | ((adx <= 1) & (ady <= s)),
    ]
    out = np.zeros(dy.shape, dtype=bool)
    for k, mask in enumerate(shapes):
        out |= mask & (shape_id == k)
    return out


# One colour per class (RGB in 0..1), so colour carries signal that colorization can learn.
CLASS_COLOURS = np.array(
    [
        [1.0, 0.2, 0.2],
        [0.2, 1.0, 0.2],
        [0.2, 0.4, 1.0],
        [1.0, 1.0, 0.2],
        [1.0, 0.2, 1.0],
        [0.2, 1.0, 1.0],
        [1.0, 0.6, 0.2],
        [0.6, 0.2, 1.0],
        [0.6, 1.0, 0.6],
        [1.0, 1.0, 1.0],
    ]
)


def _images(
    labels: np.ndarray, rng: np.random.Generator, noise: float, size: int = 28, channels: int = 1
) -> np.ndarray:
    n = len(labels)
    col = lambda v: v[:, None, None]  # noqa: E731
    scale = size / 28
    cx = (6 + 1.75 * labels + rng.uniform(-1.5, 1.5, n)) * scale
    cy = (9 + rng.uniform(-2.5, 2.5, n)) * scale
    s = rng.uniform(3.5, 5.5, n) * scale
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    mask = _masks(col(labels), yy[None] - col(cy), xx[None] - col(cx), col(s))
    brightness = col(rng.uniform(0.6, 1.0, n))
    img = mask * brightness
    if channels == 3:
        img = img[..., None] * CLASS_COLOURS[labels][:, None, None, :]
    else:
        img = img[..., None]
    img = img + rng.normal(0.0, noise, img.shape)
    return (np.clip(img, 0.0, 1.0) * 255).round().astype(np.uint8)


def make_synthetic(
    train_size: int, test_size: int, noise: float, seed: int = 1234, size: int = 28, channels: int = 1
) -> RawData:
    """Balanced classes; the same arguments always give the same pixels. channels=3: each class has a colour."""
    if channels not in (1, 3):
        raise ConfigError(f"synthetic data: channels={channels}; use 1 or 3")
    rng = np.random.default_rng(seed)
    y_train = rng.permutation(np.arange(train_size) % len(CLASS_NAMES))
    y_test = rng.permutation(np.arange(test_size) % len(CLASS_NAMES))
    return RawData(
        _images(y_train, rng, noise, size, channels),
        y_train,
        _images(y_test, rng, noise, size, channels),
        y_test,
        source=f"synthetic shapes generated in memory (seed {seed})",
        class_names=CLASS_NAMES,
    )
