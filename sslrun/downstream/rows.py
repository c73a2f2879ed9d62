"""A study's finished rows on disk, and its stop on a preemption signal.

Each (evaluation, budget, repeat) is written to `<run dir>/downstream/rows/<eval>_<budget>_<repeat>/` the moment
its fit finishes (to a temp folder, then renamed: a killed run leaves no half row), so the same command run
again in the same run dir skips the finished rows and runs the rest (a changed config is refused there by
the run dir's own check). SIGTERM and SIGUSR2 (Slurm's preemption warning) stop the running fits at their next
epoch boundary, keep what finished, and exit 75 like the pretext stage; worker processes are stopped at once.
The baseline cache stores its entries with the same two functions.

    result.json       the row's numbers (test and validation accuracy, test loss, seconds), its history rows
    predictions.npy   the test predictions (the study keeps them for its first draw: the prediction grid)
    classifier.keras  the inference model (the first draw's: the export)
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from pathlib import Path
from typing import Any

import keras
import numpy as np

from sslrun.atomic import atomic_dir
from sslrun.training.artifacts import atomic_write_json
from sslrun.training.checkpoint import Preempted

log = logging.getLogger("sslrun")

ROWS = Path("downstream") / "rows"
RESULT, PREDICTIONS, CLASSIFIER = "result.json", "predictions.npy", "classifier.keras"
KEPT = ("test_accuracy", "test_loss", "val_accuracy", "seconds", "history", "cached", "cache_key")


def trim(result: dict[str, Any], keeps: bool) -> dict[str, Any]:
    """Only the first draw's predictions and classifier are kept (the prediction grid, the export)."""
    if not keeps:
        result.pop("predictions", None)
        result.pop("classifier", None)
    return result


def row_dir(root: Path, name: str, budget_key: str, repeat: int) -> Path:
    return root / f"{name}_{budget_key}_{repeat}"


def is_stored(entry: Path) -> bool:
    return (entry / RESULT).is_file()


def store_result(entry: Path, result: dict[str, Any], extra: dict[str, Any] | None = None) -> None:
    """result's numbers, history, predictions and classifier (those it has) in entry/, atomically;
    extra: more JSON files, name -> content (the baseline cache's key)."""
    with atomic_dir(entry) as tmp:
        if result.get("predictions") is not None:
            np.save(tmp / PREDICTIONS, np.asarray(result["predictions"]))
        if result.get("classifier") is not None:
            result["classifier"].save(tmp / CLASSIFIER)
        for name, content in (extra or {}).items():
            atomic_write_json(tmp / name, content)
        atomic_write_json(tmp / RESULT, {k: result[k] for k in KEPT if k in result})


def load_result(entry: Path, with_classifier: bool) -> dict[str, Any]:
    result = json.loads((entry / RESULT).read_text())
    if (entry / PREDICTIONS).is_file():
        result["predictions"] = np.load(entry / PREDICTIONS)
    if with_classifier and (entry / CLASSIFIER).is_file():
        result["classifier"] = keras.models.load_model(entry / CLASSIFIER, compile=False)
    return result


class Preemption:
    """SIGTERM/SIGUSR2 while a study runs: remembered, so fits stop at their next epoch (StopAtEpoch) and the
    study raises Preempted once the finished rows are on disk; the handler installed before (e.g. submitit's,
    which requeues the Slurm job) gets the signal after that."""

    SIGNALS = (signal.SIGTERM, signal.SIGUSR2)

    def __init__(self) -> None:
        self.received: str | None = None
        self.on_signal_hooks: list = []  # called from the handler: the worker pool stops its processes
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Preemption:
        self.received = None
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def _handle(self, signum, frame) -> None:
        self.received = signal.Signals(signum).name
        log.warning(
            "%s received: the study stops at the running fits' next epoch; finished rows stay in %s",
            self.received,
            ROWS,
        )
        for hook in self.on_signal_hooks:
            hook()

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self.on_signal_hooks.clear()

    def check(self) -> None:
        """Raise Preempted (exit 75) if a signal came; hand it to the handler that was there before."""
        if not self.received:
            return
        handler = self._previous.get(signal.Signals[self.received])
        if callable(handler):
            handler(signal.Signals[self.received], None)
        raise Preempted(
            f"downstream stopped by {self.received}; the finished rows are in <run dir>/{ROWS}: "
            "rerun the same command to run the rest"
        )


PREEMPTION = Preemption()  # one per process: the study enters it, every fine-tuning fit reads it


class StopAtEpoch(keras.callbacks.Callback):
    """Ends the fit after the current epoch once PREEMPTION has a signal (the study then discards it)."""

    def on_epoch_end(self, epoch, logs=None):
        if PREEMPTION.received:
            self.model.stop_training = True
