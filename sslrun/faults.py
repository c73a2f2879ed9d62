"""Test-only fault injection for the fault tests (tests/faults/); inert unless SSLRUN_FAULT is set.

SSLRUN_FAULT=crash-writing:NAME  the writer of file NAME (a checkpoint such as epoch-0002.npz, or
                                 encoder.weights.h5) cuts its temp file to half and SIGKILLs the
                                 process before the rename: a kill in the middle of a write.
SSLRUN_FAULT=disk-full:NAME      writing file NAME fails with ENOSPC, as on a full disk.
SSLRUN_FAULT=nan-at-step:N       the task's first weight tensor becomes NaN before pretext step N
                                 (counted from 1 over all epochs), so the loss at step N is NaN.
SSLRUN_FAULT=collapse-at-epoch:N every encoder weight becomes 0 at the end of pretext epoch N (from 1),
                                 before the health signals are measured: a collapsed embedding.
SSLRUN_FAULT=kill-fit:N          the downstream worker process that starts the study's N-th worker fit
                                 (counted from 1) SIGKILLs itself: a worker lost to the OOM killer.
"""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path

ENV = "SSLRUN_FAULT"


def _arg(kind: str) -> str | None:
    name, _, arg = os.environ.get(ENV, "").partition(":")
    return arg if name == kind else None


def before_rename(tmp: Path, final: Path) -> None:
    """Writers call this between writing `tmp` and renaming it onto `final`."""
    if _arg("disk-full") == final.name:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # like a failed write: no file name
    if _arg("crash-writing") == final.name:
        os.truncate(tmp, tmp.stat().st_size // 2)
        os.kill(os.getpid(), signal.SIGKILL)


def nan_at_step() -> int | None:
    step = _arg("nan-at-step")
    return int(step) if step else None


def collapse_at_epoch() -> int | None:
    epoch = _arg("collapse-at-epoch")
    return int(epoch) if epoch else None


def kill_fit(index: int) -> None:
    """Downstream workers call this as they start fit number `index` (from 1)."""
    if _arg("kill-fit") == str(index):
        os.kill(os.getpid(), signal.SIGKILL)
