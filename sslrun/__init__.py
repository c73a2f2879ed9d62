"""sslrun: config-driven self-supervised pretext training and evaluation on images."""

__version__ = "0.1.0"
