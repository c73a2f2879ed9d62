"""trainer.precision=mixed_bfloat16 on every registered pretext task: one training step, finite loss."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import pretext_node

from sslrun.encoders import build_encoder
from sslrun.pretext import PRETEXTS
from sslrun.training.pretext import build_task

# Small heads where a method's schema has these sizes: one step in seconds (the rest: its YAML's values)
SMALL = {"projection_hidden": 16, "projection_dim": 8, "predictor_hidden": 16, "decoder_width": 8}


@pytest.fixture
def bf16_policy():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("name", PRETEXTS.names())
def test_one_step_in_mixed_bfloat16(name, bf16_policy):
    channels = 3 if PRETEXTS.get(name).needs_colour else 1
    task = build_task(pretext_node(name, **SMALL), build_encoder("small_cnn", (16, 16, channels), 0.25), 0, 10)
    task.compile(optimizer=keras.optimizers.Adam(1e-3))
    x = np.random.default_rng(0).random((8, 16, 16, channels), dtype=np.float32)
    data = tf.data.Dataset.from_tensor_slices(x).batch(8)
    if task.uses_labels:
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


AMX = {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}
AVX2 = {"avx2", "fma"}


@pytest.mark.parametrize(
    ("gpu", "flags", "onednn", "policy", "why"),
    [
        (None, AMX, True, "mixed_bfloat16", "natively (amx_bf16, avx512_bf16) through oneDNN"),
        (None, {"avx512f", "avx512_bf16"}, True, "mixed_bfloat16", "natively (avx512_bf16)"),
        (None, AMX, False, "float32", "oneDNN kernels are off"),
        (None, AVX2, True, "float32", "no native bfloat16"),
        ((8, 0), AVX2, False, "mixed_bfloat16", "compute capability 8.0 computes bfloat16"),
        ((7, 5), AMX, True, "float32", "7.5 has no native bfloat16"),
    ],
)
def test_auto_precision_follows_the_hardware(gpu, flags, onednn, policy, why):
    from sslrun.precision import choose_precision

    chosen, reason = choose_precision("auto", gpu, flags, onednn)
    assert chosen == policy and why in reason
    assert choose_precision("mixed_float16", gpu, flags, onednn) == ("mixed_float16", "set by trainer.precision")


def test_cpu_flags_from_proc_cpuinfo(tmp_path):
    from sslrun.tfboot import cpu_flags

    info = tmp_path / "cpuinfo"
    info.write_text(
        "processor\t: 0\nmodel name\t: EPYC\nflags\t\t: fpu avx2 fma\n\nprocessor\t: 1\nflags\t: fpu avx2 fma\n"
    )
    assert cpu_flags(info) == {"fpu", "avx2", "fma"}
    assert cpu_flags(tmp_path / "missing") == set()


def test_explicit_bfloat16_on_a_cpu_without_it_warns(monkeypatch, caplog):
    import sslrun.precision as precision

    monkeypatch.setattr(precision, "cpu_flags", lambda: AVX2)
    monkeypatch.setattr(precision, "_gpu_capability", lambda: None)
    assert precision.resolve_precision("mixed_bfloat16")[0] == "mixed_bfloat16"
    assert "emulated and several times slower than float32" in caplog.text
    assert precision.resolve_precision("auto")[0] == "float32"


@pytest.mark.parametrize(
    ("env", "on", "who"), [({}, True, "sslrun's default on x86"), ({"TF_ENABLE_ONEDNN_OPTS": "0"}, False, "set by you")]
)
def test_onednn_is_turned_on_unless_the_user_said(monkeypatch, env, on, who):
    import sslrun.tfboot as tfboot

    for key in ("TF_ENABLE_ONEDNN_OPTS", "SSLRUN_SET_ONEDNN"):  # set, then removed: put back as found after
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(tfboot.platform, "machine", lambda: "x86_64")
    tfboot.configure_onednn()
    assert tfboot.onednn_setting()[0] is on and who in tfboot.onednn_setting()[1]
