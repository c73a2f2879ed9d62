"""NNCLR (Dwibedi et al. 2021): each view's positive is the nearest neighbour of the other view's projection in
a support set of past projections.

The support set is a FIFO queue of the last `queue_size` l2-normalised projections of view 1 (over the
global batch), filled after each training step (never in validation) and started from random unit
vectors, as in the paper's and solo-learn's code. The queue and its write position are task variables
(not trained), so the epoch checkpoints save them and a resumed run continues from the same support set.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from sslrun.config import NNCLRConfig
from sslrun.errors import ConfigError
from sslrun.pretext.losses import nearest_neighbours, nnclr_loss
from sslrun.pretext.registry import PRETEXTS
from sslrun.pretext.replicas import gather_batch
from sslrun.pretext.twoview import TwoViewTask


@PRETEXTS.register("nnclr")
class NNCLRTask(TwoViewTask):
    schema = NNCLRConfig
    projector_layers = 3  # the paper's 3-layer projector

    def __init__(
        self,
        encoder,
        augmenter,
        projector,
        num_classes,
        *,
        predictor,
        temperature: float,
        queue_size: int,
        queue_seed: int = 0,
        **kwargs,
    ):
        super().__init__(encoder, augmenter, projector, num_classes, **kwargs)
        self.predictor, self.temperature = predictor, temperature
        self.queue_size, self.queue_seed = queue_size, queue_seed

    def build(self, input_shape):
        super().build(input_shape)
        projected = self.projector.compute_output_shape(self.encoder.compute_output_shape(input_shape))
        self.predictor.build(projected)
        # one replica's writes for all: every replica computes the same gathered projections
        self.queue = self.add_weight(
            shape=(self.queue_size, projected[-1]),
            name="support_queue",
            trainable=False,
            initializer=keras.initializers.RandomNormal(seed=self.queue_seed),
            dtype="float32",
            aggregation="only_first_replica",
        )
        self.queue_next = self.add_weight(
            shape=(),
            name="support_queue_next",
            trainable=False,
            dtype="int32",
            initializer="zeros",
            aggregation="only_first_replica",
        )

    def pair_loss(self, x1, x2, training: bool):
        z1, z2 = self(x1, training=training), self(x2, training=training)
        p1, p2 = self.predictor(z1, training=training), self.predictor(z2, training=training)
        z1, z2, p1, p2 = gather_batch(z1, z2, p1, p2)
        nn1, nn2 = nearest_neighbours(z1, self.queue), nearest_neighbours(z2, self.queue)
        loss = (nnclr_loss(nn1, p2, self.temperature) + nnclr_loss(nn2, p1, self.temperature)) / 2.0
        if training:
            self.enqueue(z1)
        return loss

    def enqueue(self, z) -> None:
        """Write the batch's l2-normalised projections over the oldest rows (at most the queue's size)."""
        z = tf.math.l2_normalize(tf.cast(tf.stop_gradient(z), tf.float32), axis=-1)
        z = z[tf.maximum(tf.shape(z)[0] - self.queue_size, 0) :]  # a batch larger than the queue: its last rows
        n = tf.shape(z)[0]
        rows = (self.queue_next + tf.range(n)) % self.queue_size
        self.queue.assign(tf.tensor_scatter_nd_update(self.queue, rows[:, None], z))
        self.queue_next.assign((self.queue_next + n) % self.queue_size)

    @classmethod
    def create(cls, encoder: keras.Model, *, queue_size: int, seed: int = 0, **params: Any) -> NNCLRTask:
        """TwoViewTask's projector and predictor, then the queue (creation order fixes their initial values under a
        seed)."""
        if queue_size < 1:
            raise ConfigError(
                f"pretext.queue_size={queue_size}: the support set needs at least one row; the paper's "
                "is many batches long (8192 here by default)"
            )
        return super().create(encoder, queue_size=queue_size, queue_seed=seed, seed=seed, **params)
