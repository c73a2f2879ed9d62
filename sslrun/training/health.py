"""Label-free health of a pretext run, every epoch: does the encoder's embedding still span many directions?

On a fixed sample of pool images (the same images every epoch and on resume, drawn with the run's seed; still
in the training stream, so the health signals change nothing that is trained), at the end of each epoch:
- `rankme`: the effective rank of the (N, d) embedding matrix (Garrido et al. 2023, "RankMe", eq. 1):
  exp of the entropy of its normalised singular values, from 1 (every image on one line) to min(N, d);
- `embedding_std`: the standard deviation over the images of the l2-normalised embedding, averaged over its d
  dimensions (Chen and He 2021, SimSiam section 4.1): 0 when every image maps to one point, about 1/sqrt(d)
  for embeddings spread over the sphere;
- two-view methods, on one fixed pair of views of those images (`PretextTask.health_views`):
  `alignment` = E ||f(x1) - f(x2)||^2 and `uniformity` = log E_{i != j} exp(-2 ||f(xi) - f(xj)||^2) of the
  l2-normalised embeddings f (Wang and Isola 2020, eqs. 4 and 5 with alpha = 2, t = 2): lower is better for
  both; a collapsed encoder has alignment 0 and uniformity 0.

They go into the epoch's logs, so into pretext/history.csv, TensorBoard and the report. A collapsed epoch
(rankme below RANK_FLOOR or embedding_std below STD_FLOOR / sqrt(d)) is a warning naming the epoch; with
`trainer.stop_on_collapse` the run stops (`StopOnCollapse`, exit 3) before that epoch's checkpoint.
"""

from __future__ import annotations

import csv
import logging
import math
import time
from pathlib import Path

import keras
import numpy as np

from sslrun import faults
from sslrun.data.stack import as_stack
from sslrun.errors import SslrunError
from sslrun.training.checkpoint import CHECKPOINTS
from sslrun.training.guards import DIVERGED_EXIT

log = logging.getLogger("sslrun")

SAMPLE = 512  # images: RankMe needs N >= d to see all of d dimensions (encoders here give 64-512 features)
# Collapse thresholds, far below a young run's values: a freshly initialised ReLU encoder's features share one mean
# direction (experiment=smoke after one rotation epoch: RankMe 1.61, std 0.018/sqrt(d)); a collapsed one is a point
# (an all-zero encoder: RankMe 1.00005, std 0). A warning that fires on healthy runs would be ignored.
RANK_FLOOR = 1.1  # effective rank: every image on (almost) one line
STD_FLOOR = 0.001  # x 1/sqrt(d), a spread embedding's std: 0 up to rounding
BATCH = 256  # images per encoder call: fewer eager calls than the training batch of a smoke run
EPS = 1e-7  # RankMe's epsilon (Garrido et al. 2023)


def rankme(z: np.ndarray) -> float:
    """Effective rank exp(-sum p_k log p_k), p_k = s_k / ||s||_1 + EPS, over the singular values s of z (N, d)."""
    s = np.linalg.svd(np.asarray(z, np.float64), compute_uv=False)
    p = s / max(s.sum(), np.finfo(np.float64).tiny) + EPS
    return float(np.exp(-np.sum(p * np.log(p))))


def _unit(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, np.float64)
    return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)


def embedding_std(z: np.ndarray) -> float:
    """Mean over dimensions of the std over images of the l2-normalised rows of z."""
    return float(_unit(z).std(axis=0).mean())


def alignment(z1: np.ndarray, z2: np.ndarray) -> float:
    """E ||f(x1) - f(x2)||^2 over positive pairs (rows of z1, z2), f the l2-normalised embedding."""
    return float(np.mean(np.sum((_unit(z1) - _unit(z2)) ** 2, axis=1)))


def uniformity(z: np.ndarray) -> float:
    """log E exp(-2 ||f(xi) - f(xj)||^2) over pairs i != j, computed stably (log-sum-exp)."""
    u = _unit(z)
    sq = np.maximum(2.0 - 2.0 * u @ u.T, 0.0)  # squared distances on the sphere
    upper = -2.0 * sq[np.triu_indices(len(u), k=1)]
    top = upper.max()
    return float(top + np.log(np.mean(np.exp(upper - top))))


def collapsed(rank: float, std: float, dim: int) -> bool:
    return rank < RANK_FLOOR or std < STD_FLOOR / math.sqrt(dim)


