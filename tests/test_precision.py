"""trainer.precision=mixed_bfloat16 on every registered pretext task: one training step, finite loss."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from omegaconf import OmegaConf

from sslrun.encoders import build_encoder
from sslrun.pretext import PRETEXTS
from sslrun.training.pretext import build_task

CONF = {
    "rotation": {"mode": "random"},
    "colorization": {"decoder_width": 8},
    "simclr": {"augment": {}, "projection_hidden": 16, "projection_dim": 8, "temperature": 0.2},
    "byol": {"augment": {}, "projection_hidden": 16, "projection_dim": 8, "predictor_hidden": 16, "ema": 0.99},
    "barlow_twins": {"augment": {}, "projection_hidden": 16, "projection_dim": 8, "lambda_offdiag": 0.1},
    "vicreg": {"augment": {}, "projection_hidden": 16, "projection_dim": 8, "sim_weight": 25.0,
               "var_weight": 25.0, "cov_weight": 1.0},
}


@pytest.fixture
def bf16_policy():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("name", PRETEXTS.names())
def test_one_step_in_mixed_bfloat16(name, bf16_policy):
    channels = 3 if name == "colorization" else 1
    task = build_task(OmegaConf.create({"name": name, **CONF[name]}),
                      build_encoder("small_cnn", (16, 16, channels), 0.25), 0, 10)
    task.compile(optimizer=keras.optimizers.Adam(1e-3))
    x = np.random.default_rng(0).random((8, 16, 16, channels), dtype=np.float32)
    data = tf.data.Dataset.from_tensor_slices(x).batch(8)
    if getattr(task, "uses_labels", False):
        data = tf.data.Dataset.zip((data, tf.data.Dataset.from_tensor_slices((x, np.arange(8) % 10)).batch(8)))
    loss = task.fit(data, epochs=1, verbose=0).history["loss"][0]
    assert np.isfinite(loss)
    assert task.encoder.layers[-1].compute_dtype == "bfloat16" and task.encoder.weights[0].dtype == "float32"


def test_dtype_policy_scope_puts_the_callers_policy_back_even_on_error():
    from sslrun.precision import dtype_policy

    with dtype_policy("mixed_bfloat16"):
        assert keras.layers.Dense(2).compute_dtype == "bfloat16"
    assert keras.mixed_precision.global_policy().name == "float32"
    with pytest.raises(RuntimeError), dtype_policy("mixed_float16"):
        raise RuntimeError("fails inside")
    assert keras.mixed_precision.global_policy().name == "float32"
