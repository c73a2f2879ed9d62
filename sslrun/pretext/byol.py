"""BYOL (Grill et al. 2020): predict a slowly moving (EMA) target network's projection of the other view."""

from __future__ import annotations

import keras
import tensorflow as tf

from sslrun.config import BYOLConfig
from sslrun.pretext.losses import byol_loss
from sslrun.pretext.registry import PRETEXTS
from sslrun.pretext.twoview import TwoViewTask


@PRETEXTS.register("byol")
class BYOLTask(TwoViewTask):
    schema = BYOLConfig

    def __init__(self, encoder, augmenter, projector, num_classes, *, predictor, ema: float, **kwargs):
        super().__init__(encoder, augmenter, projector, num_classes, **kwargs)
        self.predictor = predictor
        self.ema = ema
        self.target_encoder = keras.models.clone_model(encoder)
        self.target_projector = keras.models.clone_model(projector)

    def build(self, input_shape):
        super().build(input_shape)
        features = self.encoder.compute_output_shape(input_shape)
        self.target_encoder.build(input_shape)
        self.target_projector.build(features)
        self.predictor.build(self.projector.compute_output_shape(features))
        for target, online in self._pairs():  # the target starts as a copy of the online network
            target.assign(online)

    def _pairs(self):
        return list(
            zip(
                self.target_encoder.weights + self.target_projector.weights,
                self.encoder.weights + self.projector.weights,
                strict=True,
            )
        )

    def ssl_variables(self) -> list:
        target = {id(v) for v in self.target_encoder.weights + self.target_projector.weights}
        return [v for v in super().ssl_variables() if id(v) not in target]

    def after_step(self) -> None:
        # Moving statistics of BatchNorm are averaged like the weights.
        for target, online in self._pairs():
            target.assign(self.ema * target + (1.0 - self.ema) * tf.cast(online, target.dtype))

    def _target(self, x):
        return tf.stop_gradient(self.target_projector(self.target_encoder(x, training=False), training=False))

    def pair_loss(self, x1, x2, training: bool):
        p1 = self.predictor(self(x1, training=training), training=training)
        p2 = self.predictor(self(x2, training=training), training=training)
        return byol_loss(p1, self._target(x2)) + byol_loss(p2, self._target(x1))
