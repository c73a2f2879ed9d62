"""Rotation prediction (Gidaris et al. 2018; seeds 000, 001, 004).

Rotations are made per batch inside the graph: never a 4x copy of the data.
Label k means the image was rotated by k*90 degrees counter-clockwise, as
`np.rot90(image, k)` does.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from sslrun.config import RotationConfig, RotationMode
from sslrun.errors import ConfigError
from sslrun.pretext.base import PretextTask
from sslrun.pretext.losses import rotation_loss
from sslrun.pretext.registry import PRETEXTS
from sslrun.pretext.replicas import replica_share

MODES = tuple(mode.value for mode in RotationMode)


def rotations(x: tf.Tensor) -> tf.Tensor:
    """All four rotations of a batch (b, h, w, c) -> (4, b, h, w, c); square images only."""
    return tf.stack([tf.image.rot90(x, k) for k in range(4)])


def rotate_all(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Every image in all four rotations: (4b, h, w, c) and labels (4b,)."""
    batch = tf.shape(x)[0]
    stacked = rotations(x)
    labels = tf.repeat(tf.range(4, dtype=tf.int32), batch)
    return tf.reshape(stacked, tf.concat([[4 * batch], tf.shape(x)[1:]], 0)), labels


def rotate_by(x: tf.Tensor, k: tf.Tensor) -> tf.Tensor:
    """Image i rotated by k[i] quarter turns."""
    index = tf.stack([tf.cast(k, tf.int32), tf.range(tf.shape(x)[0], dtype=tf.int32)], axis=1)
    return tf.gather_nd(rotations(x), index)


def conv_head(encoder: keras.Model, filters: int, init: str = "glorot_uniform") -> list[keras.layers.Layer]:
    """A 3x3 stride-2 conv on the encoder's last feature map (seed 001's pretext head), for encoders
    that end by flattening one: the head folds the flat features back into that map."""
    last = encoder.layers[-1]
    if not isinstance(last, keras.layers.Flatten) or len(last.input.shape) != 4:
        raise ConfigError(
            f"pretext.head_conv={filters} needs an encoder that ends by flattening a feature map "
            f"(such as seed001_cnn); encoder {encoder.name!r} ends in {type(last).__name__}: "
            "set pretext.head_conv=0"
        )
    return [
        keras.layers.Reshape(tuple(last.input.shape[1:])),
        keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu", kernel_initializer=init),
        keras.layers.Flatten(),
    ]


@PRETEXTS.register("rotation")
class RotationTask(PretextTask):
    schema = RotationConfig

    def __init__(
        self,
        encoder: keras.Model,
        mode: str = "random",
        head_hidden: int = 0,
        head_conv: int = 0,
        head_init: str = "glorot_uniform",
        seed: int = 0,
        **kwargs,
    ):
        super().__init__(encoder, **kwargs)
        head = conv_head(encoder, head_conv, head_init) if head_conv else []
        head += (
            [keras.layers.Dense(head_hidden, activation="relu", kernel_initializer=head_init)] if head_hidden else []
        )
        self.head = keras.Sequential(
            [*head, keras.layers.Dense(4, dtype="float32", kernel_initializer=head_init)], name="rotation_head"
        )
        self.mode = mode
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy]

    def call(self, x, training=False):
        return self.head(self.encoder(x, training=training), training=training)

    def make_batch(self, x: tf.Tensor, training: bool) -> tuple[tf.Tensor, tf.Tensor]:
        if self.mode == "all" or not training:  # evaluation always sees all four
            return rotate_all(x)
        k = keras.random.randint((tf.shape(x)[0],), 0, 4, seed=self.seed_generator, dtype="int32")
        return rotate_by(x, k), k

    def train_step(self, data):
        x, labels = self.make_batch(keras.utils.unpack_x_y_sample_weight(data)[0], training=True)
        with tf.GradientTape() as tape:
            logits = self(x, training=True)
            loss = rotation_loss(labels, logits)
            # replica_share: 1/replicas (gradients are summed over replicas); scale_loss: mixed_float16
            scaled = self.optimizer.scale_loss(replica_share(loss))
        grads = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        return self._update(loss, labels, logits)

    def test_step(self, data):
        x, labels = self.make_batch(keras.utils.unpack_x_y_sample_weight(data)[0], training=False)
        logits = self(x, training=False)
        return self._update(rotation_loss(labels, logits), labels, logits)

    def plot_examples(self, path: Path, images: np.ndarray) -> bool:
        """Images in a known rotation (k = i mod 4) titled with the predicted rotation."""
        from sslrun.report.plots import plot_rotation_examples

        k = tf.range(tf.shape(images)[0]) % 4
        rotated = rotate_by(tf.convert_to_tensor(images), k)
        pred = tf.argmax(self(rotated, training=False), axis=-1)
        plot_rotation_examples(rotated.numpy(), k.numpy(), pred.numpy(), path)
        return True

    @classmethod
    def create(
        cls,
        encoder: keras.Model,
        *,
        mode: str = "random",
        head_hidden: int = 0,
        head_conv: int = 0,
        head_init: str = "glorot_uniform",
        seed: int = 0,
        num_classes: int = 0,
    ) -> RotationTask:
        if mode not in MODES:
            raise ConfigError(f"pretext.mode={mode!r}: use 'all' or 'random'")
        shape = encoder.input_shape
        if shape[1] != shape[2]:
            raise ConfigError(f"rotation pretext needs square images, got {shape[1]}x{shape[2]}")
        return cls(
            encoder,
            mode=mode,
            head_hidden=head_hidden,
            head_conv=head_conv,
            head_init=head_init,
            seed=seed,
            name=cls.task_name,
        )

    def _update(self, loss, labels, logits):
        self.loss_tracker.update_state(loss)
        self.accuracy.update_state(labels, logits)
        return {m.name: m.result() for m in self.metrics}
