"""Small CNN encoders: a fast default and the conv stacks of seeds 000, 001, 002, 004."""

from __future__ import annotations

import keras
from keras import layers

from sslrun.encoders.registry import ENCODERS, NECK_PREFIX, scaled
from sslrun.errors import ConfigError


@ENCODERS.register("small_cnn")
def small_cnn(input_shape: tuple[int, int, int], width: float = 1.0) -> keras.Model:
    """Conv 32-32 / 64-64 / 128 with batch norm; global average pooling to 128*width features."""
    inputs = keras.Input(shape=input_shape)
    x = inputs
    for i, filters in enumerate((32, 32, 64, 64, 128)):
        x = layers.Conv2D(scaled(filters, width), 3, padding="same", use_bias=False)(x)
        # momentum 0.9: stats settle in tens of steps (few-label runs), not hundreds
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.ReLU()(x)
        if i in (1, 3):
            x = layers.MaxPooling2D(2)(x)
    features = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, features, name="small_cnn")


@ENCODERS.register("wide_cnn")
def wide_cnn(input_shape: tuple[int, int, int], width: float = 1.0) -> keras.Model:
    """Conv 64 / 128 / 256 / 512 with batch norm and ReLU, a 2x2 max-pool between them (the widths
    double as the grid halves); global average pooling to 512*width features.

    For 32x32 colour: one conv per resolution keeps it at 2x small_cnn's multiply-adds while its
    features are 4x wider; measured on CIFAR-10 with 10 labels per class after about 12 minutes of
    SimCLR here (bench/README.md), label propagation reached 41.6% against small_cnn's 39.2%.
    """
    inputs = keras.Input(shape=input_shape)
    x = inputs
    for i, filters in enumerate((64, 128, 256, 512)):
        if i:
            x = layers.MaxPooling2D(2)(x)
        x = layers.Conv2D(scaled(filters, width), 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=0.9)(x)  # as small_cnn
        x = layers.ReLU()(x)
    features = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, features, name="wide_cnn")


@ENCODERS.register("seed000_cnn")
def seed000_cnn(input_shape: tuple[int, int, int], width: float = 1.0) -> keras.Model:
    """Seed 000's network without its softmax: the conv stack plus its dense 128-64 neck."""
    conv = lambda f, k: layers.Conv2D(scaled(f, width), k, activation="relu", padding="same")  # noqa: E731
    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            conv(64, 7),
            layers.MaxPooling2D(2),
            conv(128, 3),
            conv(128, 3),
            layers.MaxPooling2D(2),
            conv(256, 3),
            conv(256, 3),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(128, activation="relu", name=f"{NECK_PREFIX}dense_1"),
            layers.Dropout(0.5, name=f"{NECK_PREFIX}dropout_1"),
            layers.Dense(64, activation="relu", name=f"{NECK_PREFIX}dense_2"),
            layers.Dropout(0.5, name=f"{NECK_PREFIX}dropout_2"),
        ],
        name="seed000_cnn",
    )


@ENCODERS.register("seed001_cnn")
def seed001_cnn(input_shape: tuple[int, int, int], width: float = 1.0) -> keras.Model:
    """Seed 001's transferred layers: Conv64/3x3 stride 2, pool, Conv32, pool, flatten (288-d)."""
    init = "random_normal"  # the document's initializer
    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Conv2D(
                scaled(64, width),
                3,
                strides=2,
                padding="same",
                activation="relu",
                kernel_initializer=init,
            ),
            layers.MaxPooling2D(2, strides=2),
            layers.Conv2D(scaled(32, width), 3, padding="same", activation="relu", kernel_initializer=init),
            layers.MaxPooling2D(2, strides=2),
            layers.Flatten(),
        ],
        name="seed001_cnn",
    )


@ENCODERS.register("seed002_cnn")
def seed002_cnn(input_shape: tuple[int, int, int], width: float = 1.0) -> keras.Model:
    """Seed 002's SimCLR encoder: 4x Conv128/3x3 stride 2, flatten, dense 128 neck.

    As in the document (keras-io's STL-10 SimCLR), the convs are unpadded: images
    must be at least 31x31; 96x96 STL-10 gives 5x5x128 before the flatten.
    """
    if min(input_shape[:2]) < 31:
        raise ConfigError(
            f"encoder 'seed002_cnn' needs images of at least 31x31 (four unpadded stride-2 "
            f"3x3 convs), got {input_shape[0]}x{input_shape[1]}: use a dataset with larger "
            "images, or a padded encoder such as small_cnn or resnet20"
        )
    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            *[layers.Conv2D(scaled(128, width), 3, strides=2, activation="relu") for _ in range(4)],
            layers.Flatten(),
            layers.Dense(128, activation="relu", name=f"{NECK_PREFIX}dense"),
        ],
        name="seed002_cnn",
    )


@ENCODERS.register("seed004_cnn")
def seed004_cnn(input_shape: tuple[int, int, int], width: float = 1.0) -> keras.Model:
    """Seed 004's transferred layers: Conv64/2x2, Conv32/2x2 with pools and dropout, dense 256 neck."""
    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Conv2D(scaled(64, width), 2, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Dropout(0.3),
            layers.Conv2D(scaled(32, width), 2, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Dropout(0.3),
            layers.Flatten(),
            layers.Dense(256, activation="relu", name=f"{NECK_PREFIX}dense"),
            layers.Dropout(0.5, name=f"{NECK_PREFIX}dropout"),
        ],
        name="seed004_cnn",
    )
