"""Pretext tasks: keras.Models that own heads and augmentations and wrap an encoder."""

from sslrun.pretext import rotation  # noqa: F401  (registers rotation)
from sslrun.pretext.registry import PRETEXTS

__all__ = ["PRETEXTS"]
