"""View augmentations for joint-embedding pretext tasks (SimCLR, BYOL, Barlow Twins, VICReg).

`make_view_augmenter` returns a `keras.Sequential` of preprocessing layers that turns a float32
batch in [0, 1] (NHWC, 1 or 3 channels) into one randomly augmented view, per image, inside the
graph: call it twice for two views. It follows the SimCLR recipe (Chen et al. 2020, appendix A):
random resized crop -> horizontal flip -> colour jitter (p=0.8) -> grayscale (p=0.2) -> blur.

Keras built-ins do the flip, translation, jitter, grayscale and blur. Written here, because Keras
has no equivalent: `RandomResizedCrop` (per-image random boxes), `RandomApply` (apply a layer to
each image with probability p) and `Clip`.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import ops

from sslrun.errors import ConfigError

_PACKAGE = "sslrun"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class RandomResizedCrop(keras.layers.Layer):
    """Crop a random box from each image and resize it to (height, width), as torchvision's
    RandomResizedCrop: box area a fraction `scale` of the image, aspect ratio log-uniform in
    `ratio`.

    Rather than rejection-sampling boxes that do not fit, the ratio is clamped to the range where a
    box of the drawn area fits, so the area distribution is exact and scale=(1, 1) is the identity.
    With training=False the input is returned (resized if its size differs).
    """

    def __init__(self, height, width, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ConfigError(f"RandomResizedCrop scale={scale}: need 0 < low <= high <= 1")
        if not 0 < ratio[0] <= ratio[1]:
            raise ConfigError(f"RandomResizedCrop ratio={ratio}: need 0 < low <= high")
        self.height, self.width = int(height), int(width)
        self.scale, self.ratio = tuple(scale), tuple(ratio)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training:
            if tuple(images.shape[1:3]) == (self.height, self.width):
                return images
            return tf.image.resize(images, (self.height, self.width))
        return tf.image.crop_and_resize(
            images,
            self._boxes(images),
            tf.range(tf.shape(images)[0]),
            (self.height, self.width),
        )

    def _boxes(self, images):
        batch = ops.shape(images)[0]
        rand = keras.random.uniform((4, batch), seed=self.seed_generator)
        area = self.scale[0] + (self.scale[1] - self.scale[0]) * rand[0]
        log_lo, log_hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        log_ratio = log_lo + (log_hi - log_lo) * rand[1]
        # A box of relative area s and ratio r (width/height in pixels) fits if s*a <= r <= a/s,
        # with a the image's own width/height.
        log_aspect = ops.log(ops.cast(ops.shape(images)[2] / ops.shape(images)[1], "float32"))
        log_area = ops.log(area)
        log_ratio = ops.clip(log_ratio, log_area + log_aspect, log_aspect - log_area)
        box_w = ops.minimum(ops.sqrt(area * ops.exp(log_ratio - log_aspect)), 1.0)
        box_h = ops.minimum(ops.sqrt(area * ops.exp(log_aspect - log_ratio)), 1.0)
        top = rand[2] * (1.0 - box_h)
        left = rand[3] * (1.0 - box_w)
        return ops.stack([top, left, top + box_h, left + box_w], axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, input_shape[3])

    def get_config(self):
        return {
            **super().get_config(),
            "height": self.height,
            "width": self.width,
            "scale": self.scale,
            "ratio": self.ratio,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class RandomApply(keras.layers.Layer):
    """Apply `layer` to each image of the batch independently with probability `rate`.

    The wrapped layer runs on the whole batch and a per-image mask picks its output or the input,
    which keeps everything batched (no per-image map). The Keras colour layers have no probability
    of their own; SimCLR applies colour jitter with p=0.8.
    """

    def __init__(self, layer, rate=0.5, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate <= 1:
            raise ConfigError(f"RandomApply rate={rate}: need a probability in [0, 1]")
        self.layer = layer
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        self.layer.build(input_shape)

    def call(self, images, training=True):
        if not training:
            return images
        applied = self.layer(images, training=True)
        draw = keras.random.uniform((ops.shape(images)[0], 1, 1, 1), seed=self.seed_generator)
        return ops.where(draw < self.rate, ops.cast(applied, images.dtype), images)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "layer": keras.saving.serialize_keras_object(self.layer),
            "rate": self.rate,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layer"] = keras.saving.deserialize_keras_object(config["layer"])
        return cls(**config)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Clip(keras.layers.Layer):
    """Clip values to [min_value, max_value]: the views stay valid images after float rounding."""

    def __init__(self, min_value=0.0, max_value=1.0, **kwargs):
        super().__init__(**kwargs)
        self.min_value, self.max_value = float(min_value), float(max_value)

    def call(self, images):
        return ops.clip(images, self.min_value, self.max_value)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "min_value": self.min_value, "max_value": self.max_value}


def colour_jitter(channels: int, strength: float, seed: int) -> keras.layers.Layer:
    """torchvision-style ColorJitter(s, s, s, s/4) in Keras terms (SimCLR's 0.8x/0.8x/0.8x/0.2x
    of its colour strength x); 1 channel: brightness and contrast only.

    Keras parametrises differently, so the factors are converted:
    brightness is additive in Keras (+-s/2 moves a mid-grey pixel as a x(1 +- s) factor would);
    contrast (s, s) gives the factor range [1-s, 1+s] (a single float would only raise contrast);
    saturation factor f scales saturation by f/(1-f), so [(1-s)/(2-s), (1+s)/(2+s)] gives [1-s, 1+s];
    hue (0, 2h) shifts hue by up to +-h of a turn. The order is fixed (b, c, s, h), not shuffled.
    """
    factors = {"brightness_factor": strength / 2, "contrast_factor": (strength, strength)}
    if channels == 3:
        factors["saturation_factor"] = (
            (1 - strength) / (2 - strength),
            (1 + strength) / (2 + strength),
        )
        factors["hue_factor"] = (0.0, min(2 * strength / 4, 1.0))
    return keras.layers.RandomColorJitter(value_range=(0.0, 1.0), seed=seed, **factors)


def make_view_augmenter(
    image_size: int,
    channels: int,
    *,
    crop_scale: tuple[float, float] = (0.2, 1.0),
    flip: bool = True,
    translate: float = 0.0,
    jitter: float = 0.4,
    jitter_prob: float = 0.8,
    grayscale_prob: float = 0.2,
    blur_prob: float = 0.0,
    erase_prob: float = 0.0,
    seed: int = 0,
    view_size: int | None = None,
) -> keras.Sequential:
    """One augmented view per call of a float32 batch in [0, 1], shape (b, image_size, image_size,
    channels); training=False returns the input unchanged.

    `jitter` is the torchvision ColorJitter strength (brightness/contrast/saturation, hue jitter/4),
    applied to each image with probability `jitter_prob`; saturation, hue and grayscale need 3
    channels and are skipped for 1. `translate` is a fraction of the side (constant 0 fill).
    The blur's kernel is ~10% of the side with sigma in [0.1, 2] (SimCLR appendix A); Keras draws
    one sigma per batch (per image only whether to blur). `erase_prob`: random erasing (Zhong et al.
    2017), per image with that probability one rectangle filled with noise, each side a fraction of the
    image's side drawn as the square root of a uniform draw from [0.02, 0.33] (Keras' RandomErasing);
    last, after the colour changes, as in the paper. `view_size`: the crop is resized to this side
    instead of `image_size` (smaller views cost less to train on: a 24-pixel view of a 32-pixel
    image about 0.6x); the later layers (shift, blur) work at the view's size.
    """
    if channels not in (1, 3):
        raise ConfigError(f"make_view_augmenter channels={channels}: use 1 (grayscale) or 3 (RGB)")
    layer_seeds = iter(range(seed * 16, seed * 16 + 16))  # distinct streams per layer
    input_size, image_size = image_size, view_size or image_size
    layers = [RandomResizedCrop(image_size, image_size, scale=crop_scale, seed=next(layer_seeds))]
    if flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=next(layer_seeds)))
    if translate > 0:
        layers.append(
            keras.layers.RandomTranslation(
                translate, translate, fill_mode="constant", fill_value=0.0, seed=next(layer_seeds)
            )
        )
    if jitter > 0 and jitter_prob > 0:
        jitter_layer = colour_jitter(channels, jitter, seed=next(layer_seeds))
        layers.append(RandomApply(jitter_layer, jitter_prob, seed=next(layer_seeds)))
    if channels == 3 and grayscale_prob > 0:
        layers.append(keras.layers.RandomGrayscale(grayscale_prob, seed=next(layer_seeds)))
    if blur_prob > 0:
        kernel = max(3, (image_size // 10) | 1)  # odd, ~10% of the side
        blur = keras.layers.RandomGaussianBlur(
            # (p, p): a single float p would draw the probability itself uniformly from [0, p]
            factor=(blur_prob, blur_prob),
            kernel_size=kernel,
            sigma=(0.1, 2.0),
            value_range=(0.0, 1.0),
            seed=next(layer_seeds),
        )
        layers.append(blur)
    if erase_prob > 0:
        # (p, p): a single float p would draw the probability itself uniformly from [0, p]
        layers.append(
            keras.layers.RandomErasing(factor=(erase_prob, erase_prob), value_range=(0.0, 1.0), seed=next(layer_seeds))
        )
    layers.append(Clip(0.0, 1.0))
    # Auto-named (unique): a task holding two augmenters must not get two layers of one name.
    return keras.Sequential([keras.Input((input_size, input_size, channels)), *layers])


VIEW_PRESETS: dict[str, dict] = {
    # Supervised fine-tuning (downstream.augment): the label must survive, so mild geometry only: a crop
    # of >= 80% of the area, a 10% shift and a mirror (set flip=false for digits), no colour changes.
    "light": {
        "crop_scale": (0.8, 1.0),
        "flip": True,
        "translate": 0.1,
        "jitter": 0.0,
        "jitter_prob": 0.0,
        "grayscale_prob": 0.0,
        "blur_prob": 0.0,
    },
    # 28x28 digits: no flip (a mirrored 2, 3 or 7 is not a digit); milder crops (>= half the area)
    # and a small shift instead, since small crops of a thin stroke lose the class; 1 channel, so
    # the jitter is brightness/contrast only.
    "mnist": {
        "crop_scale": (0.5, 1.0),
        "flip": False,
        "translate": 0.1,
        "jitter": 0.4,
        "jitter_prob": 0.8,
        "grayscale_prob": 0.0,
        "blur_prob": 0.0,
    },
    # 32x32 colour: SimCLR appendix B.9 for CIFAR-10 (crop, flip, colour jitter of strength 0.5
    # = 0.4/0.4/0.4/0.1 with p=0.8, grayscale p=0.2) and no blur, which hurts at this size.
    "cifar": {
        "crop_scale": (0.2, 1.0),
        "flip": True,
        "translate": 0.0,
        "jitter": 0.4,
        "jitter_prob": 0.8,
        "grayscale_prob": 0.2,
        "blur_prob": 0.0,
    },
    # 96x96 (STL-10, the keras.io SimCLR example's data): as cifar plus blur p=0.5, which SimCLR
    # uses on ImageNet-size images (appendix A) and which helps once images are large enough.
    "stl10": {
        "crop_scale": (0.2, 1.0),
        "flip": True,
        "translate": 0.0,
        "jitter": 0.4,
        "jitter_prob": 0.8,
        "grayscale_prob": 0.2,
        "blur_prob": 0.5,
    },
}
