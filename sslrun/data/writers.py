"""Writers for the original CIFAR-10 and STL-10 file layouts: test fixtures, benchmarks, conversions.

Inputs are NHWC uint8 arrays and labels 0..9; the files match what `cifar.py` and `stl10.py` read.
"""

from __future__ import annotations

import pickle
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from sslrun.data.cifar import CIFAR10_CLASSES, PY_BATCHES
from sslrun.data.stl10 import SIDE, STL10_CLASSES

_CHUNK = 1024  # images per write, so a memmapped unlabeled set is never copied whole


def write_cifar10_python(
    root: Path,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    archive: bool,
    class_names: Sequence[str] = CIFAR10_CLASSES,
) -> Path:
    """`root/cifar-10-batches-py/` (pickles with bytes keys), or `root/cifar-10-python.tar.gz` if archive."""
    splits = _cifar_splits(x_train, y_train, x_test, y_test)

    def fill(folder: Path) -> None:
        for name, (x, y), title in splits:
            batch = {
                b"batch_label": title.encode(),
                b"labels": [int(v) for v in y],
                b"data": _channel_first_rows(x),
                b"filenames": [f"{name}_{i:05d}.png".encode() for i in range(len(y))],
            }
            _pickle(folder / name, batch)
        names = [n.encode() for n in _ten(class_names)]
        _pickle(
            folder / "batches.meta",
            {b"num_cases_per_batch": len(splits[0][1][1]), b"label_names": names, b"num_vis": 3072},
        )

    return _write_layout(Path(root), "cifar-10-batches-py", "cifar-10-python.tar.gz", fill, archive)


def write_cifar10_binary(
    root: Path,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    archive: bool,
    class_names: Sequence[str] = CIFAR10_CLASSES,
) -> Path:
    """`root/cifar-10-batches-bin/` (label byte + 3072 pixels per record), or `cifar-10-binary.tar.gz`."""
    splits = _cifar_splits(x_train, y_train, x_test, y_test)

    def fill(folder: Path) -> None:
        for name, (x, y), _ in splits:
            records = np.concatenate([y.astype(np.uint8)[:, None], _channel_first_rows(x)], axis=1)
            (folder / f"{name}.bin").write_bytes(records.tobytes())
        (folder / "batches.meta.txt").write_text("\n".join(_ten(class_names)) + "\n\n")

    return _write_layout(Path(root), "cifar-10-batches-bin", "cifar-10-binary.tar.gz", fill, archive)


def write_stl10_binary(
    root: Path,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    x_unlabeled: np.ndarray | None,
    *,
    archive: bool,
    class_names: Sequence[str] = STL10_CLASSES,
) -> Path:
    """`root/stl10_binary/` (no unlabeled_X.bin when x_unlabeled is None), or `root/stl10_binary.tar.gz`."""
    images = {"train": x_train, "test": x_test, "unlabeled": x_unlabeled}
    labels = {"train": y_train, "test": y_test}
    for split, x in images.items():
        if x is not None:
            _check_images(f"x_{split}", x, (SIDE, SIDE, 3))
    for split, y in labels.items():
        _check_labels(f"y_{split}", y, len(images[split]))  # type: ignore[arg-type]

    def fill(folder: Path) -> None:
        for split, x in images.items():
            if x is not None:
                _write_stl_images(folder / f"{split}_X.bin", x)
        for split, y in labels.items():
            (folder / f"{split}_y.bin").write_bytes((np.asarray(y) + 1).astype(np.uint8).tobytes())
        (folder / "class_names.txt").write_text("\n".join(_ten(class_names)) + "\n")

    return _write_layout(Path(root), "stl10_binary", "stl10_binary.tar.gz", fill, archive)


def _write_layout(root: Path, folder_name: str, archive_name: str, fill: Callable[[Path], None], archive: bool) -> Path:
    """Fill `root/folder_name/`, or pack it as `root/archive_name` (built in a temp dir, so an
    existing folder of the same name in root is left alone)."""
    root.mkdir(parents=True, exist_ok=True)
    if not archive:
        folder = root / folder_name
        folder.mkdir(exist_ok=True)
        fill(folder)
        return folder
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        folder = Path(tmp) / folder_name
        folder.mkdir()
        fill(folder)
        with tarfile.open(root / archive_name, "w:gz", compresslevel=6) as tar:
            tar.add(folder, arcname=folder_name)
    return root / archive_name


def _cifar_splits(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray
) -> list[tuple[str, tuple[np.ndarray, np.ndarray], str]]:
    """(file stem, (x, y), batch label) for the 5 train batches (sizes as equal as possible) and the test batch."""
    for name, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        _check_images(f"x_{name}", x, (32, 32, 3))
        _check_labels(f"y_{name}", y, len(x))
    parts = np.array_split(np.arange(len(x_train)), 5)
    splits = [
        (PY_BATCHES[i], (x_train[idx], np.asarray(y_train)[idx]), f"training batch {i + 1} of 5")
        for i, idx in enumerate(parts)
    ]
    return splits + [("test_batch", (x_test, np.asarray(y_test)), "testing batch 1 of 1")]


def _channel_first_rows(x: np.ndarray) -> np.ndarray:
    """(n, 32, 32, 3) -> (n, 3072): R plane, G plane, B plane, each row-major."""
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)).reshape(len(x), -1)


def _write_stl_images(path: Path, x: np.ndarray) -> None:
    """NHWC -> per image (channel, col, row) bytes: channel by channel, each channel column-major."""
    with open(path, "wb") as fh:
        for start in range(0, len(x), _CHUNK):
            fh.write(np.ascontiguousarray(x[start : start + _CHUNK].transpose(0, 3, 2, 1)).tobytes())


def _pickle(path: Path, obj: dict) -> None:
    # Protocol 4 keeps bytes as bytes (protocol 2 from Python 3 would wrap them in _codecs.encode).
    path.write_bytes(pickle.dumps(obj, protocol=4))


def _check_images(name: str, x: np.ndarray, shape: tuple[int, int, int]) -> None:
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != shape:
        raise ValueError(f"{name} must be uint8 of shape (n, {', '.join(map(str, shape))}), got {x.dtype} {x.shape}")


def _check_labels(name: str, y: np.ndarray, n: int) -> None:
    y = np.asarray(y)
    if y.shape != (n,) or (y.size and (y.min() < 0 or y.max() > 9)):
        raise ValueError(f"{name} must be {n} labels in 0..9, got shape {y.shape}")


def _ten(class_names: Sequence[str]) -> list[str]:
    if len(class_names) != 10:
        raise ValueError(f"class_names must list 10 names, got {len(class_names)}")
    return list(class_names)
