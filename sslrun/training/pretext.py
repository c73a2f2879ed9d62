"""The pretext stage: train a task on unlabeled images, write encoder weights to disk."""

from __future__ import annotations

import inspect
import logging
import math
import time
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf
from omegaconf import DictConfig, OmegaConf

import sslrun
from sslrun.data.pipeline import image_batches
from sslrun.data.splits import Splits
from sslrun.encoders import build_encoder
from sslrun.pretext import PRETEXTS
from sslrun.training.artifacts import atomic_save_weights, atomic_write_text, mark_complete
from sslrun.training.optim import make_optimizer
from sslrun.training.progress import RichProgress

log = logging.getLogger("sslrun")

WEIGHTS = "encoder.weights.h5"


def task_params(pretext_cfg: DictConfig) -> dict[str, Any]:
    """The pretext node minus what is not a task parameter."""
    params = OmegaConf.to_container(pretext_cfg, resolve=True, enum_to_str=True)
    for key in ("name", "from", "cache"):
        params.pop(key, None)
    return params


def build_task(pretext_cfg: DictConfig, encoder: keras.Model, seed: int, num_classes: int) -> keras.Model:
    """The registered task, given its config parameters plus the context it asks for by name."""
    builder = PRETEXTS.get(pretext_cfg.name)
    context = {"encoder": encoder, "seed": seed, "num_classes": num_classes}
    wanted = inspect.signature(builder).parameters
    return builder(**{k: v for k, v in context.items() if k in wanted}, **task_params(pretext_cfg))


def task_data(task: keras.Model, splits: Splits, batch_size: int, seed: int):
    """Training and validation batches; tasks with an online probe also get labeled batches."""
    train = image_batches(splits.pretext_x, batch_size=batch_size, shuffle=True, seed=seed)
    if not getattr(task, "uses_labels", False):
        return train, image_batches(splits.val_x, batch_size=batch_size, shuffle=False)
    labeled = image_batches(splits.labeled_x, splits.labeled_y, batch_size=min(batch_size, len(splits.labeled_x)),
                            shuffle=True, seed=seed + 1).repeat()
    train = tf.data.Dataset.zip((train, labeled))
    return train, image_batches(splits.val_x, splits.val_y, batch_size=batch_size, shuffle=False)


def write_examples(task: keras.Model, x_uint8, path: Path) -> None:
    """The task's own picture of what it learned (rotations, views, colours); never fails the run."""
    if not hasattr(task, "examples") or len(x_uint8) == 0:
        return
    from sslrun.report import plots

    try:
        ex = task.examples(x_uint8.astype("float32") / 255.0)
        kind = ex.pop("kind")
        if kind == "rotation":
            plots.plot_rotation_examples(ex["images"], ex["true_k"], ex["pred_k"], path)
        elif kind == "views":
            plots.plot_view_pairs(ex["view1"], ex["view2"], path)
        elif kind == "colorization":
            plots.plot_colorization_examples(ex["gray"], ex["predicted"], ex["target"], path)
    except Exception as err:  # a figure is not worth losing a trained encoder over
        log.warning("could not draw pretext examples to %s: %s", path, err)


def run_pretext(cfg: DictConfig, splits: Splits, out: Path, tb_dir: Path | None = None) -> dict[str, Any]:
    """Train cfg.pretext on splits.pretext_x; write out/encoder.weights.h5, history.csv, COMPLETE."""
    out.mkdir(parents=True, exist_ok=True)
    trainer = cfg.trainer
    encoder = build_encoder(cfg.encoder.name, splits.image_shape, cfg.encoder.width)
    task = build_task(cfg.pretext, encoder, cfg.seed, splits.num_classes)
    task.compile(optimizer=make_optimizer(trainer.optimizer, trainer.learning_rate), jit_compile=trainer.jit_compile)

    train, val = task_data(task, splits, trainer.batch_size, cfg.seed)
    steps = math.ceil(len(splits.pretext_x) / trainer.batch_size)
    if trainer.steps_per_epoch:
        steps = min(steps, trainer.steps_per_epoch)
        train = train.repeat()
    log.info(
        "pretext %s on %d unlabeled images, encoder %s (%d parameters), %d epochs x %d steps",
        cfg.pretext.name, len(splits.pretext_x), cfg.encoder.name, encoder.count_params(), trainer.epochs, steps,
    )
    callbacks = [
        keras.callbacks.CSVLogger(str(out / "history.csv")),
        RichProgress("pretext", trainer.epochs, steps, trainer.progress),
    ]
    if tb_dir is not None:  # <run dir>/tensorboard/pretext, next to the downstream phases
        callbacks.append(keras.callbacks.TensorBoard(str(tb_dir), write_graph=False, profile_batch=0))
    start = time.perf_counter()
    history = task.fit(
        train, epochs=trainer.epochs, steps_per_epoch=steps if trainer.steps_per_epoch else None,
        validation_data=val, callbacks=callbacks, verbose=0, shuffle=False,  # tf.data shuffles
    )
    seconds = time.perf_counter() - start
    write_examples(task, splits.val_x[:16], out / "examples.png")
    if hasattr(task, "finalize_encoder"):  # e.g. colorization folds its first conv onto the luminance
        task.finalize_encoder()
    atomic_save_weights(encoder, out / WEIGHTS)
    last = {k: float(v[-1]) for k, v in history.history.items()}
    info = {
        "sslrun_version": sslrun.__version__,
        "task": cfg.pretext.name,
        "encoder": OmegaConf.to_container(cfg.encoder, resolve=True),
        "input_shape": list(splits.image_shape),
        "dataset": cfg.dataset.name,
        "epochs": trainer.epochs,
        "seconds": round(seconds, 2),
        "images_per_second": round(trainer.epochs * steps * trainer.batch_size / seconds, 1),
        **last,
    }
    atomic_write_text(out / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    mark_complete(out, info)  # last: the stage is done only when this exists
    log.info("pretext done in %.1fs: %s; weights in %s", seconds, {k: round(v, 4) for k, v in last.items()}, out / WEIGHTS)
    return info
