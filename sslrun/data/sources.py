"""Where MNIST-family data comes from, tried in order, each attempt logged.

1. `dataset.path` (the user's folder; must exist)
2. `$SSLRUN_DATA_DIR/<name>`
3. `/usr/share/datasets/<name>` or `$SSLRUN_SYSTEM_DATASETS/<name>` (Debian: `apt-get install dataset-fashion-mnist`)
4. `~/.keras/datasets/<name>` (and Keras' `mnist.npz`)
5. tensorflow-datasets: prepared data in `data_dir`, else a download when online
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from sslrun.data.base import RawData
from sslrun.data.idx import read_idx
from sslrun.errors import DataError

log = logging.getLogger(__name__)

IDX_ROLES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def _spellings(name: str) -> list[str]:
    return list(dict.fromkeys([name, name.replace("_", "-")]))


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


def load_idx_folder(folder: Path) -> RawData:
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


def candidate_folders(name: str, path: str | None) -> list[Path]:
    """Folders to look in, in order, for data set `name`."""
    if path:
        return [Path(path).expanduser()]
    folders = []
    if os.environ.get("SSLRUN_DATA_DIR"):
        root = Path(os.environ["SSLRUN_DATA_DIR"]).expanduser()
        folders += [root / s for s in _spellings(name)]
    # Debian's dataset packages; $SSLRUN_SYSTEM_DATASETS overrides the place (tests, other distros)
    system = Path(os.environ.get("SSLRUN_SYSTEM_DATASETS", "/usr/share/datasets"))
    folders += [system / s for s in _spellings(name)]
    folders += [Path("~/.keras/datasets").expanduser() / s for s in _spellings(name)]
    return list(dict.fromkeys(folders))


def _keras_npz(name: str) -> Path | None:
    npz = Path("~/.keras/datasets").expanduser() / f"{name}.npz"
    return npz if name == "mnist" and npz.is_file() else None


def load_from_files(name: str, path: str | None, looked: list[str]) -> RawData | None:
    """Original IDX files from the first folder that has all four; None if none does."""
    if path and not Path(path).expanduser().exists():
        raise DataError(
            f"dataset.path={path} does not exist; give the folder holding the four IDX files "
            f"of {name} (train-images-idx3-ubyte.gz, ...), or drop dataset.path to search the usual places"
        )
    for folder in candidate_folders(name, path):
        if not folder.is_dir():
            looked.append(f"{folder} (no such folder)")
            continue
        files, missing = idx_files(folder)
        if missing:
            looked.append(f"{folder} (missing {', '.join(missing)})")
            continue
        log.info("dataset %s: reading IDX files from %s", name, folder)
        return load_idx_folder(folder)
    npz = _keras_npz(name)
    if npz is not None:
        log.info("dataset %s: reading %s", name, npz)
        with np.load(npz) as data:
            return RawData(data["x_train"], data["y_train"], data["x_test"], data["y_test"], source=str(npz))
    looked.append(f"{Path('~/.keras/datasets').expanduser() / (name + '.npz')} (not there)")
    return None


def _online(urls: list[str], timeout: float = 3.0) -> bool:
    """Whether the first download host answers; tfds itself retries offline for minutes."""
    if not urls:
        return False
    host = urlparse(urls[0])
    try:
        with socket.create_connection((host.hostname, host.port or (443 if host.scheme == "https" else 80)), timeout):
            return True
    except OSError:
        return False


def load_from_tfds(name: str, data_dir: str | None, download: bool, looked: list[str]) -> RawData | None:
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=data_dir)
    where = str(Path(builder.data_path))
    if not builder.is_prepared():
        urls = list(builder.url_infos or {})
        if not download:
            looked.append(f"tensorflow-datasets at {where} (not prepared; dataset.download=false)")
            return None
        if not _online(urls):
            looked.append(f"tensorflow-datasets at {where} (not prepared, and no network to download it)")
            return None
        log.info("dataset %s: downloading and preparing through tensorflow-datasets into %s", name, where)
        builder.download_and_prepare()
    log.info("dataset %s: loading prepared tensorflow-datasets data from %s", name, where)
    (x_train, y_train), (x_test, y_test) = (_split_arrays(builder, s) for s in ("train", "test"))
    return RawData(x_train, y_train, x_test, y_test, source=f"tfds {where}")


def _split_arrays(builder, split: str) -> tuple[np.ndarray, np.ndarray]:
    import tensorflow_datasets as tfds

    batches = list(tfds.as_numpy(builder.as_dataset(split=split, batch_size=4096)))
    return np.concatenate([b["image"] for b in batches]), np.concatenate([b["label"] for b in batches])


def not_found(name: str, looked: list[str]) -> DataError:
    places = "\n  - ".join(looked)
    apt = "\n  - offline on Debian: apt-get install dataset-fashion-mnist" if name == "fashion_mnist" else ""
    return DataError(
        f"dataset '{name}' not found. Looked in:\n  - {places}\nWays to get it:\n"
        f"  - with network: it downloads itself through tensorflow-datasets (dataset.download=true)"
        f"{apt}\n  - put the four original IDX files in a folder and set dataset.path=FOLDER "
        f"(or $SSLRUN_DATA_DIR/{name})"
    )


def load_mnist_family(name: str, source: str, path: str | None, data_dir: str | None, download: bool) -> RawData:
    looked: list[str] = []
    data = None
    if source in ("auto", "files"):
        data = load_from_files(name, path, looked)
    if data is None and source in ("auto", "tfds"):
        data = load_from_tfds(name, data_dir, download, looked)
    if data is None:
        raise not_found(name, looked)
    return data