def collapsed_epochs(history: Path, dim: int) -> list[int]:
    """The epochs (from 1) of a history.csv whose health signals say collapsed."""
    if not history.is_file():
        return []
    with open(history, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [
        int(float(r["epoch"])) + 1
        for r in rows
        if r.get("rankme") not in (None, "") and collapsed(float(r["rankme"]), float(r["embedding_std"]), dim)
    ]


class Collapsed(SslrunError):
    """The encoder's embedding collapsed and trainer.stop_on_collapse is set."""

    exit_code = DIVERGED_EXIT


def health_sample(pool, seed: int, size: int = SAMPLE) -> np.ndarray:
    """The fixed images (float32 in [0, 1]) the health signals are measured on: a seeded draw from the pool."""
    n = len(pool)
    idx = np.sort(np.random.default_rng(seed + 7919).choice(n, size=min(size, n), replace=False))
    return as_stack(pool).take(idx).astype(np.float32) / 255.0


class HealthMonitor(keras.callbacks.Callback):
    """Add rankme, embedding_std (and alignment, uniformity) to each epoch's logs; warn on collapse."""

    def __init__(self, images: np.ndarray, batch_size: int = BATCH) -> None:
        super().__init__()
        self.images, self.batch_size = images, batch_size
        self.views = None
        self.collapsed_epoch: int | None = None
        self.seconds: list[float] = []  # the signals' own cost, per epoch

    def on_train_begin(self, logs=None):
        self.views = self.model.health_views(self.images)  # once: the same pair of views every epoch

    def _embed(self, x: np.ndarray) -> np.ndarray:
        encoder = self.model.encoder
        parts = [
            keras.ops.convert_to_numpy(encoder(x[i : i + self.batch_size], training=False))
            for i in range(0, len(x), self.batch_size)
        ]
        return np.concatenate(parts).astype(np.float32).reshape(len(x), -1)

    def on_epoch_end(self, epoch, logs=None):
        start = time.perf_counter()
        z = self._embed(self.images)
        health = {"rankme": rankme(z), "embedding_std": embedding_std(z)}
        if self.views is not None:
            z1, z2 = self._embed(self.views[0]), self._embed(self.views[1])
            health |= {"alignment": alignment(z1, z2), "uniformity": uniformity(np.concatenate([z1, z2]))}
        if logs is not None:
            logs.update(health)
        self.seconds.append(time.perf_counter() - start)
        dim = z.shape[1]
        if collapsed(health["rankme"], health["embedding_std"], dim):
            self.collapsed_epoch = epoch + 1
            log.warning(
                "pretext epoch %d: the embedding collapsed (RankMe %.2f of %d dimensions, std of the "
                "l2-normalised embedding %.2g, a spread one's is about %.2g); trainer.stop_on_collapse=true "
                "stops here",
                epoch + 1,
                health["rankme"],
                dim,
                health["embedding_std"],
                1 / math.sqrt(dim),
            )
        else:
            self.collapsed_epoch = None


class StopOnCollapse(keras.callbacks.Callback):
    """After the epoch's history row, before its checkpoint: raise Collapsed if the monitor saw a collapse."""

    def __init__(self, monitor: HealthMonitor, folder: Path) -> None:
        super().__init__()
        self.monitor, self.folder = monitor, folder

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor.collapsed_epoch is None:
            return
        kept = sorted((self.folder / CHECKPOINTS).glob("epoch-*.npz"))
        last = f"the checkpoint {kept[-1]} is kept" if kept else "no checkpoint was kept"
        raise Collapsed(
            f"pretext training collapsed at epoch {self.monitor.collapsed_epoch}: RankMe "
            f"{logs.get('rankme', float('nan')):.2f}, std of the l2-normalised embedding "
            f"{logs.get('embedding_std', float('nan')):.2g} (trainer.stop_on_collapse=true); {last}; no encoder "
            "was exported. Lower trainer.learning_rate, strengthen pretext.augment, or change the method's loss "
            "weights, and start again in a new run dir"
        )


class CollapseAtEpoch(keras.callbacks.Callback):
    """Test hook (SSLRUN_FAULT=collapse-at-epoch:N): zero every encoder weight at the end of epoch N (from 1),
    before the health signals are measured, so the embedding is one point."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            for var in self.model.encoder.weights:
                var.assign(keras.ops.zeros(var.shape, var.dtype))


def health_callbacks(
    images: np.ndarray, folder: Path, stop: bool
) -> tuple[HealthMonitor, list[keras.callbacks.Callback], list[keras.callbacks.Callback]]:
    """The monitor, the callbacks before the history row (fault hook, monitor) and after it (the stop)."""
    monitor = HealthMonitor(images)
    epoch = faults.collapse_at_epoch()
    before = ([CollapseAtEpoch(epoch)] if epoch else []) + [monitor]
    return monitor, before, [StopOnCollapse(monitor, folder)] if stop else []
