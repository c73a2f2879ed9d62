"""The data set registry: name -> loader returning RawData, and each one's original file format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sslrun.data.base import RawData
from sslrun.data.cifar import describe_missing_cifar10, find_cifar10, load_cifar10
from sslrun.data.image_folder import load_image_folder
from sslrun.data.mnist import idx_format
from sslrun.data.sources import FileFormat, load_dataset
from sslrun.data.stl10 import describe_missing_stl10, find_stl10, load_stl10
from sslrun.data.synthetic import make_synthetic
from sslrun.errors import DataError
from sslrun.registry import Registry

DATASETS: Registry[RawData] = Registry("dataset")

FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

# The original distribution files of each data set that has them (also what `sslrun-data prepare` converts).
FORMATS: dict[str, FileFormat] = {
    "mnist": idx_format("mnist"),
    "fashion_mnist": idx_format("fashion_mnist"),
    "cifar10": FileFormat(
        find=find_cifar10,
        missing=describe_missing_cifar10,
        load=lambda found, cache_dir: load_cifar10(found),
        wanted="cifar-10-python.tar.gz or cifar-10-binary.tar.gz (or their unpacked cifar-10-batches-* folder)",
    ),
    "stl10": FileFormat(
        find=find_stl10,
        missing=describe_missing_stl10,
        load=load_stl10,
        wanted="stl10_binary.tar.gz (or its unpacked stl10_binary/ folder with train_X.bin, ..., unlabeled_X.bin)",
    ),
}
APT_HINT = {"fashion_mnist": "\n  - offline on Debian: apt-get install dataset-fashion-mnist"}
UNLABELED_SPLIT = {"stl10": "unlabelled"}  # tfds' name for it


def _original(name: str, class_names: tuple[str, ...] = ()):
    def load(source: str, path: str | None, data_dir: str | None, download: bool, cache_dir: str, **_: Any) -> RawData:
        data = load_dataset(
            name,
            FORMATS[name],
            source=source,
            path=path,
            data_dir=data_dir,
            download=download,
            cache_dir=Path(cache_dir).expanduser(),
            unlabeled_split=UNLABELED_SPLIT.get(name),
            hint=APT_HINT.get(name, ""),
        )
        if class_names:
            data.class_names = class_names
        return data

    return load


DATASETS.register("mnist")(_original("mnist", tuple(str(i) for i in range(10))))
DATASETS.register("fashion_mnist")(_original("fashion_mnist", FASHION_CLASSES))
DATASETS.register("cifar10")(_original("cifar10"))
DATASETS.register("stl10")(_original("stl10"))


@DATASETS.register("image_folder")
def image_folder(
    path: str | None,
    image_size: int,
    channels: int,
    on_bad_image: str,
    test_fraction: float,
    cache_dir: str,
    **_: Any,
) -> RawData:
    if not path:
        raise DataError(
            "dataset=image_folder needs dataset.path=FOLDER, a folder holding train/<class>/*.jpg|png "
            "(and optionally test/<class>/* and unlabeled/**)"
        )
    return load_image_folder(
        path,
        image_size,
        channels,
        on_bad_image=on_bad_image,
        test_fraction=test_fraction,
        cache_dir=Path(cache_dir).expanduser(),
    )


@DATASETS.register("synthetic")
def synthetic(train_size: int, test_size: int, noise: float, image_size: int, channels: int, **_: Any) -> RawData:
    return make_synthetic(train_size, test_size, noise, size=image_size, channels=channels)
