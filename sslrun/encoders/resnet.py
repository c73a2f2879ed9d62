"""ResNets without their classifier: CIFAR-style (3x3 stem) and ImageNet-style (7x7 stem + pool).

One basic block, one bottleneck block and one stage builder serve all four
networks; every width is multiplied by `width`. Features are the global
average pool of the last stage: 512*width (basic), 2048*width (bottleneck),
64*width (resnet20).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

from sslrun.encoders.registry import ENCODERS, scaled

IMAGENET_WIDTHS = (64, 128, 256, 512)

Block = Callable[[keras.KerasTensor, int, int, str], keras.KerasTensor]


def _conv_bn(x, filters: int, kernel: int, strides: int, name: str):
    # he_normal: He et al.'s initialization for ReLU nets; no conv bias, BN adds its own shift
    x = layers.Conv2D(
        filters,
        kernel,
        strides=strides,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        name=f"{name}_conv",
    )(x)
    # momentum 0.9, eps 1e-5: PyTorch's BatchNorm defaults, the ResNet recipes' setting
    return layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"{name}_bn")(x)


def _shortcut(x, filters: int, strides: int, name: str):
    """Identity, or a 1x1 conv + BN projection when the shape changes."""
    if strides == 1 and x.shape[-1] == filters:
        return x
    return _conv_bn(x, filters, 1, strides, f"{name}_proj")


def basic_block(x, filters: int, strides: int, name: str):
    """Two 3x3 convs; output has `filters` channels."""
    y = layers.ReLU(name=f"{name}_relu1")(_conv_bn(x, filters, 3, strides, f"{name}_1"))
    y = _conv_bn(y, filters, 3, 1, f"{name}_2")
    shortcut = _shortcut(x, filters, strides, name)
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([shortcut, y]))


def bottleneck_block(x, filters: int, strides: int, name: str):
    """1x1 reduce, 3x3 (strided, as torchvision's ResNet v1.5), 1x1 expand to 4*filters channels."""
    y = layers.ReLU(name=f"{name}_relu1")(_conv_bn(x, filters, 1, 1, f"{name}_1"))
    y = layers.ReLU(name=f"{name}_relu2")(_conv_bn(y, filters, 3, strides, f"{name}_2"))
    y = _conv_bn(y, 4 * filters, 1, 1, f"{name}_3")
    shortcut = _shortcut(x, 4 * filters, strides, name)
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([shortcut, y]))


def stage(x, block: Block, filters: int, blocks: int, strides: int, name: str):
    """`blocks` blocks; the first one changes the resolution (strides) and the width."""
    for i in range(blocks):
        x = block(x, filters, strides if i == 0 else 1, f"{name}_block{i + 1}")
    return x


def resnet(
    input_shape: tuple[int, int, int],
    width: float,
    name: str,
    block: Block,
    depths: tuple[int, ...],
    widths: tuple[int, ...],
    imagenet_stem: bool,
) -> keras.Model:
    inputs = keras.Input(shape=input_shape)
    if imagenet_stem:  # 7x7/2 conv + 3x3/2 max-pool: 96x96 (STL-10) -> 24x24 before stage 1
        x = layers.ReLU(name="stem_relu")(_conv_bn(inputs, scaled(64, width), 7, 2, "stem"))
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    else:  # 3x3/1 conv, no pool: 32x32 or 28x28 images keep their resolution in stage 1
        x = layers.ReLU(name="stem_relu")(_conv_bn(inputs, scaled(widths[0], width), 3, 1, "stem"))
    for i, (depth, filters) in enumerate(zip(depths, widths, strict=True)):
        x = stage(x, block, scaled(filters, width), depth, 1 if i == 0 else 2, f"stage{i + 1}")
    features = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, features, name=name)


@ENCODERS.register("resnet18_cifar")
def resnet18_cifar(input_shape: tuple[int, int, int], width: float = 1.0) -> keras.Model:
    """ResNet-18 with a 3x3 stride-1 stem and no max-pool (32x32, 28x28); 512*width features."""
    return resnet(
        input_shape,
        width,
        "resnet18_cifar",
        basic_block,
        depths=(2, 2, 2, 2),
        widths=IMAGENET_WIDTHS,
        imagenet_stem=False,
    )


@ENCODERS.register("resnet20")
def resnet20(input_shape: tuple[int, int, int], width: float = 1.0) -> keras.Model:
    """He et al.'s CIFAR ResNet-20: 3 stages x 3 basic blocks, 16-32-64; 64*width features."""
    return resnet(
        input_shape,
        width,
        "resnet20",
        basic_block,
        depths=(3, 3, 3),
        widths=(16, 32, 64),
        imagenet_stem=False,
    )


@ENCODERS.register("resnet18")
def resnet18(input_shape: tuple[int, int, int], width: float = 1.0) -> keras.Model:
    """ImageNet-style ResNet-18 (96x96 STL-10 images); 512*width features."""
    return resnet(
        input_shape,
        width,
        "resnet18",
        basic_block,
        depths=(2, 2, 2, 2),
        widths=IMAGENET_WIDTHS,
        imagenet_stem=True,
    )


@ENCODERS.register("resnet50")
def resnet50(input_shape: tuple[int, int, int], width: float = 1.0) -> keras.Model:
    """ImageNet-style ResNet-50, bottleneck blocks (96x96 STL-10 images); 2048*width features."""
    return resnet(
        input_shape,
        width,
        "resnet50",
        bottleneck_block,
        depths=(3, 4, 6, 3),
        widths=IMAGENET_WIDTHS,
        imagenet_stem=True,
    )
