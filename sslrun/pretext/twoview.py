"""Joint-embedding pretext tasks: two augmented views of each image, an encoder, a projector, a loss.

SimCLR, BYOL, Barlow Twins and VICReg differ only in `pair_loss` and their schema's
loss parameters (and BYOL in its target network); everything else lives here once:
the view augmenter, the projector, the train/test steps, and the online linear probe
of the keras.io SimCLR example (a linear classifier trained on the labeled subset on
top of stop-gradient features, reported every epoch as `probe_accuracy`). Their
schemas share `TwoViewConfig` (sslrun/config.py): augmentation, projector, probe.

A new two-view method: a `TwoViewConfig` subclass with its projector sizes and loss
parameters, a `TwoViewTask` subclass naming it as `schema`, with an `__init__` that
takes those parameters and a `pair_loss`, registered with `@PRETEXTS.register(name)`,
and conf/pretext/<name>.yaml (docs/contributing.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf

from sslrun.config import TwoViewConfig
from sslrun.encoders.registry import accept_image_size
from sslrun.errors import ConfigError, SslrunError
from sslrun.precision import dtype_policy
from sslrun.pretext.augment import VIEW_PRESETS, make_view_augmenter
from sslrun.pretext.base import PretextTask
from sslrun.pretext.replicas import gather_batch, replica_share

MIN_VIEW = 8  # pixels: below this the encoders' pooling stages leave nothing to pool


def view_preset(image_size: int, channels: int) -> str:
    """The augmentation preset that fits the images: digits-like grayscale, small colour, large colour."""
    if channels == 1:
        return "mnist"
    return "stl10" if image_size >= 64 else "cifar"


def build_augmenter(
    input_shape: tuple[int, ...], augment: dict[str, Any], seed: int, key: str = "pretext.augment"
) -> keras.Sequential:
    """The view augmenter: a preset (`augment.preset`, `auto` picks by image size and channels) plus overrides."""
    size, channels = input_shape[0], input_shape[2]
    preset = augment.get("preset") or "auto"
    if preset == "auto":
        preset = view_preset(size, channels)
    if preset not in VIEW_PRESETS:
        raise ConfigError(f"{key}.preset={preset!r}: use auto or one of {', '.join(VIEW_PRESETS)}")
    strengths = dict(VIEW_PRESETS[preset])
    if augment.get("crop_min") is not None:
        strengths["crop_scale"] = (augment["crop_min"], 1.0)
    for name in ("flip", "translate", "jitter", "jitter_prob", "grayscale_prob", "blur_prob", "erase_prob"):
        if augment.get(name) is not None:
            strengths[name] = augment[name]
    view_size = augment.get("size")
    if view_size is not None and not MIN_VIEW <= view_size <= size:
        raise SslrunError(
            f"{key}.size={view_size}: the views' side must be between {MIN_VIEW} and the images' "
            f"{size} pixels; null keeps the images' size"
        )
    # Views are made in float32 whatever trainer.precision: they are inputs, not activations, and
    # tf.image.crop_and_resize takes no bfloat16 (layers built under mixed_bfloat16 would cast to it).
    with dtype_policy("float32"):
        return make_view_augmenter(size, channels, seed=seed, view_size=view_size, **strengths)


def mlp(hidden: int, out: int, name: str, layers: int = 2, out_bn: bool = False) -> keras.Sequential:
    """Projector/predictor: (Dense-BN-ReLU) x (layers-1), then a linear Dense (SimCLR v1, BYOL, VICReg);
    out_bn: a BatchNormalization on the output too (SimSiam's and MoCo v3's projectors)."""
    blocks = []
    for _ in range(layers - 1):
        blocks += [keras.layers.Dense(hidden, use_bias=False), keras.layers.BatchNormalization(), keras.layers.ReLU()]
    last = [keras.layers.Dense(out, use_bias=not out_bn)] + ([keras.layers.BatchNormalization()] if out_bn else [])
    return keras.Sequential([*blocks, *last], name=name)


class TwoViewTask(PretextTask):
    """Shared two-view training; subclasses define `pair_loss(x1, x2, training)`.

    `create` passes the schema's fields beyond TwoViewConfig's to `__init__` as keywords."""

    schema: ClassVar[type] = TwoViewConfig
    projector_layers: ClassVar[int] = 2  # Dense layers of the projector (Barlow Twins, VICReg: 3)
    projector_out_bn: ClassVar[bool] = False  # BatchNormalization on the projector's output (SimSiam, MoCo v3)

    def __init__(
        self,
        encoder: keras.Model,
        augmenter: keras.Sequential,
        projector: keras.Sequential,
        num_classes: int,
        probe_lr: float = 1e-3,
        **kwargs,
    ):
        super().__init__(encoder, **kwargs)
        self.augmenter, self.projector = augmenter, projector
        self.probe = keras.layers.Dense(num_classes, name="probe", dtype="float32") if num_classes else None
        self.probe_optimizer = keras.optimizers.Adam(probe_lr)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.probe_loss = keras.metrics.Mean(name="probe_loss")
        self.probe_accuracy = keras.metrics.SparseCategoricalAccuracy(name="probe_accuracy")

    @property
    def uses_labels(self) -> bool:
        """Whether run_pretext feeds (unlabeled batch, labeled batch) pairs: for the online probe."""
        return self.probe is not None

    @property
    def metrics(self):
        return [self.loss_tracker] + ([self.probe_loss, self.probe_accuracy] if self.probe else [])

    def call(self, x, training=False):
        return self.projector(self.encoder(x, training=training), training=training)

    def build(self, input_shape):
        features = self.encoder.compute_output_shape(input_shape)
        self.projector.build(features)
        if self.probe:
            self.probe.build(features)
            self.probe_optimizer.build(self.probe.trainable_variables)
        self.built = True

    def pair_loss(self, x1, x2, training: bool):
        raise NotImplementedError

    def embed_pair(self, x1, x2, training: bool):
        """Projections of both views over the global batch: gathered from every replica, for losses
        that compare examples with each other (NT-Xent, cross-correlation, covariance)."""
        return gather_batch(self(x1, training=training), self(x2, training=training))

    def ssl_variables(self) -> list:
        """What the pretext loss trains: everything but the probe (and BYOL's EMA target)."""
        probe = {id(v) for v in self.probe.trainable_variables} if self.probe else set()
        return [v for v in self.trainable_variables if id(v) not in probe]

    def after_step(self) -> None:
        """Hook after each optimizer step (BYOL's EMA update)."""

    def views(self, x):
        return self.augmenter(x, training=True), self.augmenter(x, training=True)

    def health_views(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Two views of images from an augmenter of their own, seeded: the same pair on every start and
        resume, and the training augmenter's random stream is left as it was."""
        augment, seed = self.view_recipe
        augmenter = build_augmenter(self.encoder.input_shape[1:], augment, seed + 104729)
        x = tf.convert_to_tensor(images)
        return (
            keras.ops.convert_to_numpy(augmenter(x, training=True)),
            keras.ops.convert_to_numpy(augmenter(x, training=True)),
        )

    def plot_examples(self, path: Path, images: np.ndarray) -> bool:
        """Two augmented views of each image, side by side."""
        from sslrun.report.plots import plot_view_pairs

        v1, v2 = self.views(tf.convert_to_tensor(images))
        plot_view_pairs(v1.numpy(), v2.numpy(), path)
        return True

    @classmethod
    def create(
        cls,
        encoder: keras.Model,
        *,
        augment: dict[str, Any],
        projection_hidden: int,
        projection_dim: int,
        predictor_hidden: int | None = None,
        online_probe: bool = True,
        seed: int = 0,
        num_classes: int = 0,
        **params: Any,
    ) -> TwoViewTask:
        """The projector, then the predictor where the schema has predictor_hidden (BYOL, MoCo v3, SimSiam, NNCLR;
        creation order fixes their initial weights under a seed); online_probe=false: no probe, so no labeled
        batches (uses_labels is False); params: the method's own (ema, temperature, ...)."""
        projector = cls.make_projector(projection_hidden, projection_dim)
        if predictor_hidden is not None:
            params["predictor"] = mlp(predictor_hidden, projection_dim, "predictor")
        return make_task(
            cls,
            encoder,
            augment,
            seed,
            projector,
            num_classes if online_probe else 0,
            name=cls.task_name or None,
            **params,
        )

    @classmethod
    def make_projector(cls, hidden: int, out: int) -> keras.Sequential:
        return mlp(hidden, out, "projector", layers=cls.projector_layers, out_bn=cls.projector_out_bn)

    def train_step(self, data):
        images, labeled = data if isinstance(data, tuple) and len(data) == 2 and self.probe else (data, None)
        images = keras.utils.unpack_x_y_sample_weight(images)[0]
        x1, x2 = self.views(images)
        variables = self.ssl_variables()
        with tf.GradientTape() as tape:
            loss = self.pair_loss(x1, x2, training=True)
            # replica_share: 1/replicas (gradients are summed over replicas); scale_loss: mixed_float16
            scaled = self.optimizer.scale_loss(replica_share(loss))
        self.optimizer.apply(tape.gradient(scaled, variables), variables)
        self.after_step()
        self.loss_tracker.update_state(loss)
        if labeled is not None:
            self._probe_step(*labeled, train=True)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        images, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        x1, x2 = self.views(images)  # random views in validation too: the loss is defined on them
        self.loss_tracker.update_state(self.pair_loss(x1, x2, training=False))
        if self.probe is not None and labels is not None:
            self._probe_step(images, labels, train=False)
        return {m.name: m.result() for m in self.metrics}

    def _probe_step(self, images, labels, train: bool) -> None:
        features = tf.stop_gradient(self.encoder(images, training=False))
        with tf.GradientTape() as tape:
            logits = self.probe(features)
            loss = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
            loss = tf.reduce_mean(loss)
            share = replica_share(loss)  # per-example loss: 1/replicas, gradients are summed over replicas
        if train:
            variables = self.probe.trainable_variables
            self.probe_optimizer.apply(tape.gradient(share, variables), variables)
        self.probe_loss.update_state(loss)
        self.probe_accuracy.update_state(labels, logits)


def make_task(
    cls: type[TwoViewTask],
    encoder: keras.Model,
    augment: dict[str, Any],
    seed: int,
    projector: keras.Sequential,
    num_classes: int,
    **kwargs,
) -> TwoViewTask:
    """A two-view task with its augmenter, built (projector, probe, BYOL's target), ready to compile."""
    augmenter = build_augmenter(encoder.input_shape[1:], augment, seed)
    view_shape = tuple(augmenter.output_shape[1:])
    if view_shape != tuple(encoder.input_shape[1:]):
        accept_image_size(encoder, view_shape, "pretext.augment.size")
    task = cls(encoder, augmenter, projector, num_classes, **kwargs)
    object.__setattr__(task, "view_recipe", (augment, seed))  # for health_views; not tracked state
    task.build((None, *encoder.input_shape[1:]))
    return task
