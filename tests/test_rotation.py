import numpy as np
import pytest
import tensorflow as tf

from sslrun.data.synthetic import make_synthetic
from sslrun.pretext.losses import rotation_loss
from sslrun.pretext.rotation import rotate_all, rotate_by

X = make_synthetic(8, 8, noise=0.1).x_train.astype(np.float32) / 255.0  # real (synthetic) pixels


def test_rotate_all_label_k_is_rot90_k():
    xr, labels = rotate_all(tf.constant(X))
    xr, labels = xr.numpy(), labels.numpy()
    assert xr.shape == (32, 28, 28, 1) and labels.tolist() == [0] * 8 + [1] * 8 + [2] * 8 + [3] * 8
    for i in range(32):
        np.testing.assert_array_equal(xr[i], np.rot90(X[i % 8], labels[i], axes=(0, 1)))
    assert not np.array_equal(xr[8], xr[0])  # the shapes are not rotation-symmetric


def test_rotate_by_per_image_k():
    k = np.array([0, 1, 2, 3, 3, 2, 1, 0], np.int32)
    xr = rotate_by(tf.constant(X), tf.constant(k)).numpy()
    for i in range(8):
        np.testing.assert_array_equal(xr[i], np.rot90(X[i], k[i], axes=(0, 1)))


def test_rotate_inside_tf_data_matches_eager():
    ds = tf.data.Dataset.from_tensor_slices(X).batch(8).map(lambda b: rotate_all(b)[0])
    np.testing.assert_array_equal(next(iter(ds)).numpy(), rotate_all(tf.constant(X))[0].numpy())


def test_loss_matches_numpy_reference():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 4)).astype(np.float32)
    labels = rng.integers(0, 4, 6)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    expected = -np.mean(np.log(p[np.arange(6), labels]))
    assert float(rotation_loss(labels, logits)) == pytest.approx(expected, rel=1e-5)


def test_loss_decreases_under_sgd():
    import keras

    from sslrun.encoders import build_encoder
    from sslrun.pretext import PRETEXTS

    keras.utils.set_random_seed(0)
    task = PRETEXTS.build("rotation", encoder=build_encoder("small_cnn", (28, 28, 1), 0.25), mode="all", seed=0)
    task.compile(optimizer=keras.optimizers.Adam(3e-3))
    x = tf.constant(X)
    first = task.train_on_batch(x, return_dict=True)["loss"]
    for _ in range(15):
        last = task.train_on_batch(x, return_dict=True)["loss"]
    assert last < 0.7 * first


def test_random_mode_needs_square_images():
    from sslrun.encoders import build_encoder
    from sslrun.pretext import PRETEXTS

    with pytest.raises(ValueError, match="square images, got 28x32"):
        PRETEXTS.build("rotation", encoder=build_encoder("small_cnn", (28, 32, 1), 0.25))
