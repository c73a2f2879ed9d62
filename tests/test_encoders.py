import keras
import numpy as np
import pytest

from sslrun.downstream.finetune import LOSS, classifier, freeze, unfreeze
from sslrun.encoders import ENCODERS, build_encoder
from sslrun.registry import Registry

# name: (an input shape the encoder is meant for, features at width 1, features at width 0.5).
# A dense neck fixes the feature size; a conv stack's features scale with the width.
FEATURES = {
    "small_cnn": ((28, 28, 1), 128, 64),
    "wide_cnn": ((32, 32, 3), 512, 256),
    "seed000_cnn": ((28, 28, 1), 64, 64),
    "seed001_cnn": ((28, 28, 1), 288, 144),
    "seed002_cnn": ((32, 32, 3), 128, 128),  # unpadded convs: 28x28 is too small
    "seed004_cnn": ((28, 28, 1), 256, 256),
    "resnet20": ((32, 32, 3), 64, 32),
    "resnet18_cifar": ((32, 32, 3), 512, 256),
    "resnet18": ((96, 96, 3), 512, 256),
    "resnet50": ((96, 96, 3), 2048, 1024),
}

# Trainable parameters at width 1. The ImageNet-style nets equal torchvision's
# resnet18/resnet50 without their 1000-way fc; resnet18_cifar is resnet18 with a
# 3x3 stem (1,728 instead of 9,408 stem weights); resnet20 is He et al.'s 0.27 M
# (269,072 without fc) plus the two projection shortcuts (2,752).
PARAMETERS = {
    "resnet20": 271_824,
    "resnet18_cifar": 11_168_832,
    "resnet18": 11_176_512,
    "resnet50": 23_508_032,
}


def _images(shape, batch=2, seed=0):
    return np.random.default_rng(seed).random((batch, *shape)).astype("float32")


def test_every_encoder_has_a_known_feature_size():
    assert set(ENCODERS.names()) == set(FEATURES)


@pytest.mark.parametrize("name", ENCODERS.names())
def test_encoder_shape_and_weights_roundtrip(name, tmp_path):
    shape, features, _ = FEATURES[name]
    enc = build_encoder(name, shape)
    x = _images(shape)
    out = enc(x, training=False).numpy()
    assert out.shape == (2, features)
    enc.save_weights(tmp_path / "e.weights.h5")
    other = build_encoder(name, shape)
    other.load_weights(tmp_path / "e.weights.h5")
    np.testing.assert_allclose(other(x, training=False).numpy(), out, rtol=1e-6)


@pytest.mark.parametrize("name", ENCODERS.names())
def test_width_scales_conv_features(name):
    shape, _, half = FEATURES[name]
    assert build_encoder(name, shape, width=0.5)(_images(shape), training=False).shape == (2, half)


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_resnet_parameter_counts(name):
    enc = build_encoder(name, FEATURES[name][0])
    assert sum(int(np.prod(w.shape)) for w in enc.trainable_weights) == PARAMETERS[name]


def test_seed002_refuses_images_too_small_for_its_unpadded_convs():
    with pytest.raises(ValueError, match="'seed002_cnn' needs images of at least 31x31.*got 28x28"):
        build_encoder("seed002_cnn", (28, 28, 1))


def _bn_stats(enc):
    bns = [layer for layer in enc.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert bns
    return [np.concatenate([bn.moving_mean.numpy(), bn.moving_variance.numpy()]) for bn in bns]


@pytest.mark.parametrize("mode", ["encoder", "backbone"])
def test_frozen_resnet_batchnorm_runs_in_inference_mode(mode):
    enc = build_encoder("resnet20", (32, 32, 3), width=0.25)
    x = _images((32, 32, 3), batch=8)  # in [0, 1): batch statistics far from the initial 0/1
    before = _bn_stats(enc)

    freeze(enc, mode)  # what downstream fine-tuning does in phase 1
    out = enc(x, training=True).numpy()
    for a, b in zip(before, _bn_stats(enc), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(out, enc(x, training=False).numpy(), rtol=1e-5, atol=1e-6)
    # the same inside a compiled fit step of the classifier wrapping the encoder
    model = classifier(enc, num_classes=3, dropout=0.0)
    model.compile(optimizer="sgd", loss=LOSS)
    model.train_on_batch(x, np.arange(8) % 3)
    for a, b in zip(before, _bn_stats(enc), strict=True):
        np.testing.assert_array_equal(a, b)

    unfreeze(enc)
    out = enc(x, training=True).numpy()
    assert all(not np.allclose(a, b) for a, b in zip(before, _bn_stats(enc), strict=True))
    assert not np.allclose(out, enc(x, training=False).numpy(), atol=1e-3)


def test_registry_refuses_duplicates_and_lists_valid_names():
    reg = Registry("thing")
    reg.register("a")(lambda: 1)
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("a")(lambda: 2)
    with pytest.raises(KeyError, match="unknown thing 'b': valid names are a"):
        reg.get("b")


def test_input_scale_multiplies_pixels_before_a_sequential_encoder():
    import numpy as np

    from sslrun.encoders import build_encoder
    from sslrun.errors import SslrunError

    plain = build_encoder("seed001_cnn", (28, 28, 1))
    raw = build_encoder("seed001_cnn", (28, 28, 1), input_scale=255.0)
    raw.set_weights(plain.get_weights())  # the Rescaling layer has no weights
    x = np.random.default_rng(0).random((2, 28, 28, 1)).astype("float32")
    np.testing.assert_allclose(raw.predict(x, verbose=0), plain.predict(x * 255, verbose=0), rtol=1e-4, atol=1e-3)
    with pytest.raises(SslrunError, match="input_scale=255.0 works with the sequential seed encoders"):
        build_encoder("small_cnn", (28, 28, 1), input_scale=255.0)
