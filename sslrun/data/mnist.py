"""MNIST and Fashion-MNIST: the four original IDX files (gzip or raw), or Keras' mnist.npz."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sslrun.data.base import RawData
from sslrun.data.idx import read_idx
from sslrun.data.sources import FileFormat
from sslrun.errors import DataError

IDX_ROLES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def _find_idx(folder: Path, stem: str) -> Path | None:
    # The original names, gzipped or not, and the dotted variant some mirrors use.
    dotted = stem.replace("-idx", ".idx")
    for candidate in (f"{stem}.gz", stem, f"{dotted}.gz", dotted):
        if (folder / candidate).is_file():
            return folder / candidate
    return None


def idx_files(folder: Path) -> tuple[dict[str, Path], list[str]]:
    """The four IDX files in `folder`, and the names of the ones missing."""
    found, missing = {}, []
    for role, stem in IDX_ROLES.items():
        path = _find_idx(folder, stem)
        if path is None:
            missing.append(f"{stem}[.gz]")
        else:
            found[role] = path
    return found, missing


def load_idx_folder(folder: Path, cache_dir: Path | None = None) -> RawData:
    if folder.is_file():  # Keras' mnist.npz
        with np.load(folder) as data:
            return RawData(data["x_train"], data["y_train"], data["x_test"], data["y_test"], source=str(folder))
    files, missing = idx_files(folder)
    if missing:
        raise DataError(f"folder {folder} lacks {', '.join(missing)}")
    arrays = {role: read_idx(path, 3 if role.startswith("x") else 1) for role, path in files.items()}
    for split in ("train", "test"):
        n_x, n_y = len(arrays[f"x_{split}"]), len(arrays[f"y_{split}"])
        if n_x != n_y:
            raise DataError(
                f"{folder}: {split} images ({n_x}) and labels ({n_y}) differ in count; "
                "the files come from different data sets or one is damaged"
            )
    return RawData(**arrays, source=f"IDX files in {folder}")


def idx_format(name: str) -> FileFormat:
    def find(folder: Path) -> Path | None:
        if not idx_files(folder)[1]:
            return folder
        npz = folder / f"{name}.npz"
        return npz if name == "mnist" and npz.is_file() else None

    return FileFormat(
        find=find,
        missing=lambda folder: "missing " + ", ".join(idx_files(folder)[1]),
        load=load_idx_folder,
        wanted="the four original IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz)",
    )
