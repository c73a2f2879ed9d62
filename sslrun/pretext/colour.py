"""Colour conversions as TensorFlow ops on float batches in [0, 1] (sRGB, D65 white)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, what cv2.COLOR_RGB2GRAY (seed 003) and tf.image.rgb_to_grayscale use
# NumPy, not tf.constant: a TF op at import time fixes TensorFlow's devices before a strategy is chosen
# (SSLRUN_LOGICAL_CPUS, MultiWorkerMirroredStrategy: sslrun/training/distribute.py).
_RGB_TO_XYZ = np.array(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]], np.float32
)
_WHITE = np.array([0.950456, 1.0, 1.088754], np.float32)
AB_SCALE = 110.0  # |a|, |b| of sRGB colours stay under ~110: ab / 110 lies in [-1, 1]


def gray3(rgb: tf.Tensor) -> tf.Tensor:
    """The luminance of an RGB batch, repeated into three channels (what the encoder sees in colorization)."""
    y = tf.reduce_sum(rgb * tf.constant(LUMA, rgb.dtype), axis=-1, keepdims=True)
    return tf.repeat(y, 3, axis=-1)


def rgb_to_lab(rgb: tf.Tensor) -> tf.Tensor:
    """CIE L*a*b* of sRGB values in [0, 1]: L in [0, 100], a and b roughly in [-110, 110]."""
    rgb = tf.cast(rgb, tf.float32)
    linear = tf.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = tf.tensordot(linear, tf.transpose(_RGB_TO_XYZ), axes=1) / _WHITE
    eps = 216.0 / 24389.0
    f = tf.where(xyz > eps, tf.pow(tf.maximum(xyz, eps), 1.0 / 3.0), (24389.0 / 27.0 * xyz + 16.0) / 116.0)
    fx, fy, fz = tf.unstack(f, axis=-1)
    return tf.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


def lab_to_rgb(lab: tf.Tensor) -> tf.Tensor:
    """sRGB in [0, 1] of CIE L*a*b* values (the inverse of rgb_to_lab, clipped to the gamut)."""
    lab = tf.cast(lab, tf.float32)
    fy = (lab[..., 0] + 16.0) / 116.0
    f = tf.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
    xyz = tf.where(f > 6.0 / 29.0, f**3, (116.0 * f - 16.0) * 27.0 / 24389.0) * _WHITE
    linear = tf.tensordot(xyz, tf.transpose(tf.linalg.inv(_RGB_TO_XYZ)), axes=1)
    linear = tf.clip_by_value(linear, 0.0, 1.0)
    return tf.where(linear <= 0.0031308, 12.92 * linear, 1.055 * tf.pow(linear, 1.0 / 2.4) - 0.055)
