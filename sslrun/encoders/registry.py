from __future__ import annotations

import keras

from sslrun.errors import ConfigError, SslrunError
from sslrun.registry import Registry

ENCODERS: Registry[keras.Model] = Registry("encoder")

# Layers whose name starts with this form the encoder's dense "neck" (after the
# conv stack); downstream.freeze=backbone keeps them trainable in phase 1.
NECK_PREFIX = "neck_"


def build_encoder(
    name: str, input_shape: tuple[int, int, int], width: float = 1.0, input_scale: float = 1.0
) -> keras.Model:
    """The registered encoder; input_scale != 1 multiplies the [0, 1] pixels first (seed 001 feeds 0-255)."""
    encoder = ENCODERS.build(name, input_shape=tuple(input_shape), width=width)
    if input_scale != 1.0:
        if not isinstance(encoder, keras.Sequential):
            raise SslrunError(
                f"encoder.input_scale={input_scale} works with the sequential seed encoders "
                f"(seed000_cnn .. seed004_cnn), not '{name}'; leave it at 1.0"
            )
        scale = keras.layers.Rescaling(input_scale, name="input_scale")
        encoder = keras.Sequential([keras.Input(shape=tuple(input_shape)), scale, *encoder.layers], name=encoder.name)
    shape = encoder.compute_output_shape((None, *input_shape))
    if len(shape) != 2:
        raise ConfigError(f"encoder '{name}' must output (batch, features), got {shape}")
    return encoder


def accept_image_size(encoder: keras.Model, shape: tuple[int, ...], key: str) -> None:
    """Let `encoder` also take images of `shape` (pretext views smaller than the images it was built for).

    The layers are size-agnostic when the encoder pools globally; only the functional model's
    input check pins the size, so it is lifted. Encoders that flatten a fixed grid are refused.
    """
    built, spec = encoder.compute_output_shape((None, *encoder.input_shape[1:])), encoder.input_spec
    flattens = any(isinstance(layer, keras.layers.Flatten) for layer in encoder.layers)
    encoder.input_spec = None
    if flattens or tuple(encoder.compute_output_shape((None, *shape))) != tuple(built):
        encoder.input_spec = spec
        raise SslrunError(
            f"{key}: encoder '{encoder.name}' flattens a fixed grid, so it takes only "
            f"{encoder.input_shape[1:]} images, not {tuple(shape)}; use a globally pooled "
            "encoder (small_cnn, wide_cnn, resnet*) or leave the size null"
        )


def scaled(filters: int, width: float) -> int:
    return max(1, int(round(filters * width)))
