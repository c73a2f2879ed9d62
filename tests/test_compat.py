"""Every pretext method with every encoder: builds, takes one optimizer step (eagerly), exports weights."""

import keras
import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from sslrun.cli import conf_dir
from sslrun.config import register_schemas
from sslrun.encoders import ENCODERS, build_encoder
from sslrun.help import register_help
from sslrun.pretext import PRETEXTS
from sslrun.pretext.twoview import TwoViewTask
from sslrun.training.pretext import build_task

register_schemas()
register_help(conf_dir())
SHAPE = (32, 32, 3)  # colour, and large enough for every encoder (seed002_cnn needs >= 31 px)


def _pretext_cfg(name):
    two_view = issubclass(PRETEXTS.get(name), TwoViewTask)
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return compose(
            "config", overrides=[f"pretext={name}", "pretext.augment.preset=cifar"] if two_view else [f"pretext={name}"]
        ).pretext


DEEP = {"resnet18", "resnet18_cifar", "resnet50"}  # eager steps through 20-50 layers: seconds each, so `-m slow`
ENCODER_PARAMS = [pytest.param(e, marks=pytest.mark.slow) if e in DEEP else e for e in ENCODERS.names()]


@pytest.mark.parametrize("encoder", ENCODER_PARAMS)
@pytest.mark.parametrize("method", PRETEXTS.names())
def test_method_trains_one_step_with_encoder(method, encoder, tmp_path):
    keras.utils.set_random_seed(0)
    enc = build_encoder(encoder, SHAPE, 0.25)
    task = build_task(_pretext_cfg(method), enc, seed=0, num_classes=10)
    task.compile(optimizer=keras.optimizers.Adam(1e-3))
    x = np.random.default_rng(0).random((8, *SHAPE)).astype("float32")
    y = np.arange(8) % 10
    before = [w.numpy().copy() for w in enc.trainable_weights]
    data = (x, (x, y)) if task.uses_labels else x
    logs = task.train_step(data)
    assert np.isfinite(float(logs["loss"]))
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, enc.trainable_weights, strict=True))
    enc.save_weights(tmp_path / "e.weights.h5")
