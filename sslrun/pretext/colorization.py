"""Colorization (Larsson et al. 2017; seed 003): from the luminance of a colour image, predict its colour.

Target: the CIE Lab `ab` channels (`target=lab_ab`, default) or RGB (`target=rgb`, seed 003's
choice). Lab `ab` is the default because the input already is the lightness: predicting only the
two chroma channels asks the network for the part of the image it cannot see, instead of mostly
copying the input back as RGB regression does.

The encoder keeps its 3-channel input: it sees the luminance repeated in R, G and B. At export its
first convolution is folded onto the luminance, w'_c = (sum_k w_k) * luma_c, so on a colour image
the exported encoder computes exactly what it learned to compute from the gray image (and on a gray
image nothing changes). Fine-tuning then learns colour from there. Seed 003 instead threw the
first layer away and put a fresh 3-channel convolution in its place.
"""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from sslrun.config import ColorizationConfig, ColourTarget
from sslrun.errors import ConfigError
from sslrun.pretext.base import PretextTask
from sslrun.pretext.colour import AB_SCALE, LUMA, gray3, lab_to_rgb, rgb_to_lab
from sslrun.pretext.losses import colorization_loss
from sslrun.pretext.registry import PRETEXTS
from sslrun.pretext.replicas import replica_share

TARGETS = tuple(target.value for target in ColourTarget)


def spatial_trunk(encoder: keras.Model) -> keras.Model:
    """The encoder up to its last spatial feature map (sharing its layers and weights)."""
    spatial = [layer for layer in encoder.layers if len(layer.output.shape) == 4]
    if not spatial:
        raise ConfigError(f"encoder {encoder.name} has no spatial feature map for a colorization decoder")
    return keras.Model(encoder.inputs, spatial[-1].output, name=f"{encoder.name}_trunk")


def decoder(feature_shape: tuple[int, ...], size: int, width: int, out_channels: int, activation: str):
    """Upsample (bilinear x2, conv, BN, ReLU) until the input size, then a 1x1 conv to the colour channels."""
    steps = max(0, math.ceil(math.log2(size / feature_shape[0])))
    layers = [keras.Input(feature_shape)]
    for i in range(steps):
        layers += [
            keras.layers.UpSampling2D(2, interpolation="bilinear"),
            keras.layers.Conv2D(max(16, width >> i), 3, padding="same", use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
        ]
    if feature_shape[0] * 2**steps != size:
        layers.append(keras.layers.Resizing(size, size))
    layers.append(keras.layers.Conv2D(out_channels, 1, activation=activation, dtype="float32"))  # outputs in float32
    return keras.Sequential(layers, name="colour_decoder")


@PRETEXTS.register("colorization")
class ColorizationTask(PretextTask):
    schema = ColorizationConfig
    needs_colour = True

    def __init__(self, encoder: keras.Model, target: str, decoder_width: int, **kwargs):
        super().__init__(encoder, **kwargs)
        self.target = target
        self.trunk = spatial_trunk(encoder)
        size = encoder.input_shape[1]
        out, activation = (2, "tanh") if target == "lab_ab" else (3, "sigmoid")
        self.decoder = decoder(self.trunk.output_shape[1:], size, decoder_width, out, activation)
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.loss_tracker]

    def call(self, x, training=False):
        return self.decoder(self.trunk(gray3(x), training=training), training=training)

    def colour_target(self, x):
        return rgb_to_lab(x)[..., 1:] / AB_SCALE if self.target == "lab_ab" else x

    def train_step(self, data):
        x = keras.utils.unpack_x_y_sample_weight(data)[0]
        with tf.GradientTape() as tape:
            loss = colorization_loss(self.colour_target(x), self(x, training=True))
            # replica_share: 1/replicas (gradients are summed over replicas); scale_loss: mixed_float16
            scaled = self.optimizer.scale_loss(replica_share(loss))
        self.optimizer.apply(tape.gradient(scaled, self.trainable_variables), self.trainable_variables)
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    def test_step(self, data):
        x = keras.utils.unpack_x_y_sample_weight(data)[0]
        self.loss_tracker.update_state(colorization_loss(self.colour_target(x), self(x, training=False)))
        return {"loss": self.loss_tracker.result()}

    def plot_examples(self, path: Path, images: np.ndarray) -> bool:
        """Input (gray), predicted colour and the true image, as RGB in [0, 1]."""
        from sslrun.report.plots import plot_colorization_examples

        pred = self(images, training=False)
        if self.target == "lab_ab":
            lab = rgb_to_lab(images)
            pred = lab_to_rgb(tf.concat([lab[..., :1], pred * AB_SCALE], axis=-1))
        plot_colorization_examples(gray3(images).numpy(), pred.numpy(), np.asarray(images), path)
        return True

    def finalize_encoder(self) -> None:
        """Fold the first convolution onto the luminance (see the module docstring)."""
        fold_first_conv_to_luma(self.encoder)

    @classmethod
    def create(
        cls,
        encoder: keras.Model,
        *,
        target: str = "lab_ab",
        decoder_width: int = 128,
        seed: int = 0,
        num_classes: int = 0,
    ) -> ColorizationTask:
        if target not in TARGETS:
            raise ConfigError(f"pretext.target={target!r}: use one of {', '.join(TARGETS)}")
        if encoder.input_shape[-1] != 3:
            raise ConfigError("colorization needs colour (3-channel) images")
        return cls(encoder, target, decoder_width, name=cls.task_name)


def fold_first_conv_to_luma(encoder: keras.Model) -> None:
    conv = next(layer for layer in encoder.layers if isinstance(layer, keras.layers.Conv2D))
    kernel = conv.kernel.numpy()  # (kh, kw, 3, filters)
    folded = kernel.sum(axis=2, keepdims=True) * np.asarray(LUMA, kernel.dtype)[None, None, :, None]
    conv.kernel.assign(folded)
