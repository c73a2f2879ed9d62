"""Where a data set comes from, tried in order, each attempt logged.

1. `dataset.path` (the user's file or folder; must exist)
2. `$SSLRUN_DATA_DIR/<name>`
3. `/usr/share/datasets/<name>` or `$SSLRUN_SYSTEM_DATASETS/<name>` (Debian: `apt-get install dataset-fashion-mnist`)
4. `~/.keras/datasets/<name>` (and Keras' `mnist.npz`), and `~/.keras/datasets` itself
5. tensorflow-datasets: prepared data in `data_dir`, else a download when online

In 1-4 the data set's original distribution files are looked for (a `FileFormat`).
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from sslrun.data.base import RawData
from sslrun.errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileFormat:
    """A data set's original files: how to find them in a folder, say what is missing, and read them."""

    find: Callable[[Path], Path | None]  # folder -> the file or folder to read, or None
    missing: Callable[[Path], str]  # folder -> what was looked for and not found
    load: Callable[[Path, Path], RawData]  # (found path, cache_dir) -> data
    wanted: str  # for error messages: "the four IDX files (train-images-idx3-ubyte.gz, ...)"


def _spellings(name: str) -> list[str]:
    return list(dict.fromkeys([name, name.replace("_", "-")]))


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
    keras_dir = Path("~/.keras/datasets").expanduser()
    folders += [keras_dir / s for s in _spellings(name)] + [keras_dir]  # keras unpacks archives into its root
    return list(dict.fromkeys(folders))


def find_files(name: str, path: str | None, fmt: FileFormat, looked: list[str]) -> Path | None:
    """The first place holding `name`'s original files; every place tried is appended to `looked`."""
    if path and not Path(path).expanduser().exists():
        raise DataError(
            f"dataset.path={path} does not exist; give the folder holding {fmt.wanted} of {name}, "
            "or drop dataset.path to search the usual places"
        )
    for folder in candidate_folders(name, path):
        if not folder.is_dir():
            looked.append(f"{folder} (no such folder)")
        elif (found := fmt.find(folder)) is not None:
            return found
        else:
            looked.append(f"{folder} ({fmt.missing(folder)})")
        log.info("dataset %s: not in %s", name, looked[-1])
    return None


def load_from_files(name: str, path: str | None, fmt: FileFormat, cache_dir: Path, looked: list[str]) -> RawData | None:
    found = find_files(name, path, fmt, looked)
    if found is None:
        return None
    log.info("dataset %s: reading original files from %s", name, found)
    return fmt.load(found, cache_dir)


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


def load_from_tfds(
    name: str,
    data_dir: str | None,
    download: bool,
    looked: list[str],
    cache_dir: Path | None = None,
    unlabeled_split: str | None = None,
) -> RawData | None:
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=data_dir)
    where = str(Path(builder.data_path))
    if not builder.is_prepared():
        urls = list(builder.url_infos or {})
        if not download:
            looked.append(f"tensorflow-datasets at {where} (not prepared; dataset.download=false)")
            log.info("dataset %s: not in %s", name, looked[-1])
            return None
        if not _online(urls):
            looked.append(f"tensorflow-datasets at {where} (not prepared, and no network to download it)")
            log.info("dataset %s: not in %s", name, looked[-1])
            return None
        log.info("dataset %s: downloading and preparing through tensorflow-datasets into %s", name, where)
        builder.download_and_prepare()
    log.info("dataset %s: loading prepared tensorflow-datasets data from %s", name, where)
    (x_train, y_train), (x_test, y_test) = (_split_arrays(builder, s) for s in ("train", "test"))
    names = tuple(builder.info.features["label"].names) if "label" in builder.info.features else ()
    unlabeled = None
    if unlabeled_split:
        unlabeled = _unlabeled_on_disk(builder, unlabeled_split, Path(cache_dir or where) / "tfds-arrays")
    return RawData(x_train, y_train, x_test, y_test, source=f"tfds {where}", class_names=names, x_unlabeled=unlabeled)


def _split_arrays(builder, split: str) -> tuple[np.ndarray, np.ndarray]:
    import tensorflow_datasets as tfds

    batches = list(tfds.as_numpy(builder.as_dataset(split=split, batch_size=4096)))
    return np.concatenate([b["image"] for b in batches]), np.concatenate([b["label"] for b in batches])


def _unlabeled_on_disk(builder, split: str, cache: Path) -> np.ndarray:
    """A large image-only split written once to a raw uint8 file and memory-mapped (never one big array)."""
    import tensorflow_datasets as tfds

    stem = f"{builder.name}-{builder.version}-{split}"
    data, meta = cache / f"{stem}.u8", cache / f"{stem}.json"
    if not meta.exists():
        cache.mkdir(parents=True, exist_ok=True)
        tmp, count, shape = cache / f".{os.getpid()}.tmp.{stem}.u8", 0, None
        log.info("writing tfds %s split %s to %s (once)", builder.name, split, data)
        try:
            with open(tmp, "wb") as f:
                for batch in tfds.as_numpy(builder.as_dataset(split=split, batch_size=1024)):
                    f.write(np.ascontiguousarray(batch["image"], dtype=np.uint8).tobytes())
                    count, shape = count + len(batch["image"]), batch["image"].shape[1:]
            os.replace(tmp, data)
        finally:
            tmp.unlink(missing_ok=True)
        meta.write_text(json.dumps({"count": count, "shape": list(shape)}))  # written last: marks it complete
    info = json.loads(meta.read_text())
    return np.memmap(data, np.uint8, "r", shape=(info["count"], *info["shape"]))


def not_found(name: str, fmt: FileFormat, looked: list[str], hint: str = "") -> DataError:
    places = "\n  - ".join(looked)
    err = DataError(
        f"dataset '{name}' not found. Looked in:\n  - {places}\nWays to get it:\n"
        f"  - with network: `sslrun-data prepare dataset={name}` (tensorflow-datasets), or just run with "
        f"dataset.download=true{hint}\n"
        f"  - put {fmt.wanted} in a folder and set dataset.path=FOLDER (or $SSLRUN_DATA_DIR/{name})"
    )
    err.looked = looked
    return err


def load_dataset(
    name: str,
    fmt: FileFormat,
    *,
    source: str,
    path: str | None,
    data_dir: str | None,
    download: bool,
    cache_dir: Path,
    unlabeled_split: str | None = None,
    hint: str = "",
) -> RawData:
    """Original files (dataset.path, then the well-known places), then tensorflow-datasets."""
    looked: list[str] = []
    data = None
    if source in ("auto", "files"):
        data = load_from_files(name, path, fmt, cache_dir, looked)
    if data is None and source in ("auto", "tfds"):
        data = load_from_tfds(name, data_dir, download, looked, cache_dir, unlabeled_split)
    if data is None:
        raise not_found(name, fmt, looked, hint)
    return data
