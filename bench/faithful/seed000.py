"""Seed 000 as its blog post wrote it ("Implementing Image Rotation Pretext Training for Self
Supervised Learning using Keras", Fashion-MNIST; claimed test accuracy 84.32%).

Pipeline, in the post's order:
  - keras.datasets.fashion_mnist.load_data(); X_train/255 and X_test/255 (float64);
    X_val = X_test[:5000], X_test = X_test[5000:].
  - X_unlabeled = X_train[10000:] (50,000); X_labeled, y_labeled = X_train[:10000].
  - Four float64 copies (.copy() and np.rot90 by 90/180/270 degrees), np.full pseudo-labels,
    np.concatenate (200,000 images), unison_shuffled_copies (np.random.permutation, fancy-index
    copies); X_rot_val = the first 10,000, X_rot_train = the other 190,000.
  - Sequential CNN: Conv64/7x7 -> MaxPool -> Conv128 -> Conv128 -> MaxPool -> Conv256 -> Conv256
    -> MaxPool -> Flatten -> Dense128 -> Dropout0.5 -> Dense64 -> Dropout0.5 -> Dense(4, softmax);
    compile(sparse_categorical_crossentropy, "sgd"); fit(epochs=5, validation_data=rot val),
    Keras' default batch size 32.
  - model.pop(); add Dense(10, name='dense_3', softmax); layers named dense_3, dense_1, dense,
    dropout, dropout_1 trainable, every other layer (the convs) frozen; compile("sgd");
    fit(X_labeled, y_labeled, validation_data=(X_val, y_val), epochs=10).
  - Metric: model.evaluate(X_test, y_test) accuracy on X_test[5000:] (the post: 84.32%).

Deviations: keras.datasets' download is replaced by the same arrays read from local IDX files;
`input_shape=` on the first Conv2D is written as a keras.Input (Keras 3's form, same model);
seeded (--seed) for repeatability (the post sets no seed).

--quick: 1,250 unlabeled images (X_train[10000:11250]: 5,000 rotated, the first 500 of the
shuffled set as rotation validation instead of 10,000), 1 pretext epoch instead of 5,
1 downstream epoch instead of 10; labeled set, validation and test sets unchanged.
"""

from __future__ import annotations

import time

import numpy as np
from common import FASHION, Clock, finish, load_data, parser


def unison_shuffled_copies(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    assert len(a) == len(b)
    p = np.random.permutation(len(a))
    return a[p], b[p]


def build_model():
    import keras

    return keras.models.Sequential(
        [
            keras.Input(shape=[28, 28, 1]),
            keras.layers.Conv2D(64, 7, activation="relu", padding="same"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(128, 3, activation="relu", padding="same"),
            keras.layers.Conv2D(128, 3, activation="relu", padding="same"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(256, 3, activation="relu", padding="same"),
            keras.layers.Conv2D(256, 3, activation="relu", padding="same"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(4, activation="softmax"),
        ]
    )


def main() -> None:
    args = parser(__doc__).parse_args()
    clock = Clock()
    import keras

    keras.utils.set_random_seed(args.seed)
    n_unlabeled, n_rot_val = (1250, 500) if args.quick else (50000, 10000)
    pretext_epochs, down_epochs = (1, 1) if args.quick else (5, 10)

    (X_train, y_train), (X_test, y_test) = load_data(FASHION)
    X_train = X_train / 255
    X_test = X_test / 255
    X_val, y_val = X_test[:5000], y_test[:5000]
    X_test, y_test = X_test[5000:], y_test[5000:]
    X_unlabeled = X_train[10000 : 10000 + n_unlabeled]
    X_labeled, y_labeled = X_train[:10000], y_train[:10000]

    X_train_0 = X_unlabeled.copy()
    X_train_90 = np.rot90(X_unlabeled, axes=(1, 2))
    X_train_180 = np.rot90(X_unlabeled, 2, axes=(1, 2))
    X_train_270 = np.rot90(X_unlabeled, 3, axes=(1, 2))
    y_train_0 = np.full((n_unlabeled), 0)
    y_train_90 = np.full((n_unlabeled), 1)
    y_train_180 = np.full((n_unlabeled), 2)
    y_train_270 = np.full((n_unlabeled), 3)
    X_full = np.concatenate((X_train_0, X_train_90, X_train_180, X_train_270), axis=0)
    y_full = np.concatenate((y_train_0, y_train_90, y_train_180, y_train_270), axis=0)
    X_shuffled, y_shuffled = unison_shuffled_copies(X_full, y_full)
    X_rot_val, X_rot_train = X_shuffled[:n_rot_val], X_shuffled[n_rot_val:]
    y_rot_val, y_rot_train = y_shuffled[:n_rot_val], y_shuffled[n_rot_val:]
    X_rot_val = X_rot_val.reshape(-1, 28, 28, 1)
    X_rot_train = X_rot_train.reshape(-1, 28, 28, 1)

    model = build_model()
    model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd", metrics=["accuracy"])
    started = time.perf_counter()
    history = model.fit(
        X_rot_train, y_rot_train, epochs=pretext_epochs, validation_data=(X_rot_val, y_rot_val), verbose=2
    )
    clock.pretext(pretext_epochs * len(X_rot_train), time.perf_counter() - started)
    pretext_accuracy = history.history["val_accuracy"][-1]

    model.pop()
    model.add(keras.layers.Dense(10, name="dense_3", activation="softmax"))
    names = [layer.name for layer in model.layers]
    # The post's freeze list relies on Keras' automatic names in a fresh session.
    assert {"dense", "dense_1", "dense_3", "dropout", "dropout_1"} <= set(names), names
    for layer in model.layers:
        layer.trainable = layer.name in ["dense_3", "dense_1", "dense", "dropout", "dropout_1"]
    X_labeled = X_labeled.reshape(-1, 28, 28, 1)
    X_val = X_val.reshape(-1, 28, 28, 1)
    X_test = X_test.reshape(-1, 28, 28, 1)
    model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd", metrics=["accuracy"])
    model.fit(X_labeled, y_labeled, validation_data=(X_val, y_val), epochs=down_epochs, verbose=2)
    _, test_accuracy = model.evaluate(X_test, y_test, verbose=0)
    finish(
        clock.result(
            protocol="seed000",
            test_accuracy=float(test_accuracy),
            test_images=int(len(X_test)),
            pretext_val_accuracy=float(pretext_accuracy),
            quick=args.quick,
            notes=f"{n_unlabeled} unlabeled x 4 rotations (float64, {n_rot_val} rotation val), "
            f"{pretext_epochs} pretext epochs batch 32 SGD 0.01; convs frozen, "
            f"{down_epochs} epochs on 10,000 labels; accuracy on Fashion-MNIST test[5000:]",
        ),
        args.out,
    )


if __name__ == "__main__":
    main()
