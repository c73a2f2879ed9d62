from __future__ import annotations

import keras

from sslrun.registry import Registry

ENCODERS: Registry[keras.Model] = Registry("encoder")

# Layers whose name starts with this form the encoder's dense "neck" (after the
# conv stack); downstream.freeze=backbone keeps them trainable in phase 1.
NECK_PREFIX = "neck_"


def build_encoder(name: str, input_shape: tuple[int, int, int], width: float = 1.0) -> keras.Model:
    encoder = ENCODERS.build(name, input_shape=tuple(input_shape), width=width)
    shape = encoder.compute_output_shape((None, *input_shape))
    if len(shape) != 2:
        raise ValueError(f"encoder '{name}' must output (batch, features), got {shape}")
    return encoder


def scaled(filters: int, width: float) -> int:
    return max(1, int(round(filters * width)))
