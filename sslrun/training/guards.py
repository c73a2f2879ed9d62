"""Stop a diverged pretext run at the step its loss stops being finite, keeping the last good checkpoint.

Keras' TerminateOnNaN without raise_error ends `fit` as if training had finished
(keras-team/keras#21771), so the caller would go on to export NaN weights. StopOnNaN
raises `Diverged` from the batch where the loss is NaN or infinite instead: `fit` never
reaches that epoch's end, so no checkpoint, encoder or COMPLETE marker holds NaN weights,
and the checkpoints of the finished epochs stay where they are.
"""

from __future__ import annotations

import math
from pathlib import Path

import keras

from sslrun import faults
from sslrun.errors import SslrunError
from sslrun.training.checkpoint import CHECKPOINTS

DIVERGED_EXIT = 3


class Diverged(SslrunError):
    """The pretext loss became NaN or infinite."""

    exit_code = DIVERGED_EXIT


class StopOnNaN(keras.callbacks.Callback):
    """Raise Diverged, naming epoch and step, at the first batch whose loss is not finite."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder, self.epoch = folder, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        kept = sorted((self.folder / CHECKPOINTS).glob("epoch-*.npz"))
        last = f"the last good checkpoint {kept[-1]} is kept" if kept else "no epoch finished, so no checkpoint"
        raise Diverged(
            f"pretext training diverged: the loss is {float(loss)} at epoch {self.epoch + 1}, step {batch + 1} "
            f"of {self.params.get('steps')}; {last}; no encoder was exported. Lower trainer.learning_rate (or "
            "check the data for NaN) and start again in a new run dir"
        )


class PoisonAtStep(keras.callbacks.Callback):
    """Test hook (SSLRUN_FAULT=nan-at-step:N): make the first weight tensor NaN before global step N."""

    def __init__(self, step: int) -> None:
        super().__init__()
        self.step, self.epoch = step, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if self.epoch * self.params["steps"] + batch + 1 == self.step:
            var = self.model.trainable_variables[0]
            var.assign(keras.ops.full(var.shape, float("nan"), var.dtype))


def guard_callbacks(folder: Path) -> list[keras.callbacks.Callback]:
    """StopOnNaN, preceded by the NaN test hook when SSLRUN_FAULT asks for it."""
    step = faults.nan_at_step()
    return ([PoisonAtStep(step)] if step else []) + [StopOnNaN(folder)]
