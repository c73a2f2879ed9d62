"""The data set registry: name -> loader returning RawData."""

from __future__ import annotations

from typing import Any

from sslrun.data.base import RawData
from sslrun.data.sources import load_mnist_family
from sslrun.data.synthetic import make_synthetic
from sslrun.registry import Registry

DATASETS: Registry[RawData] = Registry("dataset")

FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


@DATASETS.register("mnist")
def mnist(source: str, path: str | None, data_dir: str | None, download: bool, **_: Any) -> RawData:
    data = load_mnist_family("mnist", source, path, data_dir, download)
    data.class_names = tuple(str(i) for i in range(10))
    return data


@DATASETS.register("fashion_mnist")
def fashion_mnist(source: str, path: str | None, data_dir: str | None, download: bool, **_: Any) -> RawData:
    data = load_mnist_family("fashion_mnist", source, path, data_dir, download)
    data.class_names = FASHION_CLASSES
    return data


@DATASETS.register("synthetic")
def synthetic(train_size: int, test_size: int, noise: float, image_size: int, **_: Any) -> RawData:
    return make_synthetic(train_size, test_size, noise, size=image_size)
