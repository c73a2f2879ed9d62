"""The run's classifier as a self-contained model in `<run dir>/model/`, for `sslrun-predict` and serving.

    model/model.keras    uint8 images (batch, H, W, C) of the training size -> logits; stock Keras layers only,
                         so `keras.models.load_model` needs no sslrun; it scales the pixels itself (Rescaling)
    model/saved_model/   the same as a TensorFlow SavedModel (`model.export`), for TF Serving
    model/info.json      which evaluation and why, class names, input size and channels, test accuracy

Which classifier: among the evaluations that train one (finetune, scratch, selftrain's student, the linear
probe's head on the frozen encoder), at the first label budget's first repeat (the draw metrics.json
headlines and figures/predictions.png shows), the one with the highest accuracy on the validation images;
a tie goes to the one downstream.evals lists first. Not across budgets or repeats: a larger budget wins by
having more labels, and each repeat draws its own validation images, so those accuracies do not compare;
and only that draw's classifiers are kept in memory. Without validation images, the headline evaluation
(metrics.json's ssl_eval: the first pretrained one in downstream.evals) is exported, else the first one
that trained a classifier; the choice is never made on the test split.

downstream.tta=flip (finetune, scratch, selftrain) and downstream.feature_flip (linear) are part of the
exported model, so its accuracy is the one the run reports.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import keras
import numpy as np
from omegaconf import DictConfig

from sslrun.atomic import atomic_dir
from sslrun.data.splits import Splits
from sslrun.downstream.evals import headline
from sslrun.downstream.model_dir import INFO, KERAS_FILE, MODEL_DIR, SAVED_MODEL
from sslrun.training.artifacts import atomic_write_json

log = logging.getLogger("sslrun")


def choose(first: dict[str, dict[str, Any]], evals: list[str], has_val: bool) -> tuple[str, str]:
    """(evaluation to export, why) among `first`'s results that carry a classifier."""
    names = [e for e in evals if "classifier" in first.get(e, {})]
    if has_val:
        best = max(names, key=lambda e: (first[e]["val_accuracy"], -names.index(e)))
        others = ", ".join(f"{e} {first[e]['val_accuracy']:.4f}" for e in names if e != best)
        return best, (
            f"highest validation accuracy ({first[best]['val_accuracy']:.4f}"
            + (f"; {others}" if others else "")
            + "), first budget, repeat 0"
        )
    lead = headline(names)
    name = lead if lead is not None else names[0]
    what = "the headline evaluation (first pretrained one in downstream.evals)" if lead else "the first evaluation"
    return name, (
        f"no validation images (downstream.val_per_class, val_split and val_from_test are 0): exported "
        f"{what}, not chosen on the test split; first budget, repeat 0"
    )


def uint8_model(classifier: keras.Model, image_shape: tuple[int, int, int]) -> keras.Model:
    """uint8 images -> Rescaling(1/255) (float32, as the input pipeline's batches) -> classifier's logits."""
    inputs = keras.Input(shape=image_shape, dtype="uint8", name="images")
    x = keras.layers.Rescaling(1.0 / 255, dtype="float32", name="to_unit_range")(inputs)
    return keras.Model(inputs, classifier(x), name="sslrun_classifier")


def validation_source(d: DictConfig) -> str:
    for key in ("val_per_class", "val_split", "val_from_test"):
        if d.get(key):
            return f"downstream.{key}={d.get(key)}"
    return "none"


def export_classifier(
    run_dir: Path, first: dict[str, dict[str, Any]], splits: Splits, d: DictConfig, input_scale: float = 1.0
) -> dict[str, Any] | None:
    """Write run_dir/model/ (atomically: a temp folder, then a rename) and return what metrics.json records."""
    evals = list(d.evals)
    if not any("classifier" in first.get(e, {}) for e in evals):
        log.info(
            "no classifier to export: downstream.evals=%s trains none (knn and propagate do not); add "
            "finetune, scratch, selftrain or linear to get %s/%s/",
            evals,
            run_dir,
            MODEL_DIR,
        )
        return None
    name, reason = choose(first, evals, len(splits.val_x) > 0)
    result = first[name]
    model = uint8_model(result["classifier"], splits.image_shape)
    logits = model.predict(splits.test_x, batch_size=256, verbose=0)
    exported_accuracy = float(np.mean(np.argmax(logits, axis=1) == splits.test_y))
    if exported_accuracy != result["test_accuracy"]:  # float rounding of the scaling could flip a near tie
        log.warning(
            "exported %s: test accuracy %.6f, the run measured %.6f", name, exported_accuracy, result["test_accuracy"]
        )
    names = list(splits.class_names) or [str(k) for k in range(splits.num_classes)]
    info = {
        "eval": name,
        "reason": reason,
        "class_names": names,
        "input_size": list(splits.image_shape[:2]),
        "channels": splits.image_shape[2],
        "input_dtype": "uint8",
        "scaling": "Rescaling(1/255) in the model"
        + (f", then the encoder's input_scale {input_scale}" if input_scale != 1.0 else ""),
        "test_accuracy": result["test_accuracy"],
        "test_accuracy_exported": exported_accuracy,
        "test_images": len(splits.test_y),
        "val_accuracy": result.get("val_accuracy"),
        "validation": validation_source(d),
        "budget_and_repeat": "first budget, repeat 0",
        "tta": d.tta.value if name != "linear" else "none",
        "feature_flip": bool(d.feature_flip) if name == "linear" else False,
        "accuracy_includes_tta": True,  # the flips are layers of the exported model
        "outputs": "logits (log-probabilities with tta=flip): softmax gives the class probabilities",
        "saved_model": SAVED_MODEL if d.saved_model else None,
    }
    with atomic_dir(run_dir / MODEL_DIR) as tmp:
        model.save(tmp / KERAS_FILE)
        if d.saved_model:
            model.export(str(tmp / SAVED_MODEL), verbose=False)
        atomic_write_json(tmp / INFO, info)
    log.info("exported %s to %s: %s; test accuracy %.4f", name, run_dir / MODEL_DIR, reason, result["test_accuracy"])
    return {"eval": name, "reason": reason, "path": str(run_dir / MODEL_DIR)}
