"""One progress bar for a whole compare sweep (methods x pretext epochs, budgets x draws x evaluations).

The jobs of a sweep may run in this process (Hydra's basic launcher), in joblib's worker processes or on Slurm
nodes, so they do not share a bar: each job writes where it stands to `<job dir>/progress.json` (atomically, at
each pretext epoch and each finished downstream row), and the sweep's own process reads those files every few
seconds and draws one bar with an ETA, or prints a plain line now and then when stderr is not a terminal. While
the sweep bar runs, the jobs draw no bars of their own (SWEEP_ENV, inherited by launcher processes).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from sslrun.atomic import atomic_write_text

SWEEP_ENV = "SSLRUN_SWEEP_PROGRESS"  # set by the sweep's process: jobs report to progress.json and draw no bars
PROGRESS_FILE = "progress.json"
POLL_SECONDS = 2.0
PLAIN_EVERY_SECONDS = 30.0  # not a terminal: a line at most this often (and one at the end)

_lock = threading.Lock()  # worker fits finish on the executor's thread, pretext epochs on the main one
_job: dict = {"file": None, "state": {}}


def in_sweep() -> bool:
    return bool(os.environ.get(SWEEP_ENV))


def report_to(run_dir: Path, method: str) -> None:
    """This job writes its progress to run_dir/progress.json when a sweep bar is reading it."""
    _job["file"] = run_dir / PROGRESS_FILE if in_sweep() else None
    _job["state"] = {"method": method}


def tick(stage: str, done: int, total: int) -> None:
    """`done` of `total` units of `stage` ("pretext": epochs, "downstream": rows) are finished."""
    if _job["file"] is None:
        return
    with _lock:
        _job["state"][stage] = [int(done), int(total)]
        atomic_write_text(_job["file"], json.dumps(_job["state"]))


@dataclass
class SweepState:
    done: int
    total: int
    doing: str  # the most recently active job's method and stage


def read_sweep(sweep: Path, jobs: int, per_job: tuple[int, int]) -> SweepState:
    """Units done and in all over the sweep's job dirs. per_job: (pretext epochs, downstream rows) a job has
    before it says otherwise (its own totals replace them: a resumed pretext, a cached one)."""
    done = total = reported = 0
    latest, doing = -1.0, "starting"
    for path in sweep.glob(f"*/{PROGRESS_FILE}"):
        try:
            state = json.loads(path.read_text())
            mtime = path.stat().st_mtime
        except (OSError, ValueError):
            continue  # unreadable: counted as a job that has not reported
        reported += 1
        for stage, estimate in zip(("pretext", "downstream"), per_job, strict=True):
            stage_done, stage_total = state.get(stage, [0, 0])
            done += stage_done
            total += stage_total or estimate
        if mtime > latest:
            latest, doing = mtime, _doing(state)
    total += max(0, jobs - reported) * sum(per_job)
    return SweepState(min(done, total), max(total, 1), doing)


def _doing(state: dict) -> str:
    pretext, downstream = state.get("pretext", [0, 0]), state.get("downstream")
    if downstream:
        return f"{state.get('method', '?')} downstream {downstream[0]}/{downstream[1]}"
    return f"{state.get('method', '?')} pretext epoch {pretext[0]}/{pretext[1]}"


class SweepBar:
    """The sweep process's reader of progress.json files: a rich bar on a terminal, plain lines otherwise."""

    def __init__(self, sweep: Path, jobs: int, per_job: tuple[int, int], bars: bool = True) -> None:
        self.sweep, self.jobs, self.per_job = sweep, jobs, per_job
        console = Console(stderr=True)
        self.progress = None
        if bars and console.is_terminal:
            self.progress = Progress(
                TextColumn("[bold]compare sweep"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.description}"),
                console=console,
                speed_estimate_period=900,
            )
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._poll, name="sslrun-sweep-progress", daemon=True)
        self.start = time.monotonic()
        self.first: int | None = None  # units done before this process started (a resumed sweep)
        self.said_at, self.said = 0.0, -1

    def __enter__(self) -> SweepBar:
        os.environ[SWEEP_ENV] = "1"
        if self.progress:
            self.progress.start()
            self.task = self.progress.add_task("", total=self.jobs * sum(self.per_job))
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.thread.join()
        self.update(final=True)
        if self.progress:
            self.progress.stop()
        os.environ.pop(SWEEP_ENV, None)

    def _poll(self) -> None:
        while not self.stopping.wait(POLL_SECONDS):
            self.update()

    def update(self, final: bool = False) -> None:
        state = read_sweep(self.sweep, self.jobs, self.per_job)
        if self.first is None:
            self.first = state.done
        if self.progress:
            self.progress.update(self.task, completed=state.done, total=state.total, description=state.doing)
            return
        now = time.monotonic()
        if final or (state.done != self.said and now - self.said_at >= PLAIN_EVERY_SECONDS):
            self.said_at, self.said = now, state.done
            print(plain_line(state, now - self.start, state.done - self.first), file=sys.stderr, flush=True)


def plain_line(state: SweepState, elapsed: float, done_here: int) -> str:
    """`compare sweep: 12 of 40 (pretext epochs and downstream rows), 3:05 elapsed, about 7 min left (...)`."""
    line = (
        f"compare sweep: {state.done} of {state.total} (pretext epochs and downstream rows), {_clock(elapsed)} elapsed"
    )
    left = state.total - state.done
    if left and done_here > 0:
        line += f", about {max(1, round(elapsed / done_here * left / 60))} min left"
    return f"{line} ({state.doing})"


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}" if minutes >= 60 else f"{minutes}:{secs:02d}"
