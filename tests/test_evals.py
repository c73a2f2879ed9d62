"""Downstream evaluations: each registered one on synthetic data, kNN and the probe on known features."""

import numpy as np
import pytest

from sslrun.data.splits import make_splits
from sslrun.data.synthetic import make_synthetic
from sslrun.downstream.evals import EVALS, FEATURE_EVALS, EvalInputs
from sslrun.downstream.knn import knn_predict
from sslrun.encoders import build_encoder


def _compose(overrides: list[str]):
    """The whole config as Hydra composes it."""
    from hydra import compose, initialize_config_dir

    from sslrun.cli import conf_dir
    from sslrun.config import register_schemas
    from sslrun.help import register_help

    register_schemas()
    register_help(conf_dir())
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def _downstream(**overrides):
    """conf/downstream/finetune.yaml as Hydra composes it, with test-sized epochs."""
    return _compose(
        [
            f"downstream.{k}={v}"
            for k, v in {"frozen_epochs": 2, "unfrozen_epochs": 2, "linear_epochs": 30, "knn_k": 5, **overrides}.items()
        ]
    ).downstream


D = _downstream()


def test_knn_is_perfect_on_separable_features():
    rng = np.random.default_rng(0)
    centres = np.eye(10, 16) * 10
    y = np.repeat(np.arange(10), 20)
    f = centres[y] + rng.normal(0, 0.5, (200, 16))
    q_y = np.repeat(np.arange(10), 7)
    q = centres[q_y] + rng.normal(0, 0.5, (70, 16))
    assert (knn_predict(f, y, q, k=5, num_classes=10, chunk=16) == q_y).all()


def test_knn_k_larger_than_the_training_set_is_clamped():
    f = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert knn_predict(f, np.array([0, 1]), np.array([[2.0, 0.1]]), k=50, num_classes=2).tolist() == [0]


@pytest.mark.parametrize("name", EVALS.names())
def test_every_eval_on_synthetic(name):
    raw = make_synthetic(400, 200, 0.1)
    splits = make_splits(raw, 10, 2, seed=0, num_classes=10)
    encoder = lambda: build_encoder("small_cnn", (28, 28, 1), 0.25)  # noqa: E731
    out = EVALS.get(name)(EvalInputs(encoder, encoder, splits, D, seed=0))
    assert 0.0 <= out["test_accuracy"] <= 1.0 and out["seconds"] > 0
    assert out["test_loss"] is None if name in ("knn", "propagate") else np.isfinite(out["test_loss"])
    if name == "linear":
        assert out["history"] and out["history"][0]["phase"] == "linear"


def test_linear_probe_learns_from_a_fixed_informative_encoder():
    import keras

    raw = make_synthetic(600, 300, 0.05)
    splits = make_splits(raw, 20, 5, seed=0, num_classes=10)

    # a frozen "encoder" whose features are the mean pixel per column: the class sets the shape's x position
    def enc():
        return keras.Sequential(
            [keras.Input((28, 28, 1)), keras.layers.Lambda(lambda x: keras.ops.mean(x, axis=(1, 3)))]
        )

    out = EVALS.get("linear")(EvalInputs(enc, enc, splits, D, seed=0))
    assert out["test_accuracy"] > 0.6


def test_scratch_schedule_augmentation_and_training_metric_early_stopping():
    raw = make_synthetic(400, 200, 0.1)
    splits = make_splits(raw, 10, 2, seed=0, num_classes=10)
    encoder = lambda: build_encoder("small_cnn", (28, 28, 1), 0.25)  # noqa: E731
    d = _downstream(
        scratch_epochs=3,
        scratch_lr=0.01,
        **{"augment.preset": "mnist"},
        patience=1,
        patience_monitor="accuracy",
        frozen_epochs=30,
    )
    out = EVALS.get("scratch")(EvalInputs(encoder, encoder, splits, d, seed=0))
    assert [r["phase"] for r in out["history"]] == ["scratch"] * 3 and 0 <= out["val_accuracy"] <= 1
    ft = EVALS.get("finetune")(EvalInputs(encoder, encoder, splits, d, seed=0))
    frozen = [r for r in ft["history"] if r["phase"] == "frozen"]
    # a frozen random encoder's training accuracy stalls: stopped on `accuracy`, long before 30 epochs
    assert 2 <= len(frozen) < 30


def test_flip_tta_averages_the_softmax_of_each_image_and_its_mirror():
    import keras

    from sslrun.downstream.finetune import predict_logits

    # logits = (mean of the left half, mean of the right half) * 10: a mirror swaps them
    halves = keras.layers.Lambda(
        lambda x: (
            10
            * keras.ops.stack(
                [keras.ops.mean(x[:, :, :14], axis=(1, 2, 3)), keras.ops.mean(x[:, :, 14:], axis=(1, 2, 3))], axis=1
            )
        )
    )
    model = keras.Sequential([keras.Input((28, 28, 1)), halves])
    x = np.zeros((3, 28, 28, 1), np.uint8)
    x[0, :, :7] = 255  # bright far left
    x[1, :, 20:] = 128  # grey on the right
    x[2, :, 8:18] = 255  # straddles the middle, off centre (6 columns left, 4 right)
    plain = predict_logits(model, x)
    left, right = (x[..., :14, 0] / 255).mean(axis=(1, 2)), (x[..., 14:, 0] / 255).mean(axis=(1, 2))
    np.testing.assert_allclose(plain, 10 * np.stack([left, right], 1), rtol=1e-5, atol=1e-5)
    softmax = lambda z: np.exp(z) / np.exp(z).sum(1, keepdims=True)  # noqa: E731
    expected = np.log((softmax(plain) + softmax(plain[:, ::-1])) / 2)
    np.testing.assert_allclose(predict_logits(model, x, "flip"), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="downstream.tta='rot90': use none or flip"):
        predict_logits(model, x, "rot90")


