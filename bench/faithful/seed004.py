"""Seed 004 as its R Markdown wrote it (Strassmann & Pawel, "Session 5: Self-Supervised
Learning", R keras on MNIST): rotation pretext, then 150 labels, 20 repeats each for
self-supervised and for scratch.

Pipeline, in the document's order (R indices translated to Python):
  - MNIST /255 as double (float64) arrays (60000, 28, 28, 1) and (10000, 28, 28, 1); one-hot y.
  - CNN "MNIST-CNN": Conv64/2x2 same relu -> MaxPool2 -> Dropout0.3 -> Conv32/2x2 -> MaxPool2 ->
    Dropout0.3 -> Flatten -> Dense256 relu -> Dropout0.5 -> Dense(10 or 4, softmax); Adam,
    categorical cross-entropy.
  - Scratch study: modelSmall compiled ONCE, its initial weights saved; 20 times: set_weights to
    the initial weights (the Adam state is not reset, as in the document), draw 150 of the 60,000
    train images without replacement (smallData), fit batch_size=1, 10 epochs,
    validation_split=0.2 (R passes it to Keras: the LAST 30 of the 150 are validation), evaluate
    on the full 10,000-image test set.
  - Pretext: one random rotation p in {0, 90, 180, 270} per train and per test image, rotated
    image by image in a loop into new float64 arrays; modelRot fit batch 64, 10 epochs,
    validation_split=0.2; evaluated on the rotated test images.
  - Downstream: modelDown's initial weights with get_weights()[0:6] (both convs and the Dense256
    neck) replaced by modelRot's; 20 times: set_weights, freeze layers 1..4 (conv, pool,
    dropout, conv), compile Adam, draw 150, fit batch 1, 10 epochs, validation_split=0.2;
    unfreeze all, compile Adam, fit again the same way; evaluate on the 10,000 test images.
  - Metric: mean and sd of the 20 test accuracies, self-supervised and scratch.

Deviations: the supervised benchmark on all 60,000 labels (the document's first model) is not
part of the 150-label claim and is skipped unless --with-full-benchmark; R's RNG
(set.seed(42), sample()) is replaced by NumPy's seeded with --seed 42, so the draws differ;
OpenImageR::rotateImage is replaced by np.rot90 per image (clockwise, k quarter turns: a
labelling convention); keras.datasets' download by the same arrays from local IDX files.

--quick: 1 pretext epoch instead of 10, 2 repeats instead of 20 for each of scratch and
self-supervised; the 150-label draws, batch 1 and 10 + 10 fine-tuning epochs unchanged.
"""

from __future__ import annotations

import time

import numpy as np
from common import MNIST, Clock, finish, load_data, parser


def cnn(name: str, outputs: int):
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            layers.Conv2D(64, kernel_size=2, padding="same", activation="relu"),
            layers.MaxPooling2D(pool_size=2),
            layers.Dropout(0.3),
            layers.Conv2D(32, kernel_size=2, padding="same", activation="relu"),
            layers.MaxPooling2D(pool_size=2),
            layers.Dropout(0.3),
            layers.Flatten(),
            layers.Dense(256, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(outputs, activation="softmax"),
        ],
        name=name,
    )


def small_data(rng: np.random.Generator, x: np.ndarray, y_bin: np.ndarray):
    """smallData(): 0.25% of the train images (150), drawn without replacement."""
    ntrain = len(x)
    smaller_n = int(0.0025 * ntrain)
    ind = rng.choice(ntrain, size=smaller_n, replace=False)
    return x[ind], y_bin[ind]


def fit_small(model, sdat) -> None:
    model.fit(x=sdat[0], y=sdat[1], batch_size=1, epochs=10, validation_split=0.2, verbose=0)


def rotate_all(x: np.ndarray, p: np.ndarray) -> np.ndarray:
    out = np.empty(x.shape)  # R: array(dim = ...), double
    for i in range(len(x)):
        out[i, :, :, 0] = np.rot90(x[i, :, :, 0], -int(p[i]))
    return out


