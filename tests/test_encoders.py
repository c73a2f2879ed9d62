import numpy as np
import pytest

from sslrun.encoders import ENCODERS, build_encoder
from sslrun.registry import Registry

FEATURES = {"small_cnn": 128, "seed000_cnn": 64, "seed001_cnn": 288, "seed004_cnn": 256}


def test_every_encoder_has_a_known_feature_size():
    assert set(ENCODERS.names()) == set(FEATURES)


@pytest.mark.parametrize("name", ENCODERS.names())
def test_encoder_shape_and_weights_roundtrip(name, tmp_path):
    enc = build_encoder(name, (28, 28, 1))
    x = np.random.default_rng(0).random((3, 28, 28, 1)).astype("float32")
    out = enc(x, training=False).numpy()
    assert out.shape == (3, FEATURES[name])
    enc.save_weights(tmp_path / "e.weights.h5")
    other = build_encoder(name, (28, 28, 1))
    other.load_weights(tmp_path / "e.weights.h5")
    np.testing.assert_allclose(other(x, training=False).numpy(), out, rtol=1e-6)


def test_registry_refuses_duplicates_and_lists_valid_names():
    reg = Registry("thing")
    reg.register("a")(lambda: 1)
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("a")(lambda: 2)
    with pytest.raises(KeyError, match="unknown thing 'b': valid names are a"):
        reg.get("b")
