"""Seed 002 ("Implementing SimCLR for Self-Supervised Learning from Images with Keras", STL-10)
as the post describes it. NOT RUNNABLE ON THIS MACHINE: STL-10 (2.6 GB) is not here. It runs
on any folder in STL-10's original binary layout (--data DIR holding stl10_binary/ or its
files), so a small generated fixture exercises it (bench/README.md shows how).

The post shows no code; it narrates, component by component, the Keras example
"Semi-supervised image classification using contrastive pretraining with SimCLR" (keras.io,
A. Beres) that its names come from: unlabeled_dataset_size, labeled_dataset_size, num_epochs,
batch_size, width, temperature, contrastive_augmentation, classification_augmentation,
prepare_dataset, RandomColorAffine, get_augmenter, get_encoder, ContrastiveModel. The values
below are that example's: 100,000 unlabeled + 5,000 labeled images, 20 epochs, batch 525
(200 steps: 500 unlabeled + 25 labeled per step), width 128, temperature 0.1; strong
augmentation min_area 0.25, brightness 0.6, jitter 0.2; weak 0.75, 0.3, 0.1.

Pipeline:
  - Data: unlabeled and labeled images shuffled with buffers of 10 batches (no file shuffling),
    batched 500 / 25 and zipped; the test split batched by 525.
  - Augmenter: Rescaling(1/255), RandomFlip("horizontal"), RandomTranslation(z/2, z/2),
    RandomZoom((-z, 0)) with z = 1 - sqrt(min_area), RandomColorAffine (per-image brightness
    scale and 3x3 colour jitter matrix, clipped to [0, 1]).
  - Encoder: 4 x Conv2D(128, 3, strides 2, relu, valid), Flatten, Dense(128, relu).
  - Baseline: Sequential(weak augmenter, new encoder, Dense(10)), Adam, sparse CE from logits,
    20 epochs on the labeled batches (25 images), validation on the test split.
  - Contrastive model: two strong views of (unlabeled + labeled) images, projection head
    Dense(128, relu) -> Dense(128), symmetric NT-Xent at temperature 0.1 (cosine
    similarities / t, cross-entropy both ways), Adam; plus a linear probe Dense(10) trained on
    weakly augmented labeled images over the frozen encoder (inference mode), its own Adam.
  - Fine-tuning: Sequential(weak augmenter, the pretrained encoder, Dense(10)), Adam,
    20 epochs on the labeled batches, validation on the test split.
  - Metric, as the post/example measures it: the maximal validation (= test split) accuracy
    over the epochs, for the baseline (scratch_accuracy), the linear probe during
    pretraining (probe_accuracy) and the fine-tuned model (test_accuracy).

Deviations: tensorflow_datasets' stl10 splits are read from the binary files instead (same
images; unlabeled_X.bin memory-mapped and streamed in file order like tfds without
shuffle_files); dataset sizes come from the files (100,000 / 5,000 / 8,000 for the real
STL-10); written for Keras 3 (keras.ops / keras.random); seeded (--seed).

--quick: 20 contrastive steps (one epoch of 20 zipped batches of 500 + 25 instead of
20 epochs x 200), 1 epoch each for the baseline and the fine-tuning (200 labeled batches
of 25) instead of 20; validation on the whole test split.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
from common import Clock, finish, parser

UNLABELED_SIZE, LABELED_SIZE = 100_000, 5_000  # the example's; capped by what the files hold
NUM_EPOCHS = 20
BATCH_SIZE = 525  # 200 steps per epoch on the real data
WIDTH = 128
TEMPERATURE = 0.1
CONTRASTIVE_AUG = {"min_area": 0.25, "brightness": 0.6, "jitter": 0.2}
CLASSIFICATION_AUG = {"min_area": 0.75, "brightness": 0.3, "jitter": 0.1}
SIDE, IMAGE_BYTES = 96, 96 * 96 * 3
QUICK_STEPS = 20


# ----------------------------------------------------------------------------- data


def stl10_folder(path: Path) -> Path:
    for candidate in (path / "stl10_binary", path):
        if (candidate / "train_X.bin").is_file():
            return candidate
    raise SystemExit(
        f"no STL-10 binary files under {path}: expected stl10_binary/train_X.bin, "
        "test_X.bin, unlabeled_X.bin (see bench/README.md for a small fixture)"
    )


def images_memmap(path: Path) -> np.ndarray:
    """(n, 3, 96, 96) column-major planes, memory-mapped (nothing read yet)."""
    n = path.stat().st_size // IMAGE_BYTES
    return np.memmap(path, dtype=np.uint8, mode="r", shape=(n, 3, SIDE, SIDE))


def to_hwc(planes: np.ndarray) -> np.ndarray:
    """STL-10 stores each channel column by column: [c, col, row] -> [row, col, c]."""
    return np.ascontiguousarray(planes.transpose(0, 3, 2, 1))


def labeled(folder: Path, split: str, limit: int | None = None):
    x = to_hwc(np.asarray(images_memmap(folder / f"{split}_X.bin")[:limit]))
    y = np.fromfile(folder / f"{split}_y.bin", dtype=np.uint8)[: len(x)].astype(np.int64) - 1
    return x, y


def streamed(planes: np.ndarray, chunk: int = 1000):
    """A tf.data source over a memmap in file order, decoded chunk by chunk."""
    import tensorflow as tf

    def chunks():
        for start in range(0, len(planes), chunk):
            x = to_hwc(np.asarray(planes[start : start + chunk]))
            yield x, np.full(len(x), -1, np.int64)  # tfds' label of an unlabelled image

    sig = (tf.TensorSpec((None, SIDE, SIDE, 3), tf.uint8), tf.TensorSpec((None,), tf.int64))
    return tf.data.Dataset.from_generator(chunks, output_signature=sig).unbatch()


def prepare_dataset(folder: Path, seed: int):
    """prepare_dataset(): zipped (unlabeled, labeled) batches, the labeled batches, test batches."""
    import tensorflow as tf

    unlabeled = images_memmap(folder / "unlabeled_X.bin")[:UNLABELED_SIZE]
    x_train, y_train = labeled(folder, "train", LABELED_SIZE)
    x_test, y_test = labeled(folder, "test")
    steps_per_epoch = (len(unlabeled) + len(x_train)) // BATCH_SIZE
    unlabeled_batch_size = len(unlabeled) // steps_per_epoch
    labeled_batch_size = len(x_train) // steps_per_epoch
    print(
        f"{len(unlabeled)} unlabeled, {len(x_train)} labeled, {len(x_test)} test; batch size "
        f"{unlabeled_batch_size} (unlabeled) + {labeled_batch_size} (labeled)",
        flush=True,
    )
    unlabeled_ds = streamed(unlabeled).shuffle(10 * unlabeled_batch_size, seed=seed)
    unlabeled_ds = unlabeled_ds.batch(unlabeled_batch_size)
    labeled_ds = tf.data.Dataset.from_tensor_slices((x_train, y_train))
    labeled_ds = labeled_ds.shuffle(10 * labeled_batch_size, seed=seed).batch(labeled_batch_size)
    test_ds = tf.data.Dataset.from_tensor_slices((x_test, y_test)).batch(BATCH_SIZE)
    test_ds = test_ds.prefetch(tf.data.AUTOTUNE)
    train_ds = tf.data.Dataset.zip((unlabeled_ds, labeled_ds)).prefetch(tf.data.AUTOTUNE)
    sizes = {
        "unlabeled": len(unlabeled),
        "labeled": len(x_train),
        "test": len(x_test),
        "steps_per_epoch": steps_per_epoch,
        "images_per_step": unlabeled_batch_size + labeled_batch_size,
    }
    return train_ds, labeled_ds, test_ds, sizes


# ----------------------------------------------------------------------------- models


def augmenter(min_area: float, brightness: float, jitter: float, seed: int):
    import keras
    from keras import layers, ops

    class RandomColorAffine(layers.Layer):
        """Per image: brightness scale (same for R, G, B) + a random 3x3 colour mixing matrix."""

        def __init__(self, brightness: float = 0, jitter: float = 0, **kwargs) -> None:
            super().__init__(**kwargs)
            self.brightness, self.jitter = brightness, jitter
            self.seed_generator = keras.random.SeedGenerator(seed)

        def call(self, images, training=True):
            if not training:
                return images
            n = ops.shape(images)[0]
            scale = 1 + keras.random.uniform((n, 1, 1, 1), -self.brightness, self.brightness, seed=self.seed_generator)
            mix = keras.random.uniform((n, 1, 3, 3), -self.jitter, self.jitter, seed=self.seed_generator)
            transform = ops.eye(3)[None, None] * scale + mix
            return ops.clip(ops.matmul(images, transform), 0, 1)

    zoom = 1.0 - math.sqrt(min_area)
    return keras.Sequential(
        [
            layers.Rescaling(1 / 255),
            layers.RandomFlip("horizontal", seed=seed),
            layers.RandomTranslation(zoom / 2, zoom / 2, seed=seed + 1),
            layers.RandomZoom((-zoom, 0.0), (-zoom, 0.0), seed=seed + 2),
            RandomColorAffine(brightness, jitter),
        ]
    )


def encoder():
    import keras
    from keras import layers

    return keras.Sequential(
        [keras.Input((SIDE, SIDE, 3))]  # built up front, so optimizers can be built in compile
        + [layers.Conv2D(WIDTH, 3, strides=2, activation="relu") for _ in range(4)]
        + [layers.Flatten(), layers.Dense(WIDTH, activation="relu")],
        name="encoder",
    )


def contrastive_model(seed: int):
    import keras
    import tensorflow as tf
    from keras import layers, ops

    class ContrastiveModel(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.strong = augmenter(**CONTRASTIVE_AUG, seed=seed)
            self.weak = augmenter(**CLASSIFICATION_AUG, seed=seed + 10)
            self.encoder = encoder()
            self.projection_head = keras.Sequential(
                [keras.Input((WIDTH,)), layers.Dense(WIDTH, activation="relu"), layers.Dense(WIDTH)],
                name="projection_head",
            )
            self.linear_probe = keras.Sequential([keras.Input((WIDTH,)), layers.Dense(10)], name="linear_probe")

        def compile(self, contrastive_optimizer, probe_optimizer, **kwargs) -> None:
            super().compile(**kwargs)
            self.contrastive_optimizer = contrastive_optimizer
            self.probe_optimizer = probe_optimizer
            # Keras 3 builds an optimizer for a fixed set of variables: build both here,
            # outside the traced train_step.
            contrastive_optimizer.build(self.encoder.trainable_weights + self.projection_head.trainable_weights)
            probe_optimizer.build(self.linear_probe.trainable_weights)
            self.probe_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            self.c_loss = keras.metrics.Mean(name="c_loss")
            self.c_acc = keras.metrics.SparseCategoricalAccuracy(name="c_acc")
            self.p_loss = keras.metrics.Mean(name="p_loss")
            self.p_acc = keras.metrics.SparseCategoricalAccuracy(name="p_acc")

        @property
        def metrics(self):
            return [self.c_loss, self.c_acc, self.p_loss, self.p_acc]

        def nt_xent(self, z1, z2):
            z1 = z1 / ops.norm(z1, axis=1, keepdims=True)
            z2 = z2 / ops.norm(z2, axis=1, keepdims=True)
            sim = ops.matmul(z1, ops.transpose(z2)) / TEMPERATURE
            targets = ops.arange(ops.shape(z1)[0])
            self.c_acc.update_state(targets, sim)
            self.c_acc.update_state(targets, ops.transpose(sim))
            ce = keras.losses.sparse_categorical_crossentropy
            return (ce(targets, sim, from_logits=True) + ce(targets, ops.transpose(sim), from_logits=True)) / 2

        def train_step(self, data):
            (unlabeled_images, _), (labeled_images, labels) = data
            images = ops.concatenate((unlabeled_images, labeled_images), axis=0)
            view1 = self.strong(images, training=True)
            view2 = self.strong(images, training=True)
            weights = self.encoder.trainable_weights + self.projection_head.trainable_weights
            with tf.GradientTape() as tape:
                z1 = self.projection_head(self.encoder(view1, training=True), training=True)
                z2 = self.projection_head(self.encoder(view2, training=True), training=True)
                loss = self.nt_xent(z1, z2)
            self.contrastive_optimizer.apply(tape.gradient(loss, weights), weights)
            self.c_loss.update_state(loss)
            weak = self.weak(labeled_images, training=True)
            with tf.GradientTape() as tape:
                logits = self.linear_probe(self.encoder(weak, training=False), training=True)
                probe_loss = self.probe_loss(labels, logits)
            probe = self.linear_probe.trainable_weights
            self.probe_optimizer.apply(tape.gradient(probe_loss, probe), probe)
            self.p_loss.update_state(probe_loss)
            self.p_acc.update_state(labels, logits)
            return {m.name: m.result() for m in self.metrics}

        def test_step(self, data):
            images, labels = data
            features = self.encoder(self.weak(images, training=False), training=False)
            logits = self.linear_probe(features, training=False)
            self.p_loss.update_state(self.probe_loss(labels, logits))
            self.p_acc.update_state(labels, logits)
            return {m.name: m.result() for m in self.metrics[2:]}

    return ContrastiveModel()


def supervised(encoder_model, seed: int):
    import keras
    from keras import layers

    model = keras.Sequential([augmenter(**CLASSIFICATION_AUG, seed=seed), encoder_model, layers.Dense(10)])
    model.compile(
        optimizer=keras.optimizers.Adam(),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc")],
    )
    return model


def main() -> None:
    p = parser(__doc__)
    p.add_argument(
        "--data", type=Path, required=True, help="folder with STL-10's binary files (stl10_binary/ or the files)"
    )
    args = p.parse_args()
    clock = Clock()
    import keras

    keras.utils.set_random_seed(args.seed)
    epochs = 1 if args.quick else NUM_EPOCHS
    train_ds, labeled_ds, test_ds, sizes = prepare_dataset(stl10_folder(args.data), args.seed)
    pretrain_ds = train_ds.take(QUICK_STEPS) if args.quick else train_ds

    baseline = supervised(encoder(), args.seed + 20)
    base_hist = baseline.fit(labeled_ds, epochs=epochs, validation_data=test_ds, verbose=2)

    model = contrastive_model(args.seed)
    model.compile(contrastive_optimizer=keras.optimizers.Adam(), probe_optimizer=keras.optimizers.Adam())
    started = time.perf_counter()
    pre_hist = model.fit(pretrain_ds, epochs=epochs, validation_data=test_ds, verbose=2)
    steps = sizes["steps_per_epoch"]  # the zip's batches (+ at most one partial)
    steps = min(steps, QUICK_STEPS) if args.quick else steps
    clock.pretext(epochs * steps * sizes["images_per_step"], time.perf_counter() - started)

    finetuning = supervised(model.encoder, args.seed + 30)
    fine_hist = finetuning.fit(labeled_ds, epochs=epochs, validation_data=test_ds, verbose=2)
    finish(
        clock.result(
            protocol="seed002",
            test_accuracy=float(max(fine_hist.history["val_acc"])),
            scratch_accuracy=float(max(base_hist.history["val_acc"])),
            probe_accuracy=float(max(pre_hist.history["val_p_acc"])),
            test_images=sizes["test"],
            sizes=sizes,
            quick=args.quick,
            notes=f"SimCLR (keras.io example's settings), {epochs} epochs"
            + (f" x {QUICK_STEPS} steps" if args.quick else "")
            + "; maximal validation accuracy on the test split, as the post reports it",
        ),
        args.out,
    )


if __name__ == "__main__":
    main()
