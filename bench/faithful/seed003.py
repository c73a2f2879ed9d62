"""Seed 003 ("Deep Learning without labels - Self-Supervised Learning", PyTorch Lightning,
colorization on CIFAR-10) translated to Keras 3 layer for layer.

Pipeline, in the post's order:
  - Data: RGB uint8 images; a torch Dataset that, per item, makes cv2.COLOR_RGB2GRAY gray / 255
    (input, 1 channel) and RGB / 255 (target, 3 channels), float32.
  - Colorizer: torchvision resnet50 with conv1 = Conv(1, 64, 7x7, stride 2, pad 3, no bias), its
    children up to layer4 (no avgpool, no fc) as encoder; decoder Conv512-BN-ReLU-Up2,
    Conv256-BN-ReLU-Up2, Conv128-BN-ReLU-Up2, Conv64-BN-ReLU, Conv32-BN-ReLU-Up2,
    Conv16-BN-ReLU-Up2, Conv3 (3x3, pad 1, nearest upsampling); MSE to the RGB image; Adam 1e-3;
    DataLoader batch 128, shuffle; pl.Trainer() default max_epochs = 1000.
  - Scratch: torchvision resnet50 (3 channels) with fc 2048->10 on the first 10 train images of
    each class (100), RGB / 255 input, Adam 1e-4, batch 64 shuffled, 25 epochs, cross-entropy.
  - Fine-tune: the colorizer's encoder with a NEW Conv(3, 64, 7x7, s2, p3) as first layer,
    adaptive average pool, fc 2048->10; every layer trainable; Adam 1e-4, batch 64, 25 epochs.
  - Metric: accuracy on the test images in eval mode (BatchNorm running statistics).
    The post reports 0.1121 (scratch) and 0.21 (fine-tuned) on CIFAR-10's test set.

Translation to Keras: ResNet-50 v1.5 as torchvision builds it (stride on the 3x3 conv of a
bottleneck, explicit symmetric zero padding, not Keras' asymmetric "same"), BatchNorm
momentum 0.9 / epsilon 1e-5 (PyTorch's momentum 0.1), PyTorch's initialisations (Kaiming
normal fan_out for the ResNet convs, U(+-1/sqrt(fan_in)) for the other convs, biases and the
linear layers), Adam epsilon 1e-8. The Dataset + DataLoader become a keras.utils.PyDataset
doing the same per-item conversion (cv2's integer RGB->gray formula in NumPy), reshuffled
every epoch, run in the main process (num_workers=0 in the post).

Deviations, each forced here:
  - Data: CIFAR-10's test split is not on this machine. Images come from the JPEG folder
    (train/<class>/*.jpg, 50,000) through sslrun's own loader (sslrun.data DATASETS
    "image_folder", test_fraction 0.2): the SAME 10,000 held-out test images sslrun's
    dataset=image_folder runs use; the colorizer trains on the other 40,000 (the post: 50,000)
    and the 10-per-class labels are the first 10 of each class among those 40,000.
    Only the loader is shared; nothing of sslrun's training code is used.
  - Epochs: Lightning's default 1000 colorizer epochs are impossible here; --pretext-epochs
    (default 8). Measured here: the colorizer trains at 46 images per CPU-second (batch 128),
    about 90 images/s on both cores of an otherwise idle machine, so one epoch of 40,000
    images takes about 7.5 minutes and 8 epochs about an hour (far longer when the cores are
    shared). 1000 epochs would take about 5 days.
    The post itself loads a checkpoint "colorizer.ckpt" of unstated length.
  - The post passes a val_dataloader to the colorizer but defines no validation_step, so
    Lightning skips validation: none here either.
  - PyTorch BatchNorm normalises with the biased batch variance but stores the unbiased one;
    Keras uses the biased one for both (a factor n/(n-1) on the running variance).
  - Seeded (--seed) for repeatability.

--quick: colorizer 1 epoch on the first 1,000 train images (not 8 x 40,000); scratch and
fine-tune 5 epochs instead of 25 (100 labels, batch 64, Adam 1e-4); a test split of 2,000
held-out images (--test-fraction 0.04, 200 per class; bench/run.py --quick gives the presets
the same dataset.test_fraction), so 48,000 train images and their first 10 per class as labels.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
from common import Clock, finish, parser

DEFAULT_FOLDER = Path("/tmp/sslrun-bench/cifar10-jpg")
DEFAULT_EPOCHS = 8
QUICK_TEST_FRACTION = 0.04  # --quick: 2,000 held-out test images (bench/run.py QUICK_TEST_FRACTION)
BN = {"momentum": 0.9, "epsilon": 1e-5}  # PyTorch BatchNorm2d(momentum=0.1, eps=1e-5)


def rgb2gray(img: np.ndarray) -> np.ndarray:
    """cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) for uint8: fixed point, 14 bits, rounded."""
    r, g, b = (img[..., c].astype(np.int32) for c in range(3))
    return ((r * 4899 + g * 9617 + b * 1868 + (1 << 13)) >> 14).astype(np.uint8)


# ----------------------------------------------------------------------------- layers


def torch_uniform(fan_in: int):
    """PyTorch's default for Conv2d/Linear weights and biases: U(+-1/sqrt(fan_in))."""
    import keras

    bound = 1 / math.sqrt(fan_in)
    return keras.initializers.RandomUniform(-bound, bound)


