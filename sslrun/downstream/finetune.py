"""Frozen-then-unfrozen fine-tuning on the labeled subset, and the same from scratch."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
from omegaconf import DictConfig, OmegaConf

from sslrun.data.pipeline import image_batches, mirrored
from sslrun.data.splits import Splits
from sslrun.downstream.rows import StopAtEpoch
from sslrun.encoders.registry import NECK_PREFIX
from sslrun.errors import ConfigError
from sslrun.training.optim import learning_rate, make_optimizer
from sslrun.training.progress import RichProgress

log = logging.getLogger("sslrun")


def classifier(
    encoder: keras.Model,
    num_classes: int,
    dropout: float,
    augmenter: keras.Layer | None = None,
    head_init: str = "glorot_uniform",
) -> keras.Model:
    """encoder -> [dropout] -> Dense(num_classes) logits; the augmenter (if any) acts in training only."""
    inputs = keras.Input(shape=encoder.input_shape[1:])
    x = augmenter(inputs) if augmenter is not None else inputs
    x = encoder(x)
    if dropout:
        x = keras.layers.Dropout(dropout)(x)
    # logits in float32 under mixed precision
    outputs = keras.layers.Dense(num_classes, name="classifier", dtype="float32", kernel_initializer=head_init)(x)
    return keras.Model(inputs, outputs, name=f"{encoder.name}_classifier")


LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def freeze(encoder: keras.Model, mode: str) -> None:
    """Freeze the whole encoder, or only its backbone (everything but the dense neck).

    Frozen BatchNorm layers run in inference mode (Keras 3 semantics).
    """
    encoder.trainable = True
    for layer in encoder.layers:
        if mode == "encoder" or not layer.name.startswith(NECK_PREFIX):
            layer.trainable = False


def unfreeze(encoder: keras.Model) -> None:
    encoder.trainable = True
    for layer in encoder.layers:
        layer.trainable = True


def label_augmenter(d: DictConfig, image_shape: tuple[int, ...], seed: int) -> keras.Layer | None:
    """downstream.augment: none, or a preset of the view augmenter (identity at inference)."""
    from sslrun.pretext.twoview import build_augmenter

    augment = OmegaConf.to_container(d.augment, resolve=True)
    if augment.get("preset") == "none":
        return None
    return build_augmenter(tuple(image_shape), augment, seed, key="downstream.augment")


class UpdateCounter(keras.callbacks.Callback):
    """Each epoch's optimizer updates, read from the optimizer itself: the history then shows how many
    updates every part of the network got (the fair-protocol check reads it, not the config)."""

    def __init__(self):
        super().__init__()
        self.per_epoch: list[int] = []
        self._seen = 0

    def on_epoch_end(self, epoch, logs=None):
        total = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        self.per_epoch.append(total - self._seen)
        self._seen = total


def _fit_phase(
    model,
    splits: Splits,
    label: str,
    epochs: int,
    lr: float,
    d: DictConfig,
    seed: int,
    tb_dir: Path | None = None,
    weights: np.ndarray | None = None,
) -> list[dict]:
    if epochs <= 0:
        return []
    steps = -(-len(splits.labeled_x) // d.batch_size)
    schedule = getattr(d.lr_schedule, "value", d.lr_schedule)
    model.compile(
        optimizer=make_optimizer(d.optimizer, learning_rate(lr, schedule, epochs * steps), d.momentum),
        loss=LOSS,
        metrics=["accuracy"],
        steps_per_execution=d.steps_per_execution,
    )
    train = image_batches(
        splits.labeled_x, splits.labeled_y, batch_size=d.batch_size, shuffle=True, seed=seed, weights=weights
    )
    val = image_batches(splits.val_x, splits.val_y, batch_size=256, shuffle=False) if len(splits.val_x) else None
    updates = UpdateCounter()
    callbacks = [RichProgress(label, epochs, steps, show_bars=True), updates, StopAtEpoch()]
    monitor = getattr(d.patience_monitor, "value", d.patience_monitor)
    if d.patience and (val is not None or not monitor.startswith("val_")):
        # val_*: keep the best weights; a training metric (seed 001's `accuracy`) only stops, as Keras does
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor, patience=d.patience, restore_best_weights=monitor.startswith("val_")
            )
        )
    if tb_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(str(tb_dir), write_graph=False, profile_batch=0))
    history = model.fit(
        train,
        epochs=epochs,
        validation_data=val,
        verbose=0,
        shuffle=False,  # tf.data shuffles
        callbacks=callbacks,
    )
    keys = list(history.history)
    return [
        {"epoch": i + 1, **{k: float(history.history[k][i]) for k in keys}, "updates": updates.per_epoch[i]}
        for i in range(len(history.epoch))
    ]


def trainable_parameters(layer: keras.Layer) -> int:
    return int(sum(np.prod(w.shape) for w in layer.trainable_weights))


def phases(d: DictConfig, pretrained: bool) -> list[tuple[str, int, float, bool]]:
    """(phase, epochs, learning rate, encoder frozen) of a classifier's training.

    The pretrained arm: `frozen_epochs` of the head alone at `frozen_lr`, then `unfrozen_epochs` of everything at
    `unfrozen_lr`. The scratch baseline, with `scratch_phases=same`, runs exactly these phases, its random encoder
    frozen where the pretrained one is, so both arms give every layer the same number of updates at the same
    rates; with `all_layers` (the seed documents' baselines) it trains everything in both phases; with
    `scratch_epochs` set it has its own single phase (seed 004)."""
    phase2 = d.unfrozen_epochs
    if pretrained:
        return [("frozen", d.frozen_epochs, d.frozen_lr, True), ("unfrozen", phase2, d.unfrozen_lr, False)]
    if d.scratch_epochs is not None:
        return [("scratch", d.scratch_epochs, d.scratch_lr if d.scratch_lr is not None else d.frozen_lr, False)]
    same = getattr(d.scratch_phases, "value", d.scratch_phases) == "same"
    return [
        ("frozen" if same else "phase1", d.frozen_epochs, d.frozen_lr, same),
        ("unfrozen" if same else "phase2", phase2, d.unfrozen_lr, False),
    ]


def train_classifier(
    encoder: keras.Model,
    splits: Splits,
    d: DictConfig,
    seed: int,
    name: str,
    pretrained: bool,
    tb_dir: Path | None = None,
    unfrozen_epochs: int | None = None,
    weights: np.ndarray | None = None,
) -> tuple[keras.Model, list[dict]]:
    """encoder + a new head trained on splits.labeled_* through `phases(d, pretrained)` (`unfrozen_epochs`,
    if given, replaces the second phase's epochs). `weights`: per labeled image, its weight in the loss."""
    keras.utils.set_random_seed(seed)  # the same head init and batch order for finetune and scratch
    augmenter = label_augmenter(d, splits.image_shape, seed)
    model = classifier(
        encoder, splits.num_classes, d.head_dropout, augmenter, getattr(d.head_init, "value", d.head_init)
    )
    rows = []
    plan = phases(d, pretrained)
    if unfrozen_epochs is not None and len(plan) == 2:
        plan[1] = (plan[1][0], unfrozen_epochs, *plan[1][2:])
    for i, (phase, epochs, lr, frozen) in enumerate(plan):
        if frozen:
            freeze(encoder, getattr(d.freeze, "value", d.freeze))
        else:
            unfreeze(encoder)
        tb = tb_dir / phase if tb_dir is not None else None
        # which parameters this phase's updates reach: the history shows each layer group's update count
        trains = {
            "encoder_trainable_params": trainable_parameters(encoder),
            "head_trainable_params": trainable_parameters(model.get_layer("classifier")),
            "peak_lr": lr,
        }
        rows += [
            {"phase": phase, **r, **trains}
            for r in _fit_phase(model, splits, f"{name} {phase}", epochs, lr, d, seed + i, tb, weights)
        ]
    return model, rows


def finetune(
    encoder: keras.Model,
    splits: Splits,
    d: DictConfig,
    seed: int,
    name: str,
    pretrained: bool,
    tb_dir: Path | None = None,
) -> dict[str, Any]:
    """train_classifier, then its test (and validation) accuracy."""
    start = time.perf_counter()
    model, rows = train_classifier(encoder, splits, d, seed, name, pretrained, tb_dir)
    return {
        **score(model, splits, name, start, d.tta.value),
        "history": rows,
        "classifier": inference_model(model, encoder, d.tta.value),
    }


def inference_model(model: keras.Model, encoder: keras.Model, tta: str = "none") -> keras.Model:
    """What `score` measures, as one model of stock layers: [0, 1] images -> encoder -> head, without the
    label augmenter and dropout (identities at inference); tta=flip: the log of the softmax averaged over
    each image and its mirror, as predict_logits computes it (the export's accuracy includes the TTA)."""
    inputs = keras.Input(shape=encoder.input_shape[1:])
    head = model.get_layer("classifier")
    logits = head(encoder(inputs))
    if tta == "flip":
        mirrored_logits = head(encoder(keras.ops.flip(inputs, axis=2)))
        probs = keras.layers.Average()([keras.layers.Softmax()(logits), keras.layers.Softmax()(mirrored_logits)])
        logits = keras.ops.log(keras.ops.maximum(probs, 1e-30))
    return keras.Model(inputs, logits, name=f"{encoder.name}_inference")


def score(model: keras.Model, splits: Splits, name: str, start: float, tta: str = "none") -> dict[str, Any]:
    """Test accuracy, loss and predictions, validation accuracy, seconds since `start`; logged under `name`.
    tta=flip: each image's prediction averages its softmax with its mirror image's."""
    result = evaluate_logits(predict_logits(model, splits.test_x, tta), splits.test_y)
    result["val_accuracy"] = val_accuracy(model, splits, tta)
    result["seconds"] = round(time.perf_counter() - start, 2)
    log.info(
        "%s: test accuracy %.4f, loss %.4f (%.1fs)",
        name,
        result["test_accuracy"],
        result["test_loss"],
        result["seconds"],
    )
    return result


def predict_logits(model: keras.Model, x, tta: str = "none") -> np.ndarray:
    """The model's logits for x; tta=flip: the log of the softmax averaged over each image and its mirror."""
    batches = image_batches(x, batch_size=256, shuffle=False)
    logits = model.predict(batches, verbose=0).astype(np.float32)
    if tta == "none":
        return logits
    if tta != "flip":
        raise ConfigError(f"downstream.tta={tta!r}: use none or flip")
    flipped = model.predict(mirrored(batches), verbose=0).astype(np.float32)
    probs = (keras.ops.softmax(logits) + keras.ops.softmax(flipped)) / 2
    return np.log(np.maximum(keras.ops.convert_to_numpy(probs), 1e-30))


def val_accuracy(model: keras.Model, splits: Splits, tta: str = "none") -> float | None:
    """Accuracy on the validation images: what a sweeper may select on without peeking at the test set."""
    if not len(splits.val_x):
        return None
    return float(np.mean(np.argmax(predict_logits(model, splits.val_x, tta), axis=1) == splits.val_y))


def evaluate_logits(logits: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Test accuracy and mean cross-entropy from logits, and the predicted classes (for the prediction grid)."""
    loss = float(keras.ops.convert_to_numpy(LOSS(y, logits)))
    predictions = np.argmax(logits, axis=1)
    return {"test_accuracy": float(np.mean(predictions == y)), "test_loss": loss, "predictions": predictions}
