"""Keras' process-wide dtype policy, set for a scope and put back as found."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import keras


@contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Models built inside use `name` (float32 | mixed_float16 | mixed_bfloat16); the caller's policy after."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)
