"""`sslrun-data prepare`: tensorflow-datasets data from a download, or offline from local original files.

Offline, the local files are placed in tfds' download cache under the names tfds
gives its downloads (`<download_dir>/<name>/<get_dl_fname(url, sha256)>` plus a
`.INFO` file); tfds then trusts them and prepares as if it had downloaded them.
So a login node with the archives can prepare, and offline compute nodes run
with `dataset.source=tfds`.
"""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import tarfile
import tempfile
import time
from pathlib import Path

from sslrun.data.cifar import load_cifar10
from sslrun.data.datasets import FORMATS
from sslrun.data.idx import read_idx_count
from sslrun.data.mnist import IDX_ROLES, idx_files
from sslrun.data.sources import _online, find_files, not_found
from sslrun.data.writers import write_cifar10_binary
from sslrun.errors import DataError

log = logging.getLogger(__name__)


def prepare(name: str, path: str | None, data_dir: str | None, offline: bool = False) -> str:
    """Prepare tfds data set `name` in `data_dir`; return a one-line account of what was done."""
    import tensorflow_datasets as tfds

    if name not in FORMATS:
        raise DataError(
            f"sslrun-data prepare: dataset={name} has no tensorflow-datasets builder; "
            f"valid: {', '.join(sorted(FORMATS))}"
        )
    builder = tfds.builder(name, data_dir=data_dir)
    if builder.is_prepared():
        return f"{name}: already prepared in {builder.data_dir}"
    download_dir = Path(builder.data_dir).parents[1] / "downloads"
    start = time.perf_counter()
    if path is None and not offline and _online(list(builder.url_infos)):
        how = "downloaded"
    else:
        looked: list[str] = []
        found = find_files(name, path, FORMATS[name], looked)
        if found is None:
            raise not_found(name, FORMATS[name], looked)
        _seed_download_cache(builder, found, download_dir)
        how = f"from local files in {found}"
    builder.download_and_prepare(download_dir=str(download_dir))
    sizes = {str(split): info.num_examples for split, info in builder.info.splits.items()}
    return f"{name}: prepared {how} into {builder.data_dir} in {time.perf_counter() - start:.1f}s; splits {sizes}"


def _seed_download_cache(builder, found: Path, download_dir: Path) -> None:
    from tensorflow_datasets.core.download import resource as resource_lib

    for url, info in builder.url_infos.items():
        dest = download_dir / builder.name / resource_lib.get_dl_fname(url, info.checksum)
        if resource_lib.is_locally_cached(dest):
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{os.getpid()}.tmp.{dest.name}")
        try:
            _write_original(builder.name, info.filename, found, tmp)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        resource_lib.write_info_file(
            url=url, path=dest, dataset_name=builder.name, original_fname=info.filename, url_info=info
        )
        log.info("placed %s for tfds as %s", info.filename, dest)


def _write_original(name: str, filename: str, found: Path, out: Path) -> None:
    """Write the upstream file `filename` of data set `name` to `out`, from whatever local form was found."""
    if found.is_file() and found.name == filename:
        _link_or_copy(found, out)
    elif name in ("mnist", "fashion_mnist"):
        _idx_gz(found, filename, out)
    elif name == "cifar10":
        with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
            raw = load_cifar10(found)
            archive = write_cifar10_binary(
                Path(tmp), raw.x_train, raw.y_train, raw.x_test, raw.y_test, archive=True, class_names=raw.class_names
            )
            os.replace(archive, out)
    elif name == "stl10":
        folder = found if found.is_dir() else found.parent
        with tarfile.open(out, "w:gz", compresslevel=1) as tar:  # level 1: 2.6 GB, speed over size
            tar.add(folder, arcname="stl10_binary")
    else:
        raise DataError(f"don't know how to turn {found} into {filename} for tensorflow-datasets")


# tfds' MNIST-family builders reshape to these fixed sizes
TFDS_IDX_COUNTS = {"x_train": 60000, "y_train": 60000, "x_test": 10000, "y_test": 10000}


def _idx_gz(folder: Path, filename: str, out: Path) -> None:
    files, _ = idx_files(folder)
    for role, path in files.items():
        count = read_idx_count(path)
        if count != TFDS_IDX_COUNTS[role]:
            raise DataError(
                f"{path} holds {count:,} items, but tensorflow-datasets' builder needs exactly "
                f"{TFDS_IDX_COUNTS[role]:,}; these are not the full original files. sslrun reads them directly: "
                f"run with dataset.path={folder} instead of preparing tfds data"
            )
    role = next(r for r, stem in IDX_ROLES.items() if filename.startswith(stem))
    src = files[role]
    if src.suffix == ".gz":
        _link_or_copy(src, out)
    else:
        with open(src, "rb") as f, gzip.open(out, "wb") as g:
            shutil.copyfileobj(f, g)


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
