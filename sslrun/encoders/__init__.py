"""Encoders: keras.Model image -> feature vector. Heads belong to tasks."""

from sslrun.encoders import cnn, resnet  # noqa: F401  (registers the CNNs and ResNets)
from sslrun.encoders.registry import ENCODERS, build_encoder

__all__ = ["ENCODERS", "build_encoder"]
