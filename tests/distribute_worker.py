"""Run by tests/test_distribute.py in a fresh process with SSLRUN_LOGICAL_CPUS=2 (devices are fixed at
TensorFlow's start): one fit step of a task on one device and under MirroredStrategy over two logical
CPUs, from the same weights on the same batch; prints one JSON line per task.

Views are made deterministic (the image and its mirror image) and rotation uses mode=all, so the
only difference between the two runs is the distribution. SGD without momentum: its step is
proportional to the gradient, so a gradient off by the replica count shows (Adam's would not).

The encoder is small_cnn's layout (conv, BatchNorm, activation; pooling after the 2nd and 4th
block) with tanh and average pooling: smooth everywhere. Each replica convolves half the batch, and
some CPUs' kernels round that differently from the whole batch (AVX2-only AMD EPYC; oneDNN capped
at SSE4.1 here) by about 1e-7. Where a ReLU input or a max-pool's top two values lie that close,
the gradient takes another route and the step moves by up to 1.4%: on one device too, when the
input moves by one ulp. Measured on 8 batches x 2 tasks: up to 1e-2 with ReLU and max-pool (2 of
8 batches above 1e-4), at most 5e-6 with this encoder, on every kernel set.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from conftest import pretext_node  # noqa: E402

from sslrun.pretext import PRETEXTS  # noqa: E402
from sslrun.pretext.twoview import TwoViewTask  # noqa: E402
from sslrun.training.distribute import (  # noqa: E402
    configure_logical_cpus,
    prepare_for_replicas,
    synchronize_batchnorm,
)
from sslrun.training.pretext import build_task  # noqa: E402

BATCH = 32
# Every registered task with its YAML's values, but small heads where its schema has these sizes, and
# rotation's four rotations of each image (mode=all): no random draw that could differ between the runs
SMALL = {"projection_hidden": 32, "projection_dim": 16, "predictor_hidden": 32, "decoder_width": 16, "mode": "all"}


def smooth_cnn(shape: tuple[int, ...], width: float = 0.25) -> keras.Model:
    inputs = keras.Input(shape=shape)
    x = inputs
    for i, filters in enumerate((32, 32, 64, 64, 128)):
        x = keras.layers.Conv2D(int(filters * width), 3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization(momentum=0.9)(x)
        x = keras.layers.Activation("tanh")(x)
        if i in (1, 3):
            x = keras.layers.AveragePooling2D(2)(x)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x), name="smooth_cnn")


def build(name: str, shape: tuple[int, ...], strategy: tf.distribute.Strategy) -> keras.Model:
    with strategy.scope():
        keras.utils.set_random_seed(0)
        encoder = smooth_cnn(shape)
        task = build_task(pretext_node(name, **SMALL), encoder, 0, 10)
        task.compile(optimizer=keras.optimizers.SGD(0.5))
        task(np.zeros((1, *shape), "float32"), training=False)
        prepare_for_replicas(task, strategy)
    if isinstance(task, TwoViewTask):
        task.views = lambda x: (x, tf.image.flip_left_right(x))
    return task


def one_step(task: keras.Model, start: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> tuple[float, list]:
    for var, value in zip(task.weights, start, strict=True):
        var.assign(value)
    images = tf.data.Dataset.from_tensor_slices(x).batch(BATCH)
    data = images
    if task.uses_labels:
        data = tf.data.Dataset.zip((images, tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH)))
    history = task.fit(data, epochs=1, verbose=0, shuffle=False)
    return history.history["loss"][0], [np.asarray(v.numpy()) for v in task.weights]


def compare(name: str, mirrored: tf.distribute.Strategy) -> dict:
    channels = 3 if PRETEXTS.get(name).needs_colour else 1
    rng = np.random.default_rng(0)
    x = rng.random((BATCH, 16, 16, channels), dtype=np.float32)
    y = rng.integers(0, 10, BATCH)
    single = build(name, x.shape[1:], tf.distribute.get_strategy())
    start = [np.asarray(v.numpy()) for v in single.weights]
    loss_1, after_1 = one_step(single, start, x, y)
    loss_2, after_2 = one_step(build(name, x.shape[1:], mirrored), start, x, y)
    step_1 = np.concatenate([(a - s).ravel() for a, s in zip(after_1, start, strict=True)])
    step_2 = np.concatenate([(a - s).ravel() for a, s in zip(after_2, start, strict=True)])
    return {
        "task": name,
        "replicas": mirrored.num_replicas_in_sync,
        "loss_one_device": loss_1,
        "loss_mirrored": loss_2,
        "step_norm": float(np.linalg.norm(step_1)),
        "step_diff_norm": float(np.linalg.norm(step_1 - step_2)),
        "sync_batchnorm_layers": synchronize_batchnorm(single, mirrored),
    }


def main(names: list[str]) -> None:
    cpus = configure_logical_cpus()  # reads SSLRUN_LOGICAL_CPUS before TensorFlow builds its devices
    mirrored = tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
    assert cpus == mirrored.num_replicas_in_sync
    for name in names:
        print(json.dumps(compare(name, mirrored)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