def torch_conv(
    x,
    filters: int,
    kernel: int,
    stride: int = 1,
    pad: int = 0,
    bias: bool = True,
    init: str = "default",
    name: str | None = None,
):
    """nn.Conv2d(in, filters, kernel, stride, padding=pad): explicit symmetric zero padding."""
    from keras import layers

    fan_in = x.shape[-1] * kernel * kernel
    if init == "resnet":  # torchvision ResNet: kaiming_normal_(mode="fan_out", nonlinearity="relu")
        import keras

        kernel_init = keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal")
    else:
        kernel_init = torch_uniform(fan_in)
    if pad:
        x = layers.ZeroPadding2D(pad)(x)
    return layers.Conv2D(
        filters,
        kernel,
        strides=stride,
        use_bias=bias,
        name=name,
        kernel_initializer=kernel_init,
        bias_initializer=torch_uniform(fan_in) if bias else "zeros",
    )(x)


def bottleneck(x, planes: int, stride: int, downsample: bool):
    from keras import layers

    identity = x
    out = torch_conv(x, planes, 1, bias=False, init="resnet")
    out = layers.ReLU()(layers.BatchNormalization(**BN)(out))
    out = torch_conv(out, planes, 3, stride, pad=1, bias=False, init="resnet")  # v1.5: stride here
    out = layers.ReLU()(layers.BatchNormalization(**BN)(out))
    out = torch_conv(out, planes * 4, 1, bias=False, init="resnet")
    out = layers.BatchNormalization(**BN)(out)
    if downsample:
        identity = torch_conv(x, planes * 4, 1, stride, bias=False, init="resnet")
        identity = layers.BatchNormalization(**BN)(identity)
    return layers.ReLU()(layers.Add()([out, identity]))


def resnet50_trunk(in_channels: int, conv1_init: str):
    """torchvision resnet50's children()[:-2]: conv1 .. layer4, output (1, 1, 2048) at 32x32.

    The first conv is a separate model ("conv1"), so the fine-tune model can swap it for a new
    3-channel one like `self.downsample[0] = Conv2d(3, ...)` does."""
    import keras
    from keras import layers

    inp = keras.Input((32, 32, in_channels))
    conv1 = keras.Model(inp, torch_conv(inp, 64, 7, 2, pad=3, bias=False, init=conv1_init), name="conv1")
    feat = keras.Input(conv1.output.shape[1:])
    x = layers.ReLU()(layers.BatchNormalization(**BN)(feat))
    # MaxPool2d(3, 2, padding=1): after a ReLU, zero padding acts like PyTorch's -inf padding
    x = layers.MaxPooling2D(3, strides=2)(layers.ZeroPadding2D(1)(x))
    for planes, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for i in range(blocks):
            x = bottleneck(x, planes, stride if i == 0 else 1, downsample=i == 0)
    body = keras.Model(feat, x, name="layers")
    return conv1, body


def colorizer():
    import keras
    from keras import layers

    conv1, body = resnet50_trunk(1, "resnet")
    inp = keras.Input((32, 32, 1))
    x = body(conv1(inp))
    for filters, up in ((512, True), (256, True), (128, True), (64, False), (32, True), (16, True)):
        x = layers.ReLU()(layers.BatchNormalization(**BN)(torch_conv(x, filters, 3, pad=1)))
        if up:
            x = layers.UpSampling2D(2, interpolation="nearest")(x)
    out = torch_conv(x, 3, 3, pad=1)
    return keras.Model(inp, out, name="colorizer"), body


def classifier(body, conv1_init: str):
    """Encoder body behind a NEW 3-channel conv1, global average pool, Linear(2048, 10)."""
    import keras
    from keras import layers

    conv1, _ = resnet50_trunk(3, conv1_init)
    inp = keras.Input((32, 32, 3))
    x = layers.GlobalAveragePooling2D()(body(conv1(inp)))
    out = layers.Dense(10, kernel_initializer=torch_uniform(2048), bias_initializer=torch_uniform(2048))(x)
    return keras.Model(inp, out)


# ----------------------------------------------------------------------------- data


def gray_color_dataset(images: np.ndarray, batch_size: int, seed: int):
    """The post's Cifar10GrayscaleDataset behind DataLoader(batch_size, shuffle=True)."""
    import keras

    class GrayColor(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(images))

        def __len__(self) -> int:
            return math.ceil(len(images) / batch_size)

        def __getitem__(self, idx: int):
            gray, color = [], []
            for i in self.order[idx * batch_size : (idx + 1) * batch_size]:  # per item, as torch
                img = images[i]
                gray.append(np.expand_dims(rgb2gray(img) / 255, -1).astype(np.float32))
                color.append((img / 255).astype(np.float32))
            return np.stack(gray), np.stack(color)

        def on_epoch_end(self) -> None:
            self.order = self.rng.permutation(len(images))

    return GrayColor()


