"""Linear probe: a linear classifier on frozen, standardised encoder features."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import keras
from omegaconf import DictConfig

from sslrun.data.splits import Splits
from sslrun.downstream.features import features
from sslrun.downstream.finetune import evaluate_logits


def linear_probe(
    encoder: keras.Model, splits: Splits, d: DictConfig, seed: int, tb_dir: Path | None = None
) -> dict[str, Any]:
    """Features once, then Dense(num_classes) on them; early stopping on validation loss when there is one."""
    start = time.perf_counter()
    f_lab, f_val, f_test = (
        features(encoder, x, flip=d.feature_flip) for x in (splits.labeled_x, splits.val_x, splits.test_x)
    )
    keras.utils.set_random_seed(seed)
    norm = keras.layers.Normalization()  # probes on raw features are at the mercy of their scale
    norm.adapt(f_lab)
    model = keras.Sequential(
        [keras.Input(f_lab.shape[1:]), norm, keras.layers.Dense(splits.num_classes, dtype="float32")]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(d.linear_lr),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    val = (f_val, splits.val_y) if len(f_val) else None
    callbacks = [keras.callbacks.EarlyStopping(patience=10, restore_best_weights=True)] if val else []
    if tb_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(str(tb_dir / "linear"), write_graph=False, profile_batch=0))
    history = model.fit(
        f_lab,
        splits.labeled_y,
        batch_size=d.batch_size,
        epochs=d.linear_epochs,
        validation_data=val,
        callbacks=callbacks,
        verbose=0,
    )
    result = evaluate_logits(model.predict(f_test, batch_size=1024, verbose=0), splits.test_y)
    if len(f_val):
        result["val_accuracy"] = evaluate_logits(model.predict(f_val, batch_size=1024, verbose=0), splits.val_y)[
            "test_accuracy"
        ]
    rows = [
        {"phase": "linear", "epoch": i + 1, **{k: float(v[i]) for k, v in history.history.items()}}
        for i in range(len(history.epoch))
    ]
    return {
        **result,
        "seconds": round(time.perf_counter() - start, 2),
        "history": rows,
        "classifier": probe_model(encoder, model, d.feature_flip),
    }


def probe_model(encoder: keras.Model, probe: keras.Model, flip: bool) -> keras.Model:
    """The probe on images, as one model of stock layers: [0, 1] images -> encoder (flip: features averaged
    with the mirror image's, as `features`) -> Normalization -> Dense logits."""
    inputs = keras.Input(shape=encoder.input_shape[1:])
    f = encoder(inputs)
    if flip:
        f = keras.layers.Average()([f, encoder(keras.ops.flip(inputs, axis=2))])
    return keras.Model(inputs, probe(f), name=f"{encoder.name}_linear_probe")
