"""View augmenters: shapes, ranges, identity at inference, randomness, tf.data, configs, presets."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from sslrun.pretext.augment import (
    VIEW_PRESETS,
    Clip,
    RandomApply,
    RandomResizedCrop,
    make_view_augmenter,
)

SIZE = 32


def batch(channels: int, n: int = 8, size: int = SIZE) -> np.ndarray:
    """Smooth random images in [0, 1], touching both ends, so crops, jitter and clipping all show."""
    rng = np.random.default_rng(channels)
    coarse = rng.uniform(size=(n, size // 4, size // 4, channels)).astype(np.float32)
    x = tf.image.resize(coarse, (size, size)).numpy()
    x = (x - x.min()) / (x.max() - x.min())
    return x.astype(np.float32)


def check_view(view, x):
    view = np.asarray(view)
    assert view.shape == x.shape and view.dtype == np.float32
    assert view.min() >= 0.0 and view.max() <= 1.0


@pytest.mark.parametrize("channels", [1, 3])
def test_view_shape_dtype_range_and_differs_from_input(channels):
    x = batch(channels)
    aug = make_view_augmenter(SIZE, channels, blur_prob=0.5, seed=1)
    view = aug(x, training=True)
    check_view(view, x)
    assert not np.allclose(view, x, atol=1e-3)


@pytest.mark.parametrize("channels", [1, 3])
def test_training_false_is_identity(channels):
    x = batch(channels)
    aug = make_view_augmenter(SIZE, channels, translate=0.1, blur_prob=0.5)
    np.testing.assert_array_equal(np.asarray(aug(x, training=False)), x)


@pytest.mark.parametrize("channels", [1, 3])
def test_two_calls_give_different_views(channels):
    x = batch(channels)
    aug = make_view_augmenter(SIZE, channels)
    v1, v2 = np.asarray(aug(x, training=True)), np.asarray(aug(x, training=True))
    per_image = np.abs(v1 - v2).reshape(len(x), -1).max(axis=1)
    assert (per_image > 1e-3).all()  # every image gets its own new view, not only some


def test_views_differ_across_images_of_a_batch():
    x = np.repeat(batch(3, n=1), 8, axis=0)  # eight copies of one image
    view = np.asarray(make_view_augmenter(SIZE, 3)(x, training=True))
    distinct = {view[i].tobytes() for i in range(8)}
    assert len(distinct) == 8  # per-image randomness, not one draw per batch


@pytest.mark.parametrize("channels", [1, 3])
def test_inside_tf_data_on_whole_batches(channels):
    x = batch(channels, n=12)
    aug = make_view_augmenter(SIZE, channels, translate=0.1, blur_prob=0.5, seed=3)
    ds = tf.data.Dataset.from_tensor_slices(x).batch(6).map(lambda b: (aug(b, training=True), b))
    n = 0
    for view, original in ds:  # graph mode: map traces the function once
        check_view(view.numpy(), original.numpy())
        assert not np.allclose(view.numpy(), original.numpy(), atol=1e-3)
        n += len(view)
    assert n == 12
    eager = np.asarray(aug(x[:6], training=True))
    check_view(eager, x[:6])


def test_tf_data_two_views_differ():
    x = batch(3, n=6)
    aug = make_view_augmenter(SIZE, 3)
    ds = tf.data.Dataset.from_tensors(x).map(lambda b: (aug(b, training=True), aug(b, training=True)))
    v1, v2 = next(iter(ds))
    assert not np.allclose(v1.numpy(), v2.numpy(), atol=1e-3)


def test_grayscale_only_for_three_channels():
    only_gray = {"jitter": 0.0, "grayscale_prob": 1.0, "crop_scale": (1, 1), "flip": False}
    x = batch(3)
    view = np.asarray(make_view_augmenter(SIZE, 3, **only_gray)(x))
    np.testing.assert_allclose(view[..., 0], view[..., 2], atol=1e-6)  # all images gray
    assert not np.allclose(x[..., 0], x[..., 2], atol=1e-3)  # the inputs were not
    gray = batch(1)
    aug = make_view_augmenter(SIZE, 1, **only_gray)
    np.testing.assert_array_equal(np.asarray(aug(gray)), gray)  # a no-op for 1 channel


@pytest.mark.parametrize("channels", [1, 3])
def test_random_resized_crop_full_scale_without_flip_is_identity(channels):
    x = batch(channels)
    crop = RandomResizedCrop(SIZE, SIZE, scale=(1.0, 1.0), seed=0)
    np.testing.assert_allclose(crop(x, training=True).numpy(), x, atol=1e-6)
    aug = make_view_augmenter(SIZE, channels, crop_scale=(1.0, 1.0), flip=False, jitter=0.0, grayscale_prob=0.0)
    np.testing.assert_allclose(np.asarray(aug(x, training=True)), x, atol=1e-6)


def test_random_resized_crop_zooms_in_per_image():
    x = batch(3, n=16)
    view = RandomResizedCrop(SIZE, SIZE, scale=(0.1, 0.3), seed=0)(x, training=True).numpy()
    assert view.shape == x.shape
    assert not np.allclose(view, x, atol=1e-3, rtol=0)
    # A crop of 10-30% of the area, resized back, is smoother than the whole image.
    roughness = lambda a: np.abs(np.diff(a, axis=2)).mean()  # noqa: E731
    assert roughness(view) < roughness(x)


def test_random_resized_crop_output_size_and_non_square():
    x = np.random.default_rng(0).uniform(size=(4, 20, 40, 3)).astype(np.float32)
    crop = RandomResizedCrop(16, 24, scale=(1.0, 1.0), seed=0)
    out = crop(x, training=True).numpy()
    assert out.shape == (4, 16, 24, 3)
    # scale 1 on a 1:2 image (outside the 3/4..4/3 ratios) still takes the whole image as the box
    full = tf.image.crop_and_resize(x, [[0.0, 0.0, 1.0, 1.0]] * 4, tf.range(4), (16, 24)).numpy()
    np.testing.assert_allclose(out, full, atol=1e-5)
    assert crop(x, training=False).shape == (4, 16, 24, 3)


def test_random_apply_rate_zero_and_one():
    x = batch(3)
    invert = keras.layers.RandomInvert(factor=(1.0, 1.0), value_range=(0.0, 1.0))
    np.testing.assert_array_equal(RandomApply(invert, 0.0, seed=0)(x, training=True).numpy(), x)
    np.testing.assert_allclose(RandomApply(invert, 1.0, seed=0)(x, training=True).numpy(), 1 - x, atol=1e-6)
    half = RandomApply(invert, 0.5, seed=0)(np.repeat(x, 8, axis=0), training=True).numpy()
    flipped = np.isclose(half, 1 - np.repeat(x, 8, axis=0), atol=1e-6).all(axis=(1, 2, 3))
    assert 0 < flipped.sum() < len(flipped)  # per image, about half


@pytest.mark.parametrize(
    "layer",
    [
        RandomResizedCrop(24, 20, scale=(0.3, 0.9), ratio=(0.5, 2.0), seed=5, name="rrc"),
        RandomApply(
            keras.layers.RandomColorJitter(value_range=(0, 1), brightness_factor=0.2, seed=2),
            0.7,
            seed=4,
        ),
        Clip(0.1, 0.9),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_custom_layer_config_round_trip(layer):
    config = layer.get_config()
    rebuilt = type(layer).from_config(config)
    assert rebuilt.get_config() == config
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(again) is type(layer) and again.get_config() == config


def test_augmenter_config_round_trip():
    aug = make_view_augmenter(SIZE, 3, blur_prob=0.5, seed=2)
    rebuilt = keras.Sequential.from_config(aug.get_config())
    assert [type(la).__name__ for la in rebuilt.layers] == [type(la).__name__ for la in aug.layers]
    x = batch(3)
    check_view(rebuilt(x, training=True), x)


def test_seeded_augmenters_repeat():
    x = batch(3)
    a = np.asarray(make_view_augmenter(SIZE, 3, seed=7)(x, training=True))
    b = np.asarray(make_view_augmenter(SIZE, 3, seed=7)(x, training=True))
    c = np.asarray(make_view_augmenter(SIZE, 3, seed=8)(x, training=True))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c, atol=1e-3)


@pytest.mark.parametrize("preset", VIEW_PRESETS)
@pytest.mark.parametrize("channels", [1, 3])
def test_every_preset_builds_and_runs(preset, channels):
    x = batch(channels)
    aug = make_view_augmenter(SIZE, channels, **VIEW_PRESETS[preset])
    view = aug(x, training=True)
    check_view(view, x)
    assert not np.allclose(np.asarray(view), x, atol=1e-3)
    np.testing.assert_array_equal(np.asarray(aug(x, training=False)), x)


def test_mnist_preset_never_flips():
    x = np.zeros((16, 28, 28, 1), np.float32)
    x[:, 8:20, 4:8] = 1.0  # a bar on the left
    settings = {**VIEW_PRESETS["mnist"], "crop_scale": (1.0, 1.0), "translate": 0.0, "jitter": 0.0}
    np.testing.assert_array_equal(np.asarray(make_view_augmenter(28, 1, **settings)(x)), x)


def test_bad_channels_are_refused():
    with pytest.raises(ValueError, match="channels=4"):
        make_view_augmenter(SIZE, 4)


@pytest.mark.parametrize("preset,channels", [("cifar", 3), ("mnist", 1), ("stl10", 3)])
def test_identical_eagerly_and_inside_tf_data(preset, channels):
    """The same seed gives the same views whether the augmenter runs eagerly or in a tf.data graph."""
    size = 32
    x = np.random.default_rng(0).random((6, size, size, channels)).astype("float32")
    eager = make_view_augmenter(size, channels, seed=3, **VIEW_PRESETS[preset])(x, training=True).numpy()
    graph_aug = make_view_augmenter(size, channels, seed=3, **VIEW_PRESETS[preset])
    ds = tf.data.Dataset.from_tensors(x).map(lambda t: graph_aug(t, training=True))
    np.testing.assert_array_equal(next(iter(ds)).numpy(), eager)


NO_OTHER_CHANGE = {"crop_scale": (1.0, 1.0), "flip": False, "jitter": 0.0, "grayscale_prob": 0.0}


@pytest.mark.parametrize("channels", [1, 3])
def test_random_erasing_changes_one_rectangle_per_image(channels):
    x = batch(channels, n=16)
    aug = make_view_augmenter(SIZE, channels, erase_prob=1.0, seed=4, **NO_OTHER_CHANGE)
    view = np.asarray(aug(x, training=True))
    check_view(view, x)
    for img, orig in zip(view, x, strict=True):
        changed = np.argwhere(np.any(np.abs(img - orig) > 1e-6, axis=-1))
        assert len(changed), "erase_prob=1 erases every image"
        (top, left), (bottom, right) = changed.min(axis=0), changed.max(axis=0)
        area = (bottom - top + 1) * (right - left + 1)
        assert 0.02 * SIZE * SIZE * 0.5 <= area <= 0.6 * SIZE * SIZE  # one patch, not the image
        outside = np.ones((SIZE, SIZE), bool)
        outside[top : bottom + 1, left : right + 1] = False
        np.testing.assert_array_equal(img[outside], orig[outside])  # nothing else moves
    np.testing.assert_array_equal(np.asarray(aug(x, training=False)), x)


def test_random_erasing_probability_and_tf_data():
    x = batch(3, n=64)
    off = make_view_augmenter(SIZE, 3, erase_prob=0.0, **NO_OTHER_CHANGE)
    np.testing.assert_allclose(np.asarray(off(x, training=True)), x, atol=1e-6)
    half = make_view_augmenter(SIZE, 3, erase_prob=0.5, seed=5, **NO_OTHER_CHANGE)
    ds = tf.data.Dataset.from_tensors(x).map(lambda t: half(t, training=True))
    erased = np.any(np.abs(next(iter(ds)).numpy() - x) > 1e-6, axis=(1, 2, 3))
    assert 16 <= erased.sum() <= 48  # about half of 64 (binomial sd 4)


def test_build_augmenter_applies_preset_and_overrides():
    from sslrun.pretext.twoview import build_augmenter

    kinds = lambda aug: [type(la).__name__ for la in aug.layers]  # noqa: E731
    light = build_augmenter((SIZE, SIZE, 3), {"preset": "light"}, seed=0, key="downstream.augment")
    assert "RandomErasing" not in kinds(light) and "RandomTranslation" in kinds(light)
    erasing = build_augmenter((SIZE, SIZE, 3), {"preset": "light", "erase_prob": 0.25, "translate": 0.0}, seed=0)
    assert "RandomErasing" in kinds(erasing) and "RandomTranslation" not in kinds(erasing)
    with pytest.raises(ValueError, match=r"downstream.augment.preset='heavy': use auto or one of"):
        build_augmenter((SIZE, SIZE, 3), {"preset": "heavy"}, seed=0, key="downstream.augment")


@pytest.mark.parametrize("channels", [1, 3])
def test_view_size_resizes_the_crop_eagerly_and_in_tf_data(channels):
    x = batch(channels)
    aug = make_view_augmenter(SIZE, channels, view_size=20, seed=3)
    eager = np.asarray(aug(x, training=True))
    assert eager.shape == (8, 20, 20, channels) and 0.0 <= eager.min() and eager.max() <= 1.0
    ds = tf.data.Dataset.from_tensors(x).map(lambda t: aug(t, training=True))
    assert next(iter(ds)).shape == (8, 20, 20, channels)
    # full-area crop without flip or colour: the view is the image resized
    plain = make_view_augmenter(SIZE, channels, view_size=16, **NO_OTHER_CHANGE)
    view = np.asarray(plain(x, training=True))
    assert view.shape == (8, 16, 16, channels)
    np.testing.assert_allclose(view[:, ::15, ::15], x[:, ::31, ::31], atol=1e-5)  # corner pixels kept
    np.testing.assert_allclose(view.mean(axis=(1, 2)), x.mean(axis=(1, 2)), atol=0.02)


def test_build_augmenter_refuses_a_view_size_outside_the_image():
    from sslrun.errors import SslrunError
    from sslrun.pretext.twoview import build_augmenter

    assert build_augmenter((SIZE, SIZE, 3), {"size": 24}, seed=0).output_shape == (None, 24, 24, 3)
    for bad in (4, SIZE + 1):
        with pytest.raises(
            SslrunError,
            match=rf"pretext.augment.size={bad}: the views' side must be between 8 and "
            rf"the images' {SIZE} pixels",
        ):
            build_augmenter((SIZE, SIZE, 3), {"size": bad}, seed=0)