def load_cifar_folder(folder: Path, cache_dir: Path, test_fraction: float):
    """sslrun's image_folder loader: the same held-out test images as dataset=image_folder
    with the same dataset.test_fraction."""
    from sslrun.data.datasets import DATASETS

    return DATASETS.build(
        "image_folder",
        path=str(folder),
        image_size=32,
        channels=3,
        on_bad_image="skip",
        test_fraction=test_fraction,
        cache_dir=str(cache_dir),
    )


def first_per_class(y: np.ndarray, per_class: int = 10) -> np.ndarray:
    idx_list = [np.where(y == i)[0][:per_class] for i in range(10)]
    return np.array(idx_list).flatten()


def train_classifier(model, x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, epochs: int) -> float:
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(1e-4, epsilon=1e-8),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(x, y, batch_size=64, epochs=epochs, shuffle=True, verbose=2)
    pred = model.predict(x_test, batch_size=256, verbose=0).argmax(1)  # eval mode
    return float((pred == y_test).mean())


def main() -> None:
    p = parser(__doc__)
    p.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_FOLDER,
        help="CIFAR-10 JPEG folder (train/<class>/*.jpg); unpack "
        "/work/shared/data/cifar10-train-jpg.tar.gz there if missing",
    )
    p.add_argument(
        "--pretext-epochs",
        type=int,
        default=None,
        help=f"colorizer epochs (default {DEFAULT_EPOCHS}; the post: Lightning's 1000)",
    )
    p.add_argument(
        "--test-fraction",
        type=float,
        default=None,
        help="share of each class held out as the test split (default 0.2, sslrun's "
        "dataset=image_folder default; --quick: 0.04)",
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=Path("/tmp/bench-faithful/cache"),
        help="sslrun's decoded-image cache for the loader",
    )
    args = p.parse_args()
    clock = Clock()
    import keras

    keras.utils.set_random_seed(args.seed)
    epochs = args.pretext_epochs or (1 if args.quick else DEFAULT_EPOCHS)
    down_epochs = 5 if args.quick else 25
    test_fraction = args.test_fraction or (QUICK_TEST_FRACTION if args.quick else 0.2)
    raw = load_cifar_folder(args.data, args.cache_dir, test_fraction)
    x_train, y_train, x_test, y_test = raw.x_train, raw.y_train, raw.x_test, raw.y_test
    pretext_x = x_train[:1000] if args.quick else x_train
    print(f"{raw.source}; colorizer on {len(pretext_x)} images x {epochs} epochs", flush=True)

    model, body = colorizer()
    model.compile(optimizer=keras.optimizers.Adam(1e-3, epsilon=1e-8), loss="mse")
    started = time.perf_counter()
    hist = model.fit(gray_color_dataset(pretext_x, 128, args.seed), epochs=epochs, verbose=2)
    clock.pretext(epochs * len(pretext_x), time.perf_counter() - started)

    idx = first_per_class(y_train)
    x_small, y_small = (x_train[idx] / 255).astype(np.float32), y_train[idx]
    x_eval = (x_test / 255).astype(np.float32)
    _, scratch_body = resnet50_trunk(3, "resnet")
    scratch = classifier(scratch_body, "resnet")  # torchvision.models.resnet50(): fresh weights
    scratch_accuracy = train_classifier(scratch, x_small, y_small, x_eval, y_test, down_epochs)
    print(f"scratch: test accuracy {scratch_accuracy:.4f}", flush=True)
    fine_tune = classifier(body, "default")  # body: the colorizer's trained layers, shared
    test_accuracy = train_classifier(fine_tune, x_small, y_small, x_eval, y_test, down_epochs)
    print(f"fine-tuned: test accuracy {test_accuracy:.4f}", flush=True)
    finish(
        clock.result(
            protocol="seed003",
            test_accuracy=test_accuracy,
            scratch_accuracy=scratch_accuracy,
            test_images=int(len(y_test)),
            labeled=int(len(idx)),
            pretext_epochs=epochs,
            downstream_epochs=down_epochs,
            pretext_final_loss=float(hist.history["loss"][-1]),
            data_source=raw.source,
            quick=args.quick,
            notes=f"colorizer (ResNet-50 v1.5, 1-ch conv1, upsampling decoder, MSE to RGB, Adam 1e-3, "
            f"batch 128) {epochs} epochs on {len(pretext_x)} images (the post: Lightning's "
            "default 1000 on 50,000); fine-tune with a new 3-ch conv1, all layers, Adam 1e-4, "
            f"batch 64, {down_epochs} epochs on the first 10 per class; scratch likewise; "
            f"accuracy on sslrun's {len(y_test):,} held-out images (shared loader, "
            f"test_fraction {test_fraction})",
        ),
        args.out,
    )


if __name__ == "__main__":
    main()
