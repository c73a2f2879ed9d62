"""Pretext losses: pure functions of tensors."""

from __future__ import annotations

from keras import ops


def rotation_loss(labels, logits):
    """Mean cross-entropy of integer rotation labels (0..3) against logits (batch, 4)."""
    log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
    picked = ops.take_along_axis(log_probs, ops.expand_dims(ops.cast(labels, "int32"), -1), axis=-1)
    return -ops.mean(picked)
