"""The pretext stage: train a task on unlabeled images, write encoder weights to disk."""

from __future__ import annotations

import csv
import logging
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from omegaconf import DictConfig, OmegaConf

import sslrun
from sslrun.data.fit import fit_to_data
from sslrun.data.pipeline import epoch_batches, image_batches
from sslrun.data.splits import Splits
from sslrun.encoders import build_encoder
from sslrun.pretext import PRETEXTS
from sslrun.pretext.base import PretextTask
from sslrun.training import budget
from sslrun.training.artifacts import atomic_save_weights, atomic_write_text, mark_complete
from sslrun.training.checkpoint import (
    PREEMPTED_EXIT,
    EpochCheckpoint,
    Preempted,
    build_optimizers,
    clean_temp_files,
    restore_latest,
)
from sslrun.training.distribute import prepare_for_replicas, pretext_strategy
from sslrun.training.guards import guard_callbacks
from sslrun.training.health import collapsed_epochs, health_callbacks, health_sample
from sslrun.training.optim import learning_rate, make_optimizer
from sslrun.training.progress import RichProgress

log = logging.getLogger("sslrun")

WEIGHTS = "encoder.weights.h5"


def task_params(pretext_cfg: DictConfig) -> dict[str, Any]:
    """The pretext node minus what is not a task parameter."""
    params = OmegaConf.to_container(pretext_cfg, resolve=True, enum_to_str=True)
    for key in ("name", "from", "cache"):
        params.pop(key, None)
    return params


def build_task(pretext_cfg: DictConfig, encoder: keras.Model, seed: int, num_classes: int) -> PretextTask:
    """The registered task from its config parameters (PretextTask.create); num_classes: the labeled data's."""
    return PRETEXTS.build(
        pretext_cfg.name, encoder=encoder, seed=seed, num_classes=num_classes, **task_params(pretext_cfg)
    )


def task_data(task: PretextTask, splits: Splits, trainer: DictConfig, seed: int, start_epoch: int, steps: int):
    """Training batches from start_epoch on (order fixed by seed and epoch) and validation batches.

    Tasks with an online probe also get labeled batches, zipped with the unlabeled ones.
    """
    train = epoch_batches(
        splits.pretext_x,
        batch_size=trainer.batch_size,
        seed=seed,
        epochs=trainer.epochs,
        start_epoch=start_epoch,
        steps_per_epoch=steps if trainer.steps_per_epoch else None,
    )
    has_val = len(splits.val_x) > 0  # presets that train on every label have no validation images
    if not task.uses_labels:
        return train, image_batches(splits.val_x, batch_size=trainer.batch_size, shuffle=False) if has_val else None
    size = min(trainer.batch_size, len(splits.labeled_x))
    labeled = image_batches(
        splits.labeled_x, splits.labeled_y, batch_size=size, shuffle=True, seed=seed + 1 + start_epoch
    ).repeat()
    val = image_batches(splits.val_x, splits.val_y, batch_size=trainer.batch_size, shuffle=False) if has_val else None
    return tf.data.Dataset.zip((train, labeled)), val


class LogLearningRate(keras.callbacks.Callback):
    """Put the optimizer's current learning rate (the schedule's value) into each epoch's logs."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


def write_examples(task: PretextTask, x_uint8, path: Path) -> None:
    """The task's own picture of what it learned (rotations, views, colours); never fails the run."""
    if len(x_uint8) == 0:
        return
    try:
        task.plot_examples(path, x_uint8.astype("float32") / 255.0)
    except Exception as err:  # a figure is not worth losing a trained encoder over
        log.warning("could not draw pretext examples to %s: %s", path, err)


