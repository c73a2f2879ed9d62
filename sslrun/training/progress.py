"""Progress for keras fit: rich bars on a terminal, one log line per epoch always."""

from __future__ import annotations

import logging
import time

import keras
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from sslrun.training.sweep_progress import in_sweep, tick

log = logging.getLogger("sslrun")
BARS = True  # False in downstream worker processes: the parent process draws the bars


def _fmt(logs: dict | None) -> str:
    return " ".join(f"{k} {float(v):.4f}" for k, v in (logs or {}).items())


def progress_bars(show_bars: bool, metrics: bool = False) -> Progress | None:
    """Rich bars with elapsed time and ETA on stderr when it is a terminal; None otherwise (logs only)."""
    console = Console(stderr=True)
    if not (show_bars and BARS and console.is_terminal) or in_sweep():  # a sweep draws one bar for all its jobs
        return None
    extra = [TextColumn("{task.fields[metrics]}")] if metrics else []
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        *extra,
        console=console,
        transient=True,
    )


class RichProgress(keras.callbacks.Callback):
    """An epoch bar and a step bar; `label` names the stage (e.g. 'pretext', 'ssl frozen')."""

    def __init__(
        self, label: str, epochs: int, steps: int | None, show_bars: bool = True, sweep_stage: str | None = None
    ) -> None:
        super().__init__()
        self.label, self.epochs, self.steps, self.sweep_stage = label, epochs, steps, sweep_stage
        self.progress = progress_bars(show_bars, metrics=True)

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()
        if self.progress:
            self.progress.start()
            self.epoch_bar = self.progress.add_task(f"{self.label} epochs", total=self.epochs, metrics="")
            self.step_bar = self.progress.add_task("  steps", total=self.steps, metrics="")

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = time.perf_counter()
        if self.progress:
            self.progress.reset(self.step_bar, total=self.steps, metrics="")

    def on_train_batch_end(self, batch, logs=None):
        if self.progress:
            self.progress.update(self.step_bar, completed=batch + 1, metrics=_fmt(logs))

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.epoch_start
        log.info("%s epoch %d/%d: %s (%.1fs)", self.label, epoch + 1, self.epochs, _fmt(logs), seconds)
        if self.sweep_stage:
            tick(self.sweep_stage, epoch + 1, self.epochs)
        if self.progress:
            self.progress.update(self.epoch_bar, completed=epoch + 1, metrics=_fmt(logs))

    def on_train_end(self, logs=None):
        if self.progress:
            self.progress.stop()
