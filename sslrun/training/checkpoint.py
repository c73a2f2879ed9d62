"""Per-epoch checkpoints of a pretext stage, resume, and preemption signals.

Each finished epoch writes `checkpoints/epoch-NNNN.npz` (NNNN = epochs done):
every task variable (weights, BatchNorm statistics, random-generator states) and
every optimizer variable (moments, iteration count), to a temp name then
renamed, so a partial file never has a final name. The newest two are kept; a
checkpoint that does not load is skipped with a warning naming it, and the one
before is used. Data order is a function of (seed, epoch) (`epoch_batches`), so a
resumed run trains on the same batches as an uninterrupted one.

SIGTERM and SIGUSR2 (Slurm's preemption warning) stop training at the next batch
boundary; the last finished epoch's checkpoint is the resume point, and the
process exits with code 75 (EX_TEMPFAIL: "try again"), which requeue scripts can
test for.
"""

from __future__ import annotations

import logging
import os
import signal
import zipfile
from pathlib import Path

import keras
import numpy as np

from sslrun import faults
from sslrun.atomic import name_the_file
from sslrun.errors import SslrunError

log = logging.getLogger("sslrun")

CHECKPOINTS = "checkpoints"
KEEP = 2
PREEMPTED_EXIT = 75


class Preempted(SslrunError):
    """Training stopped on SIGTERM/SIGUSR2; rerunning the same command resumes."""

    exit_code = PREEMPTED_EXIT


def _optimizers(task: keras.Model) -> list:
    extra = [v for v in vars(task).values() if isinstance(v, keras.optimizers.Optimizer) and v is not task.optimizer]
    return [task.optimizer, *extra]


def build_optimizers(task: keras.Model) -> None:
    """Create the optimizer variables now, over what the train step updates (as its first `apply` would), so a
    checkpoint can be restored into them: a momentum network or a probe has no slots in the main optimizer."""
    if not task.optimizer.built:
        task.optimizer.build(task.ssl_variables())


def save_checkpoint(folder: Path, task: keras.Model, epochs_done: int) -> Path:
    ckpt_dir = folder / CHECKPOINTS
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    arrays = {f"v{i}": np.asarray(v.numpy()) for i, v in enumerate(task.variables)}
    for j, opt in enumerate(_optimizers(task)):
        arrays.update({f"o{j}_{i}": np.asarray(v.numpy()) for i, v in enumerate(opt.variables)})
    path = ckpt_dir / f"epoch-{epochs_done:04d}.npz"
    tmp = ckpt_dir / f".{os.getpid()}.tmp.{path.name}"
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, epochs_done=epochs_done, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        faults.before_rename(tmp, path)
        os.replace(tmp, path)
    except OSError as err:
        name_the_file(err, path)
        raise
    finally:
        tmp.unlink(missing_ok=True)
    for old in sorted(ckpt_dir.glob("epoch-*.npz"))[:-KEEP]:
        old.unlink()
    return path


def clean_temp_files(folder: Path) -> None:
    """Temp files of a killed writer: never used, removed on the next start."""
    for tmp in list((folder / CHECKPOINTS).glob(".*.tmp.*")) + list(folder.glob(".*.tmp.*")):
        log.info("removing %s, left by an interrupted write", tmp)
        tmp.unlink(missing_ok=True)


def restore_latest(folder: Path, task: keras.Model) -> int:
    """Restore the newest loadable checkpoint into task; return its epochs done (0: none)."""
    for path in sorted((folder / CHECKPOINTS).glob("epoch-*.npz"), reverse=True):
        try:
            with np.load(path) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            log.warning("checkpoint %s is unreadable (%s): falling back to the one before", path, err)
            continue
        _assign(task, arrays, path)
        epochs_done = int(arrays["epochs_done"])
        log.info("resuming pretext from %s: %d epochs done", path, epochs_done)
        return epochs_done
    return 0


def _assign(task: keras.Model, arrays: dict[str, np.ndarray], path: Path) -> None:
    build_optimizers(task)
    pairs = [(v, f"v{i}") for i, v in enumerate(task.variables)]
    for j, opt in enumerate(_optimizers(task)):
        pairs += [(v, f"o{j}_{i}") for i, v in enumerate(opt.variables)]
    for var, key in pairs:
        if key not in arrays or tuple(arrays[key].shape) != tuple(var.shape):
            raise SslrunError(
                f"checkpoint {path} does not fit this task ({key}: {var.path}); the config changed since it was "
                "written: delete that folder's checkpoints/ to start over, or restore the old config"
            )
        var.assign(arrays[key])


class EpochCheckpoint(keras.callbacks.Callback):
    """Checkpoint after every finished epoch; stop at a batch boundary on SIGTERM/SIGUSR2."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder, self.stop_signal = folder, None
        self._previous: dict[int, object] = {}

    def on_train_begin(self, logs=None):
        for sig in (signal.SIGTERM, signal.SIGUSR2):
            self._previous[sig] = signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, frame):
        self.stop_signal = signal.Signals(signum).name
        log.warning(
            "%s received: stopping at the next batch; the last finished epoch is the resume point", self.stop_signal
        )

    def on_train_batch_end(self, batch, logs=None):
        if self.stop_signal:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if not self.stop_signal:  # an epoch cut short by a signal is not finished
            save_checkpoint(self.folder, self.model, epoch + 1)

    def on_train_end(self, logs=None):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def forward_signal(self) -> None:
        """Hand the stop signal to the handler that was there before training (e.g. submitit's, which requeues
        the Slurm job and exits), now that the last finished epoch is safely on disk."""
        if not self.stop_signal:
            return
        sig = signal.Signals[self.stop_signal]
        handler = self._previous.get(sig)
        if callable(handler) and handler is not self._on_signal:
            log.info("handing %s to the handler installed before training (%r)", self.stop_signal, handler)
            handler(sig, None)
