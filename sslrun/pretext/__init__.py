"""Pretext tasks: keras.Models that own heads and augmentations and wrap an encoder."""

from sslrun.pretext import barlow_twins, byol, colorization, rotation, simclr, vicreg  # noqa: F401  (register)
from sslrun.pretext.registry import PRETEXTS

__all__ = ["PRETEXTS"]
