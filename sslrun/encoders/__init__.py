"""Encoders: keras.Model image -> feature vector. Heads belong to tasks."""

from sslrun.encoders import cnn  # noqa: F401  (registers the CNNs)
from sslrun.encoders.registry import ENCODERS, build_encoder

__all__ = ["ENCODERS", "build_encoder"]
