"""Seed 001 as its notebook wrote it (SDDO Lab, "Self-supervised Learning", MNIST rotation).

Pipeline, in the notebook's order:
  - keras.datasets.mnist.load_data(); X_train[:1000], X_test[:300]; pixels stay 0..255 (the
    notebook never divides by 255).
  - X_rotate: float64 zeros (4000, 28, 28) filled in a Python loop with the notebook's index
    pattern 4*i-4 .. 4*i-1 (so image 0 lands in rows 3996..3999 and image i >= 1 in rows
    4i-4..4i-1), rotations by transpose/flip, one-hot float64 Y_rotate.
  - Pretext CNN: Conv64/3x3 s2 -> MaxPool -> Conv32/3x3 -> MaxPool -> Conv16/3x3 s2 -> Flatten
    -> Dense(4, softmax), random_normal kernels; SGD(lr=0.001, momentum=0.9), categorical
    cross-entropy, batch 192, 50 epochs, shuffle=False.
  - model_pre.trainable = False; downstream model shares layer1..layer4 (frozen) + Flatten +
    Dense(10, softmax); the same SGD settings; fit batch 64, validation_split=0.3 (Keras: the last
    300 of the 1000 images), 50 epochs, EarlyStopping(monitor='accuracy', patience=7).
  - Metric: accuracy on the notebook's 300 test images (the notebook prints none; this is the
    evaluation the issue asks for: model_down.evaluate(X_test, Y_test)).

Deviations: keras.datasets' download is replaced by the same arrays read from local IDX files;
the notebook reuses its SGD object for the second compile, which Keras 3 refuses (an optimizer
is built for one set of variables), so the downstream compile gets a new
SGD(learning_rate=0.001, momentum=0.9): the frozen layers have no slots to carry over and the
new Dense layer had none, so the update rule is the same. Seeded (--seed) for repeatability.

--quick: 5 pretext epochs instead of 50, at most 10 downstream epochs instead of 50.
"""

from __future__ import annotations

import time

import numpy as np
from common import MNIST, Clock, finish, load_data, parser


def rotation_set(X_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n_samples = X_train.shape[0]
    X_rotate = np.zeros(shape=(n_samples * 4, X_train.shape[1], X_train.shape[2]))
    Y_rotate = np.zeros(shape=(n_samples * 4, 4))
    for i in range(n_samples):
        img = X_train[i]
        X_rotate[4 * i - 4] = img
        Y_rotate[4 * i - 4] = [1, 0, 0, 0]
        X_rotate[4 * i - 3] = np.flip(img.T, 0)  # 90 degrees: transpose + vertical flip
        Y_rotate[4 * i - 3] = [0, 1, 0, 0]
        X_rotate[4 * i - 2] = np.flip(np.flip(img, 0), 1)  # 180 degrees
        Y_rotate[4 * i - 2] = [0, 0, 1, 0]
        X_rotate[4 * i - 1] = np.flip(img, 0).T  # 270 degrees
        Y_rotate[4 * i - 1] = [0, 0, 0, 1]
    return X_rotate.reshape(-1, 28, 28, 1), Y_rotate


def main() -> None:
    args = parser(__doc__).parse_args()
    clock = Clock()
    import keras
    import tensorflow as tf
    from keras import Sequential
    from keras.layers import Conv2D, Dense, Flatten, MaxPooling2D

    keras.utils.set_random_seed(args.seed)
    pretext_epochs, down_epochs = (5, 10) if args.quick else (50, 50)

    (X_train, Y_train), (X_test, Y_test) = load_data(MNIST)
    X_train, Y_train = X_train[:1000], Y_train[:1000]
    X_test, Y_test = X_test[:300], Y_test[:300]
    X_rotate, Y_rotate = rotation_set(X_train)

    init = "random_normal"
    layer1 = Conv2D(64, (3, 3), strides=(2, 2), padding="same", activation="relu", kernel_initializer=init)
    layer2 = MaxPooling2D(pool_size=(2, 2), strides=(2, 2))
    layer3 = Conv2D(32, (3, 3), strides=(1, 1), padding="same", activation="relu", kernel_initializer=init)
    layer4 = MaxPooling2D(pool_size=(2, 2), strides=(2, 2))
    layer5 = Conv2D(16, (3, 3), strides=(2, 2), padding="same", activation="relu", kernel_initializer=init)
    layer7 = Dense(4, activation="softmax", kernel_initializer=init)
    model_pre = Sequential([keras.Input(shape=(28, 28, 1)), layer1, layer2, layer3, layer4, layer5, Flatten(), layer7])
    sgd = keras.optimizers.SGD(learning_rate=0.001, momentum=0.9)
    model_pre.compile(loss="categorical_crossentropy", optimizer=sgd, metrics=["accuracy"])
    started = time.perf_counter()
    hist = model_pre.fit(X_rotate, Y_rotate, batch_size=192, epochs=pretext_epochs, verbose=2, shuffle=False)
    clock.pretext(pretext_epochs * len(X_rotate), time.perf_counter() - started)

    model_pre.trainable = False
    X_train = X_train.reshape(-1, 28, 28, 1)
    X_test = X_test.reshape(-1, 28, 28, 1)
    Y_train = tf.one_hot(Y_train, 10, on_value=1.0, off_value=0.0)
    Y_test = tf.one_hot(Y_test, 10, on_value=1.0, off_value=0.0)
    layer10 = Dense(10, activation="softmax", kernel_initializer=init)
    model_down = Sequential([keras.Input(shape=(28, 28, 1)), layer1, layer2, layer3, layer4, Flatten(), layer10])
    callback = keras.callbacks.EarlyStopping(monitor="accuracy", patience=7)
    sgd_down = keras.optimizers.SGD(learning_rate=0.001, momentum=0.9)  # see the docstring
    model_down.compile(loss="categorical_crossentropy", optimizer=sgd_down, metrics=["accuracy"])
    hist_down = model_down.fit(
        np.asarray(X_train),
        Y_train.numpy(),
        batch_size=64,
        validation_split=0.3,
        epochs=down_epochs,
        verbose=2,
        callbacks=[callback],
    )
    _, test_accuracy = model_down.evaluate(X_test, Y_test.numpy(), verbose=0)
    finish(
        clock.result(
            protocol="seed001",
            test_accuracy=float(test_accuracy),
            test_images=int(len(X_test)),
            pretext_final_accuracy=float(hist.history["accuracy"][-1]),
            downstream_epochs_run=len(hist_down.history["accuracy"]),
            quick=args.quick,
            notes=f"pretext {pretext_epochs} epochs x 4000 rotated images, batch 192, SGD 1e-3 m0.9; "
            f"frozen downstream <= {down_epochs} epochs (EarlyStopping on train accuracy), "
            "700 train / 300 validation (last 30%); accuracy on MNIST test[:300]",
        ),
        args.out,
    )


if __name__ == "__main__":
    main()