def main() -> None:
    p = parser(__doc__)
    p.add_argument(
        "--with-full-benchmark", action="store_true", help="also fit the document's 60,000-label supervised benchmark"
    )
    args = p.parse_args()
    clock = Clock()
    import keras

    keras.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    M = 2 if args.quick else 20
    rot_epochs = 1 if args.quick else 10

    (x_train, y_train), (x_test, y_test) = load_data(MNIST)
    ntrain, ntest = len(y_train), len(y_test)
    x_train = (x_train / 255).reshape(ntrain, 28, 28, 1)
    x_test = (x_test / 255).reshape(ntest, 28, 28, 1)
    y_train_bin = keras.utils.to_categorical(y_train, 10)
    y_test_bin = keras.utils.to_categorical(y_test, 10)

    if args.with_full_benchmark:
        model = cnn("MNIST-CNN", 10)
        model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
        model.fit(x_train, y_train_bin, batch_size=64, epochs=10, validation_split=0.2, verbose=2)

    model_small = cnn("MNIST-CNN-Small", 10)
    model_small.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    weights_small = model_small.get_weights()
    scratch = []
    for repeat in range(M):
        model_small.set_weights(weights_small)
        fit_small(model_small, small_data(rng, x_train, y_train_bin))
        scratch.append(model_small.evaluate(x_test, y_test_bin, verbose=0)[1])
        print(f"scratch repeat {repeat + 1}/{M}: test accuracy {scratch[-1]:.4f}", flush=True)

    p_train = rng.choice([0, 1, 2, 3], size=ntrain, replace=True)
    p_test = rng.choice([0, 1, 2, 3], size=ntest, replace=True)
    p_train_bin = keras.utils.to_categorical(p_train)
    p_test_bin = keras.utils.to_categorical(p_test)
    x_train_rot = rotate_all(x_train, p_train)
    x_test_rot = rotate_all(x_test, p_test)
    model_rot = cnn("MNIST-CNN-Rotation", 4)
    model_rot.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    started = time.perf_counter()
    model_rot.fit(x_train_rot, p_train_bin, batch_size=64, epochs=rot_epochs, validation_split=0.2, verbose=2)
    clock.pretext(rot_epochs * int(ntrain * 0.8), time.perf_counter() - started)
    rotation_test_accuracy = model_rot.evaluate(x_test_rot, p_test_bin, verbose=0)[1]
    weights_rotation = model_rot.get_weights()

    model_down = cnn("MNIST-CNN-Downstream", 10)
    weights_down = model_down.get_weights()
    weights_down[:6] = weights_rotation[:6]  # R: weights_down[[1..6]] <- weights_rotation[[1..6]]
    ssl = []
    for repeat in range(M):
        model_down.set_weights(weights_down)
        for layer in model_down.layers[:4]:  # R: freeze_weights(from = 1, to = 4)
            layer.trainable = False
        model_down.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
        sdat = small_data(rng, x_train, y_train_bin)
        fit_small(model_down, sdat)
        for layer in model_down.layers:  # R: unfreeze_weights()
            layer.trainable = True
        model_down.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
        fit_small(model_down, sdat)
        ssl.append(model_down.evaluate(x_test, y_test_bin, verbose=0)[1])
        print(f"self-supervised repeat {repeat + 1}/{M}: test accuracy {ssl[-1]:.4f}", flush=True)

    finish(
        clock.result(
            protocol="seed004",
            test_accuracy=float(np.mean(ssl)),
            test_accuracy_std=float(np.std(ssl, ddof=1)),
            n=M,
            scratch_accuracy=float(np.mean(scratch)),
            scratch_accuracy_std=float(np.std(scratch, ddof=1)),
            ssl_accuracies=[float(a) for a in ssl],
            scratch_accuracies=[float(a) for a in scratch],
            rotation_test_accuracy=float(rotation_test_accuracy),
            test_images=int(ntest),
            quick=args.quick,
            notes=f"rotation {rot_epochs} epochs on 48,000 (one random rotation each, batch 64); "
            f"{M} x 150 labels (120 train / last 30 val), batch 1, 10 frozen + 10 unfrozen "
            f"epochs; {M} scratch repeats, 10 epochs; mean/sd over the full 10k MNIST test set",
        ),
        args.out,
    )


if __name__ == "__main__":
    main()
