"""`trainer.budget_minutes`: a pretext stage sized to a wall-clock budget instead of an epoch count.

Before training, a probe times a few training steps and one validation pass of the real task on
this machine; the stage then gets as many epochs as fit in what is left of the budget
(`trainer.epochs` is the most it may get), and its learning-rate schedule (warm-up and cosine) is
laid over those epochs. The decision is written to `budget.json` in the stage's folder, so a resumed
stage keeps its epochs and its schedule, and counts the seconds already spent: an epoch that would
end past the budget is not started, and the stage ends there with its weights, as after its last.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np

from sslrun.atomic import atomic_write_text

log = logging.getLogger("sslrun")

BUDGET_FILE = "budget.json"
PROBE_STEPS = 10  # timed after two untimed steps (tracing, warm-up); their median is the step time


@dataclass
class Budget:
    minutes: float
    epochs: int  # what the stage trains (at most trainer.epochs)
    warmup_epochs: int
    seconds_per_epoch: float  # the probe's estimate: steps x step time + one validation pass
    seconds_used: float = 0.0  # training and probe time so far, over every attempt

    @property
    def seconds(self) -> float:
        return self.minutes * 60.0


def epochs_that_fit(budget_s: float, used_s: float, epoch_s: float, most: int) -> int:
    """Whole epochs of epoch_s seconds in what is left of the budget; at least 1, at most `most`."""
    return max(1, min(most, math.floor((budget_s - used_s) / max(epoch_s, 1e-9))))


def load(folder: Path) -> Budget | None:
    path = folder / BUDGET_FILE
    return Budget(**json.loads(path.read_text())) if path.is_file() else None


def save(folder: Path, budget: Budget) -> None:
    atomic_write_text(folder / BUDGET_FILE, json.dumps(asdict(budget), indent=1) + "\n")


def probe(task: keras.Model, train, val, steps: int) -> float:
    """Seconds per epoch of `steps` training steps plus one validation pass, timed on the task, whose
    weights and optimizer state are put back as they were before the probe."""
    weights = [np.array(v) for v in task.weights]
    slots = [np.array(v) for v in task.optimizer.variables]
    ends: list[float] = []
    clock = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: ends.append(time.perf_counter()))
    # repeated: a stream of fewer batches than the probe (a capped or tiny epoch) still times PROBE_STEPS
    task.fit(
        train.repeat().take(PROBE_STEPS + 2), epochs=1, steps_per_epoch=PROBE_STEPS + 2, verbose=0, callbacks=[clock]
    )
    per_step = float(np.median(np.diff(ends[1:])))
    val_s = 0.0
    if val is not None:
        batches = int(val.cardinality())
        task.evaluate(val.take(1), verbose=0)  # traces the test step
        timed = min(batches, 4)
        start = time.perf_counter()
        task.evaluate(val.take(timed), verbose=0)
        val_s = (time.perf_counter() - start) / timed * batches
    for var, value in zip(task.weights, weights, strict=True):
        var.assign(value)
    for var, value in zip(task.optimizer.variables, slots, strict=True):
        var.assign(value)
    return steps * per_step + val_s


def plan(minutes: float, most_epochs: int, warmup_epochs: int, epoch_s: float, used_s: float) -> Budget:
    epochs = epochs_that_fit(minutes * 60.0, used_s, epoch_s, most_epochs)
    # the warm-up keeps its share of the epochs the document asked for, and leaves at least one after it
    warmup = min(round(warmup_epochs * epochs / most_epochs), epochs - 1) if warmup_epochs else 0
    return Budget(minutes, epochs, warmup, round(epoch_s, 3), round(used_s, 3))


class BudgetStop(keras.callbacks.Callback):
    """Adds each epoch's seconds to budget.json and stops before an epoch that would end past the budget."""

    def __init__(self, folder: Path, budget: Budget) -> None:
        super().__init__()
        self.folder, self.budget, self.stopped_early = folder, budget, False

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        spent = time.perf_counter() - self._start
        self.budget.seconds_used = round(self.budget.seconds_used + spent, 3)
        save(self.folder, self.budget)
        left = self.budget.seconds - self.budget.seconds_used
        if epoch + 1 < self.budget.epochs and left < spent:
            log.info(
                "pretext budget: %.0f s of %.0f used after epoch %d; the next epoch (~%.0f s) would end past "
                "it, so the stage ends here",
                self.budget.seconds_used,
                self.budget.seconds,
                epoch + 1,
                spent,
            )
            self.stopped_early = True
            self.model.stop_training = True