def test_finetune_with_flip_tta_scores_test_and_validation():
    raw = make_synthetic(400, 200, 0.1)
    splits = make_splits(raw, 10, 2, seed=0, num_classes=10)
    encoder = lambda: build_encoder("small_cnn", (28, 28, 1), 0.25)  # noqa: E731
    out = EVALS.get("finetune")(EvalInputs(encoder, encoder, splits, _downstream(tta="flip"), seed=0))
    assert 0 <= out["test_accuracy"] <= 1 and 0 <= out["val_accuracy"] <= 1 and np.isfinite(out["test_loss"])


def test_feature_flip_averages_each_images_features_with_its_mirrors():
    import keras

    from sslrun.downstream.features import features

    # features = (mean of the left half, mean of the right half): a mirror swaps them
    halves = keras.layers.Lambda(
        lambda x: keras.ops.stack(
            [keras.ops.mean(x[:, :, :14], axis=(1, 2, 3)), keras.ops.mean(x[:, :, 14:], axis=(1, 2, 3))], axis=1
        )
    )
    encoder = keras.Sequential([keras.Input((28, 28, 1)), halves])
    x = np.zeros((5, 28, 28, 1), np.uint8)
    x[0, :, :7] = 255
    x[1, :, 20:] = 128
    x[2, 3:9, 8:18] = 200
    plain = features(encoder, x, batch_size=2)  # batches of 2: the mirror is per image, whatever the batch
    left, right = (x[..., :14, 0] / 255).mean(axis=(1, 2)), (x[..., 14:, 0] / 255).mean(axis=(1, 2))
    np.testing.assert_allclose(plain, np.stack([left, right], 1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        features(encoder, x, batch_size=2, flip=True),
        np.repeat((plain.sum(1) / 2)[:, None], 2, 1),
        rtol=1e-5,
        atol=1e-6,
    )
    assert features(encoder, x[:0], flip=True).shape == (0, 2)


@pytest.mark.parametrize("name", FEATURE_EVALS)
def test_feature_flip_makes_the_frozen_feature_evals_blind_to_mirroring(name):
    """With feature_flip an image and its mirror have the same features, so the same prediction; without it
    the random encoder tells them apart somewhere (the test would pass vacuously otherwise)."""
    from dataclasses import replace

    assert name in EVALS.names()
    raw = make_synthetic(400, 200, 0.1)
    splits = make_splits(raw, 10, 2, seed=0, num_classes=10)
    flipped = replace(splits, test_x=np.ascontiguousarray(splits.test_x[:, :, ::-1]))
    encoder = lambda: build_encoder("small_cnn", (28, 28, 1), 0.25)  # noqa: E731
    keras_seed = 3

    def predictions(s, d):
        import keras

        keras.utils.set_random_seed(keras_seed)  # the same random encoder every call
        return EVALS.get(name)(EvalInputs(encoder, encoder, s, d, seed=0))["predictions"]

    plain = _downstream()
    assert (predictions(splits, plain) != predictions(flipped, plain)).any()
    flip = _downstream(feature_flip=True)
    np.testing.assert_array_equal(predictions(splits, flip), predictions(flipped, flip))


def test_steps_per_execution_gives_the_same_training():
    """Several batches per graph call (seed 004's batch 1) make the same updates as one: same weights, same
    history; 3 does not divide the 10 steps per epoch, so the last call of each epoch is a short one."""
    import keras

    from sslrun.downstream.finetune import train_classifier

    raw = make_synthetic(400, 200, 0.1)
    splits = make_splits(raw, 2, 2, seed=0, num_classes=10)  # 20 labels, batch 2: 10 steps per epoch
    runs = {}
    for spe in (1, 3):
        d = _downstream(batch_size=2, steps_per_execution=spe)
        keras.utils.set_random_seed(0)
        encoder = build_encoder("small_cnn", (28, 28, 1), 0.25)
        model, history = train_classifier(encoder, splits, d, seed=0, name="spe", pretrained=True)
        assert model.steps_per_execution == spe
        runs[spe] = ([w.copy() for w in model.get_weights()], history)
    assert len(runs[1][1]) == 4 and [r["phase"] for r in runs[3][1]] == ["frozen"] * 2 + ["unfrozen"] * 2
    for a, b in zip(runs[1][0], runs[3][0], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for a, b in zip(runs[1][1], runs[3][1], strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5) and a["accuracy"] == b["accuracy"]


def test_steps_per_execution_below_one_is_refused():
    from sslrun.errors import SslrunError
    from sslrun.pipeline import check_config

    cfg = _compose(["experiment=smoke", "downstream.steps_per_execution=0"])
    with pytest.raises(SslrunError, match="downstream.steps_per_execution=0: must be a positive number"):
        check_config(cfg)


def test_feature_flip_without_a_frozen_feature_eval_is_refused():
    from sslrun.errors import SslrunError
    from sslrun.pipeline import check_config

    with pytest.raises(
        SslrunError,
        match=r"downstream.feature_flip=true changes only linear, knn, propagate .*"
        r"downstream.evals=\['finetune', 'scratch'\]; add one",
    ):
        check_config(
            _compose(["experiment=smoke", "downstream.evals=[finetune,scratch]", "downstream.feature_flip=true"])
        )
    for ok in (
        ["downstream.evals=[finetune,knn]"],
        ["downstream.evals=[selftrain]", "downstream.selftrain_teacher=propagate"],
    ):
        check_config(_compose(["experiment=smoke", *ok, "downstream.feature_flip=true"]))
