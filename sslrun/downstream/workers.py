"""A study's fine-tuning fits in worker processes, side by side.

On a CPU one fit of a small network gains little from a second TensorFlow thread (the step is too small to split
well), so a study on CPUs runs its fine-tuning fits (WORKER_EVALS: finetune, scratch) in `downstream.workers`
processes with cores / workers threads each. Each worker is spawned (no TensorFlow state is forked), imports
TensorFlow once, and is replaced after RECYCLE_AFTER fits, which also hands back the memory Keras keeps per fitted
model. A worker stores its fit's row itself (sslrun.downstream.rows) and returns it as plain data, a classifier the
study keeps as the .keras file in that row. The evaluations on frozen features run in the parent process, where
they share one feature cache per study.

Numerics: oneDNN's reductions depend on the thread count, so a fit's last digits depend on `workers` (as on
the CPU kind); with trainer.deterministic=true the same config on the same machine gives the same results.
"""

from __future__ import annotations

import logging
import logging.handlers
import multiprocessing
import os
import signal
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from sslrun.data.splits import Splits
from sslrun.errors import SslrunError

log = logging.getLogger("sslrun")

RECYCLE_AFTER = 8  # fits per worker process before a fresh one replaces it (bounds the memory it holds)
MAX_AUTO_WORKERS = 4  # auto: at most this many, each with cores / workers threads (small fits scale no further)
_STATE: dict[str, Any] = {}  # inside a worker: the study's config and encoders, set once by _init


@dataclass(frozen=True)
class Encoders:
    """The pretrained encoder (from its pretext dir) and the same architecture from scratch; picklable."""

    pretext_dir: Path
    image_shape: tuple[int, int, int]
    info: dict[str, Any]  # the pretext stage's encoder: name, width, input_scale

    def pretrained(self):
        from sslrun.downstream.pretrained import load_pretrained_encoder

        return load_pretrained_encoder(self.pretext_dir, self.image_shape)[0]

    def scratch(self):
        from sslrun.encoders import build_encoder

        enc = self.info
        return build_encoder(enc["name"], self.image_shape, enc.get("width", 1.0), enc.get("input_scale", 1.0))


def cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def plan_workers(requested: int | None, fits: int, single_device: bool) -> int:
    """How many worker processes a study's `fits` fine-tuning fits get; 0: they run in this process.

    requested (downstream.workers) 1 or fewer runs them here; null: one per core up to MAX_AUTO_WORKERS when
    there are at least two fits and training runs on one CPU device (a GPU or a tf.distribute strategy has
    its own parallelism and its own memory to share)."""
    if requested is not None:
        return min(requested, fits) if requested > 1 and fits > 1 else 0
    if not single_device or fits < 2:
        return 0
    n = min(cores(), MAX_AUTO_WORKERS, fits)
    return n if n > 1 else 0


class _Relay(logging.Handler):
    """Hands a worker's log record to the parent's logger of the same name (and so to its handlers)."""

    def handle(self, record: logging.LogRecord) -> bool:
        logging.getLogger(record.name).handle(record)
        return True


class FitPool:
    """`workers` spawned processes that run evaluations by name; use as a context manager."""

    def __init__(self, workers: int, cfg: DictConfig, encoders: Encoders, policy: str) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.count = 0
        self.queue = ctx.Queue()
        self.listener = logging.handlers.QueueListener(self.queue, _Relay())
        threads = max(1, cores() // workers)
        level = logging.getLogger("sslrun").getEffectiveLevel()
        self.executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=ctx,
            initializer=_init,
            max_tasks_per_child=RECYCLE_AFTER,
            initargs=(cfg, encoders, policy, threads, self.queue, level),
        )
        log.info(
            "downstream: fine-tuning fits in %d worker processes, %d thread%s each (downstream.workers=1: "
            "in this process)",
            workers,
            threads,
            "s" if threads > 1 else "",
        )

    def __enter__(self) -> FitPool:
        self.listener.start()
        return self

    def __exit__(self, kind, value, tb) -> None:
        if kind is not None:  # an error or Ctrl-C: the running fits are not waited for
            self.stop()
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.listener.stop()
        self.queue.close()

    def submit(
        self, name: str, splits: Splits, seed: int, tb_dir: Path | None, keeps_classifier: bool, entry: Path
    ) -> Future:
        """Run evaluation `name` on splits in a worker, which stores the row in `entry` (sslrun.downstream.rows);
        the future's result is what the evaluation returns."""
        self.count += 1
        light = replace(
            splits,
            pretext_x=np.empty((0, *splits.image_shape), np.uint8),  # fine-tuning reads no pool
            pretext_paths=None,
        )
        return self.executor.submit(_fit, self.count, name, light, seed, tb_dir, keeps_classifier, entry)

    def stop(self) -> None:
        """Kill the worker processes now (a preemption signal: their unfinished fits are not rows)."""
        for process in list((getattr(self.executor, "_processes", None) or {}).values()):
            process.kill()

    @staticmethod
    def result(future: Future) -> dict[str, Any]:
        """The evaluation's result; its classifier read back from the worker's file."""
        try:
            result = future.result()
        except BrokenProcessPool as err:
            raise SslrunError(
                "a downstream worker process died (killed, or out of memory?); rerun with "
                "downstream.workers=1 to fit in this process, or free memory"
            ) from err
        path = result.pop("classifier_file", None)
        if path is not None:
            import keras

            result["classifier"] = keras.models.load_model(path, compile=False)
        return result


def _init(cfg: DictConfig, encoders: Encoders, policy: str, threads: int, queue, level: int) -> None:
    """A worker's start: its thread count before TensorFlow loads, the parent's dtype policy and determinism,
    its log records sent to the parent, no progress bars (the parent draws one), Ctrl-C and preemption signals
    left to the parent (which kills the workers)."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2):  # the parent stops the workers
        signal.signal(sig, signal.SIG_IGN)
    for var in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
        os.environ[var] = str(threads)
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(queue)]
    root.setLevel(level)
    logging.getLogger("sslrun").setLevel(level)
    from sslrun.tfboot import import_tensorflow

    import_tensorflow()
    import keras
    import tensorflow as tf

    from sslrun.training import progress

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    keras.mixed_precision.set_global_policy(policy)
    if cfg.trainer.deterministic:
        tf.config.experimental.enable_op_determinism()
    progress.BARS = False
    _STATE.update(cfg=cfg, encoders=encoders)


def _fit(
    index: int, name: str, splits: Splits, seed: int, tb_dir: Path | None, keeps_classifier: bool, entry: Path
) -> dict[str, Any]:
    from sslrun import faults
    from sslrun.downstream.evals import EVALS, EvalInputs
    from sslrun.downstream.rows import CLASSIFIER, store_result, trim

    faults.kill_fit(index)

    inputs = EvalInputs.build(_STATE["cfg"], _STATE["encoders"], splits, seed, tb_dir, keeps_classifier)
    result = EVALS.get(name)(inputs)
    store_result(entry, trim(result, keeps_classifier))
    if result.pop("classifier", None) is not None:
        result["classifier_file"] = str(entry / CLASSIFIER)
    return result
