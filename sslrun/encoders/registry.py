from __future__ import annotations

import keras

from sslrun.errors import SslrunError
from sslrun.registry import Registry

ENCODERS: Registry[keras.Model] = Registry("encoder")

# Layers whose name starts with this form the encoder's dense "neck" (after the
# conv stack); downstream.freeze=backbone keeps them trainable in phase 1.
NECK_PREFIX = "neck_"


def build_encoder(name: str, input_shape: tuple[int, int, int], width: float = 1.0,
                  input_scale: float = 1.0) -> keras.Model:
    """The registered encoder; input_scale != 1 multiplies the [0, 1] pixels first (seed 001 feeds 0-255)."""
    encoder = ENCODERS.build(name, input_shape=tuple(input_shape), width=width)
    if input_scale != 1.0:
        if not isinstance(encoder, keras.Sequential):
            raise SslrunError(f"encoder.input_scale={input_scale} works with the sequential seed encoders "
                             f"(seed000_cnn .. seed004_cnn), not '{name}'; leave it at 1.0")
        scale = keras.layers.Rescaling(input_scale, name="input_scale")
        encoder = keras.Sequential([keras.Input(shape=tuple(input_shape)), scale, *encoder.layers], name=encoder.name)
    shape = encoder.compute_output_shape((None, *input_shape))
    if len(shape) != 2:
        raise ValueError(f"encoder '{name}' must output (batch, features), got {shape}")
    return encoder


def scaled(filters: int, width: float) -> int:
    return max(1, int(round(filters * width)))
