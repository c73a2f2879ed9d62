"""Self-training: which pool images get pseudo-labels, the student's labeled set, the eval's phases."""

import keras
import numpy as np
import pytest
from test_config import _compose
from test_evals import _downstream

from sslrun.data.splits import make_splits
from sslrun.data.stack import ImageStack
from sslrun.data.synthetic import make_synthetic
from sslrun.downstream.evals import EVALS, EvalInputs
from sslrun.downstream.selftrain import pseudo_labels, with_pseudo_labels
from sslrun.errors import SslrunError
from sslrun.pipeline import check_config


def _column_means():
    """A fixed "encoder": the mean pixel per column, where the synthetic class sets the shape's x position."""
    return keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Lambda(lambda x: keras.ops.mean(x, axis=(1, 3)))])


def test_pseudo_labels_keep_only_confident_rows():
    # each 1x1 "image" holds its class probabilities as pixels (x 255); the model returns their logarithm
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.5, 0.5]])
    x = np.round(probs * 255).astype(np.uint8).reshape(4, 1, 1, 2)
    model = keras.Sequential(
        [keras.Input((1, 1, 2)), keras.layers.Flatten(), keras.layers.Lambda(lambda f: keras.ops.log(f))]
    )
    keep, classes = pseudo_labels(model, x, 0.75)
    assert keep.tolist() == [0, 2] and classes.tolist() == [0, 1]
    keep, classes = pseudo_labels(model, x, 0.0)
    assert keep.tolist() == [0, 1, 2, 3] and classes.tolist()[:3] == [0, 1, 1]


def test_student_labeled_set_is_labels_plus_kept_pool_rows():
    raw = make_synthetic(300, 100, 0.1)
    splits = make_splits(raw, 5, 2, seed=0, num_classes=10)
    pool = np.asarray(splits.pretext_x)
    everything = with_pseudo_labels(splits, np.arange(len(pool)), np.full(len(pool), 3))
    assert isinstance(everything.labeled_x, ImageStack) and everything.labeled_x.parts[1] is splits.pretext_x
    assert len(everything.labeled_x) == 50 + len(pool) and (everything.labeled_y[50:] == 3).all()
    assert (everything.labeled_y[:50] == splits.labeled_y).all()
    some = with_pseudo_labels(splits, np.array([4, 1]), np.array([7, 8]))
    assert len(some.labeled_x) == 52 and some.labeled_y[50:].tolist() == [7, 8]
    np.testing.assert_array_equal(some.labeled_x[50:], pool[[4, 1]])
    # validation and test images are untouched: they never get pseudo-labels
    assert some.test_x is splits.test_x and some.val_x is splits.val_x


@pytest.mark.parametrize("teacher", ["finetune", "propagate"])
@pytest.mark.parametrize(
    "threshold,expect_pool", [(0.0, True), (1.01, False)]
)  # 1.01: past any confidence (the CLI refuses it; the eval must still cope)
def test_selftrain_trains_teacher_then_student_on_pseudo_labels(teacher, threshold, expect_pool):
    raw = make_synthetic(600, 300, 0.05)
    splits = make_splits(raw, 3, 2, seed=0, num_classes=10)
    d = _downstream(
        frozen_epochs=15,
        unfrozen_epochs=1,
        selftrain_threshold=threshold,
        selftrain_epochs=2,
        frozen_lr=0.05,
        selftrain_teacher=teacher,
    )
    cache: dict = {}
    out = EVALS.get("selftrain")(EvalInputs(_column_means, _column_means, splits, d, seed=0, cache=cache))
    phases = [r["phase"] for r in out["history"]]
    taught = ["teacher frozen"] * 15 + ["teacher unfrozen"] if teacher == "finetune" else []
    assert phases == taught + ["student frozen"] * 15 + ["student unfrozen"] * 2
    # the propagate teacher labels the pool images a label reaches (here 564 of 600) and shares the study's graph
    n_pool = len(splits.pretext_x)
    if not expect_pool:
        assert out["pseudo_labeled"] == 0
    else:
        assert (
            out["pseudo_labeled"] == n_pool if teacher == "finetune" else 0.9 * n_pool <= out["pseudo_labeled"] < n_pool
        )
    assert any(key[0] == "propagate" for key in cache) == (teacher == "propagate")
    assert 0.0 <= out["teacher_test_accuracy"] <= 1.0 and np.isfinite(out["test_loss"])
    assert out["test_accuracy"] > 0.5, out["test_accuracy"]


def test_propagate_teacher_weights_the_students_labels():
    from sslrun.downstream.selftrain import propagate_teacher

    raw = make_synthetic(600, 300, 0.05)
    splits = make_splits(raw, 3, 2, seed=0, num_classes=10)
    d = _downstream(selftrain_teacher="propagate", selftrain_threshold=0.5)
    t = propagate_teacher(_column_means, splits, d, {})
    keep, classes, rows, weights = t.keep, t.classes, t.history, t.weights
    n_lab = len(splits.labeled_y)
    assert 0 < len(keep) < len(splits.pretext_x) and len(classes) == len(keep) and rows == []
    # one weight per student image, labeled images first, with the largest weight; no kept label weighs 0
    assert weights.shape == (n_lab + len(keep),) and (weights[:n_lab] == weights.max()).all()
    assert (weights[n_lab:] > 0).all() and weights[n_lab:].min() < weights.max()


def test_image_batches_carry_loss_weights():
    from sslrun.data.pipeline import image_batches

    x = np.arange(6 * 4, dtype=np.uint8).reshape(6, 2, 2, 1)
    xb, yb, wb = next(iter(image_batches(x, np.arange(6), batch_size=6, shuffle=False, weights=np.linspace(0, 1, 6))))
    np.testing.assert_allclose(wb.numpy(), np.linspace(0, 1, 6), rtol=1e-6)
    assert yb.numpy().tolist() == list(range(6)) and xb.shape == (6, 2, 2, 1)
    with pytest.raises(ValueError, match=r"weights: one per labeled image \(6\), got 5"):
        image_batches(x, np.arange(6), batch_size=2, shuffle=False, weights=np.ones(5))


@pytest.mark.parametrize("threshold", [-0.1, 1.5])
def test_threshold_outside_0_1_is_refused_before_any_work(threshold):
    cfg = _compose(["experiment=smoke", "downstream.evals=[selftrain]", f"downstream.selftrain_threshold={threshold}"])
    with pytest.raises(SslrunError, match=rf"downstream.selftrain_threshold={threshold}: .* use a value in \[0, 1\]"):
        check_config(cfg)
    check_config(_compose(["experiment=smoke", "downstream.evals=[selftrain]", "downstream.selftrain_threshold=1.0"]))