def run_pretext(cfg: DictConfig, splits: Splits, out: Path, tb_dir: Path | None = None) -> dict[str, Any]:
    """Train cfg.pretext on splits.pretext_x; write out/encoder.weights.h5, history.csv, COMPLETE.

    Resumes from out/checkpoints when an earlier attempt was interrupted.
    """
    fit_to_data(cfg)  # encoder=auto named: idempotent, as in pipeline.run
    out.mkdir(parents=True, exist_ok=True)
    clean_temp_files(out)
    trainer = cfg.trainer
    strategy = pretext_strategy(trainer.strategy.value)
    steps = math.ceil(len(splits.pretext_x) / trainer.batch_size)
    if trainer.steps_per_epoch:
        steps = min(steps, trainer.steps_per_epoch)
    plan = budget.load(out) if trainer.budget_minutes else None  # a resumed stage keeps its epochs
    epochs, warmup = (plan.epochs, plan.warmup_epochs) if plan else (trainer.epochs, trainer.warmup_epochs)
    encoder, task, start_epoch = _build_task(cfg, splits, out, strategy, epochs * steps, warmup * steps)
    keep_history_rows(out / "history.csv", start_epoch)
    if trainer.budget_minutes and plan is None:
        plan = plan_budget(task, splits, cfg, steps, out, strategy)
        epochs = plan.epochs
    if plan and start_epoch and plan.seconds - plan.seconds_used < plan.seconds_per_epoch:
        epochs = start_epoch  # the budget was spent before the interruption: no further epoch fits

    train, val = task_data(task, splits, trainer, cfg.seed, start_epoch, steps)
    log.info(
        "pretext %s on %d unlabeled images, encoder %s (%d parameters), %d epochs x %d steps%s",
        cfg.pretext.name,
        len(splits.pretext_x),
        cfg.encoder.name,
        encoder.count_params(),
        epochs,
        steps,
        f", resuming after epoch {start_epoch}" if start_epoch else "",
    )
    checkpoints = EpochCheckpoint(out)
    health, measure, stop_collapsed = health_callbacks(
        health_sample(splits.pretext_x, cfg.seed), out, trainer.stop_on_collapse
    )
    stop = budget.BudgetStop(out, plan) if plan else None
    callbacks = _callbacks(cfg, out, tb_dir, start_epoch, epochs, steps, checkpoints, (measure, stop_collapsed), stop)
    start = time.perf_counter()
    history = (
        task.fit(
            train,
            epochs=epochs,
            initial_epoch=start_epoch,
            steps_per_epoch=steps,
            validation_data=val,
            callbacks=callbacks,
            verbose=0,
            shuffle=False,  # order: epoch_batches
        )
        if epochs > start_epoch
        else None
    )
    if checkpoints.stop_signal:
        checkpoints.forward_signal()  # under submitit: requeue the job (does not return)
        raise Preempted(
            f"pretext stopped by {checkpoints.stop_signal}; rerun the same command to resume from "
            f"{out / 'checkpoints'} (exit code {PREEMPTED_EXIT})"
        )
    seconds = time.perf_counter() - start
    if health.seconds:
        log.info("health signals: %.2f s per epoch (%d images)", float(np.mean(health.seconds)), len(health.images))
    write_examples(task, (splits.val_x if len(splits.val_x) else splits.labeled_x)[:16], out / "examples.png")
    task.finalize_encoder()  # e.g. colorization folds its first conv onto the luminance
    atomic_save_weights(encoder, out / WEIGHTS)
    trained = len(history.epoch) if history is not None else 0
    info = {
        "sslrun_version": sslrun.__version__,
        "task": cfg.pretext.name,
        "encoder": OmegaConf.to_container(cfg.encoder, resolve=True),
        "input_shape": list(splits.image_shape),
        "dataset": cfg.dataset.name,
        "epochs": start_epoch + trained,
        "resumed_after_epoch": start_epoch,
        **({"budget": {**asdict(plan), "stopped_at_budget": bool(stop and stop.stopped_early)}} if plan else {}),
        "seconds": round(seconds, 2),
        "images_per_second": round(trained * steps * trainer.batch_size / seconds, 1) if trained else None,
        **_health_info(health, encoder, out),
        **(last := last_history_row(out / "history.csv")),
    }
    atomic_write_text(out / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    mark_complete(out, info)  # last: the stage is done only when this exists
    log.info(
        "pretext done in %.1fs: %s; weights in %s", seconds, {k: round(v, 4) for k, v in last.items()}, out / WEIGHTS
    )
    return info


def _build_task(
    cfg: DictConfig, splits: Splits, out: Path, strategy, total_steps: int, warmup_steps: int
) -> tuple[keras.Model, PretextTask, int]:
    """The encoder and its compiled task under the strategy, restored from out's latest checkpoint (if any)."""
    with strategy.scope():  # variables, optimizer slots and the restored values live on every replica
        encoder = build_encoder(cfg.encoder.name, splits.image_shape, cfg.encoder.width, cfg.encoder.input_scale)
        task = build_task(cfg.pretext, encoder, cfg.seed, splits.num_classes)
        compile_task(task, cfg.trainer, total_steps, warmup_steps)
        task(np.zeros((1, *splits.image_shape), "float32"), training=False)  # build every head before any restore
        prepare_for_replicas(task, strategy)
        start_epoch = restore_latest(out, task)
    return encoder, task, start_epoch


def _callbacks(
    cfg: DictConfig,
    out: Path,
    tb_dir: Path | None,
    start_epoch: int,
    epochs: int,
    steps: int,
    checkpoints: EpochCheckpoint,
    health: tuple[list, list],
    stop: Any,
) -> list:
    """The pretext fit's callbacks, in the order their files must be written."""
    measure, stop_collapsed = health
    callbacks = [
        *guard_callbacks(out),  # first: a NaN batch stops before any callback saves its state
        # the epoch's history row before its checkpoint: an interrupt between the two then leaves a row
        # that the resume drops (keep_history_rows), never a checkpoint whose epoch has no row
        LogLearningRate(),  # a column of history.csv
        *measure,  # rankme, embedding_std (alignment, uniformity): columns of history.csv
        keras.callbacks.CSVLogger(str(out / "history.csv"), append=start_epoch > 0),
        *stop_collapsed,  # a collapsed epoch has its row, not its checkpoint
        checkpoints,
        RichProgress("pretext", epochs, steps, cfg.trainer.progress, sweep_stage="pretext"),
    ]
    if stop:
        callbacks.insert(-1, stop)
    if tb_dir is not None:  # <run dir>/tensorboard/pretext, next to the downstream phases
        callbacks.append(keras.callbacks.TensorBoard(str(tb_dir), write_graph=False, profile_batch=0))
    return callbacks


def _health_info(health: Any, encoder: keras.Model, out: Path) -> dict[str, Any]:
    """COMPLETE's health facts: the signals' cost, the embedding's size, the epochs that collapsed."""
    dim = int(np.prod(encoder.output_shape[1:]))
    return {
        "health_seconds_per_epoch": round(float(np.mean(health.seconds)), 3) if health.seconds else None,
        "embedding_dim": dim,
        "collapsed_epochs": collapsed_epochs(out / "history.csv", dim),
    }


def compile_task(task: PretextTask, trainer: DictConfig, total_steps: int, warmup_steps: int) -> None:
    lr = learning_rate(trainer.learning_rate, trainer.lr_schedule.value, total_steps, warmup_steps)
    task.compile(optimizer=make_optimizer(trainer.optimizer, lr, trainer.momentum), jit_compile=trainer.jit_compile)


def plan_budget(
    task: PretextTask, splits: Splits, cfg: DictConfig, steps: int, out: Path, strategy: tf.distribute.Strategy
) -> budget.Budget:
    """Time the task here, size its epochs to trainer.budget_minutes, and lay its schedule over them."""
    trainer, start = cfg.trainer, time.perf_counter()
    build_optimizers(task)
    train, val = task_data(task, splits, trainer, cfg.seed, 0, steps)
    epoch_s = budget.probe(task, train, val, steps)
    plan = budget.plan(
        trainer.budget_minutes, trainer.epochs, trainer.warmup_epochs, epoch_s, time.perf_counter() - start
    )
    with strategy.scope():  # the schedule over the epochs that fit; the probe's steps are undone
        compile_task(task, trainer, plan.epochs * steps, plan.warmup_epochs * steps)
        build_optimizers(task)
    budget.save(out, plan)
    log.info(
        "pretext budget %.1f min: ~%.1f s per epoch here, so %d epoch(s) (trainer.epochs=%d at most), %d of warm-up",
        plan.minutes,
        epoch_s,
        plan.epochs,
        trainer.epochs,
        plan.warmup_epochs,
    )
    return plan


def keep_history_rows(path: Path, epochs_done: int) -> None:
    """Drop history rows of epochs after the resume point (an epoch cut short may have been logged)."""
    if not path.is_file():
        return
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    kept = rows[:1] + [r for r in rows[1:] if r and int(float(r[0])) < epochs_done]
    if epochs_done == 0:
        kept = []
    atomic_write_text(path, "".join(",".join(r) + "\n" for r in kept))


def last_history_row(path: Path) -> dict[str, float]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {k: float(v) for k, v in rows[-1].items() if k != "epoch" and v not in ("", "NA", None)} if rows else {}
