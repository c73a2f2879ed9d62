"""Reader for STL-10's original binary files (`stl10_binary/` or `stl10_binary.tar.gz`).

Each image is 96*96*3 bytes, stored channel by channel (R, G, B), each channel in column-major
order. Train and test (13 000 images) are read into memory; the 100 000 unlabeled images
(2.8 GB) stay on disk as a read-only memmap view. The 2.6 GB archive is extracted once into
the cache and reused.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path

import numpy as np

from sslrun.data.base import RawData
from sslrun.data.cifar import tar_mode
from sslrun.errors import DataError

log = logging.getLogger(__name__)

STL10_CLASSES = (
    "airplane",
    "bird",
    "car",
    "cat",
    "deer",
    "dog",
    "horse",
    "monkey",
    "ship",
    "truck",
)
SIDE = 96
IMAGE_BYTES = SIDE * SIDE * 3
FOLDER, ARCHIVE = "stl10_binary", "stl10_binary.tar.gz"
_REDOWNLOAD = f"download {ARCHIVE} again"
_FILES = ("train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin", "unlabeled_X.bin")


def find_stl10(folder: Path) -> Path | None:
    """`stl10_binary/` or `stl10_binary.tar.gz` in `folder`, or `folder` itself if it holds train_X.bin."""
    folder = Path(folder)
    if (folder / FOLDER).is_dir():
        return folder / FOLDER
    if (folder / ARCHIVE).is_file():
        return folder / ARCHIVE
    if (folder / "train_X.bin").is_file():
        return folder
    return None


def describe_missing_stl10(folder: Path) -> str:
    return f"no {FOLDER}/, {ARCHIVE} or train_X.bin"


def load_stl10(path: Path, cache_dir: Path) -> RawData:
    """STL-10 from its binary folder or archive; an archive is extracted once under `cache_dir/stl10/`."""
    folder = _binary_folder(Path(path), Path(cache_dir))
    x_train, y_train = _labeled(folder, "train")
    x_test, y_test = _labeled(folder, "test")
    unlabeled = folder / "unlabeled_X.bin"
    if unlabeled.is_file():
        x_unlabeled = _images_memmap(unlabeled)
        log.info("STL-10 unlabeled images: %d, memory-mapped from %s", len(x_unlabeled), unlabeled)
    else:
        x_unlabeled = None
        log.warning(
            "STL-10 folder %s has no unlabeled_X.bin: continuing without the unlabeled images",
            folder,
        )
    return RawData(
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        source=f"STL-10 binary files in {folder}",
        class_names=_class_names(folder),
        x_unlabeled=x_unlabeled,
    )


def _binary_folder(path: Path, cache_dir: Path) -> Path:
    """The folder holding train_X.bin etc., extracting the archive first if `path` is or holds one."""
    if path.is_dir():
        # Any of the .bin files makes it the binary folder: _labeled then names what is missing.
        found = find_stl10(path) or (path if any((path / n).is_file() for n in _FILES) else None)
        if found is None:
            raise DataError(f"folder {path} holds no STL-10 files: {describe_missing_stl10(path)}")
        if found.is_dir():
            return found
        path = found
    elif not path.is_file():
        raise DataError(f"STL-10 path {path} does not exist; point dataset.path at {FOLDER}/ or {ARCHIVE}")
    extracted = _extract_once(path, cache_dir)
    folder = find_stl10(extracted)
    if folder is None or not folder.is_dir():
        raise DataError(
            f"STL-10 archive {path} holds no {FOLDER}/train_X.bin (extracted to {extracted}); "
            f"it is not the STL-10 binary archive: {_REDOWNLOAD}"
        )
    return folder


def _cache_name(archive: Path) -> str:
    """Changes when the archive is replaced, so a new download is extracted afresh."""
    stat = archive.stat()
    key = f"{archive.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return f"{archive.name.split('.')[0]}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def _extract_once(archive: Path, cache_dir: Path) -> Path:
    final = cache_dir / "stl10" / _cache_name(archive)
    if final.is_dir():
        log.info("STL-10: reusing %s, extracted earlier from %s", final, archive)
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    # Extract beside the final folder, then rename: a crash or a concurrent run never sees half a folder.
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    log.info("STL-10: extracting %s into %s (about 3 GB for the full data set)", archive, final)
    try:
        with tarfile.open(archive, tar_mode(archive)) as tar:
            tar.extractall(tmp, filter="data")
        tmp.chmod(0o755)
        os.rename(tmp, final)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if final.is_dir():  # another process finished the same extraction first
            log.info("STL-10: reusing %s, extracted meanwhile by another process", final)
            return final
        raise DataError(
            f"STL-10 archive {archive} could not be extracted into {final.parent} ({err}): "
            f"the archive is damaged or truncated, or the disk is full; {_REDOWNLOAD}"
        ) from err
    return final


def _images_memmap(path: Path) -> np.ndarray:
    """Read-only NHWC view of an X file; nothing is read until pixels are used."""
    size = path.stat().st_size
    if size == 0 or size % IMAGE_BYTES:
        raise DataError(
            f"STL-10 file {path} is {size} bytes, not a multiple of 96*96*3={IMAGE_BYTES}: "
            f"the file is truncated or not STL-10; {_REDOWNLOAD}"
        )
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    # Channel by channel, each channel column-major: (n, c, col, row) -> (n, row, col, c).
    return raw.reshape(-1, 3, SIDE, SIDE).transpose(0, 3, 2, 1)


def _labeled(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    x_path, y_path = folder / f"{split}_X.bin", folder / f"{split}_y.bin"
    for needed in (x_path, y_path):
        if not needed.is_file():
            raise DataError(
                f"STL-10 folder {folder} lacks {needed.name}: the download or extraction is incomplete; {_REDOWNLOAD}"
            )
    log.info("reading STL-10 %s images from %s", split, x_path)
    x = np.array(_images_memmap(x_path), order="C")  # a copy in memory, no longer tied to the file
    y = np.fromfile(y_path, dtype=np.uint8).astype(np.int64)
    if len(x) != len(y):
        raise DataError(
            f"STL-10 {split} images ({len(x)} in {x_path}) and labels ({len(y)} in {y_path}) differ in count; "
            f"the files come from different downloads or one is damaged; {_REDOWNLOAD}"
        )
    bad = y[(y < 1) | (y > 10)]
    if bad.size:
        raise DataError(
            f"STL-10 file {y_path} has labels outside 1..10 (e.g. {int(bad[0])}): it is not an STL-10 label "
            f"file or is damaged; {_REDOWNLOAD}"
        )
    return x, y - 1


def _class_names(folder: Path) -> tuple[str, ...]:
    path = folder / "class_names.txt"
    if not path.is_file():
        return STL10_CLASSES
    names = tuple(line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip())
    if len(names) != 10:
        raise DataError(
            f"STL-10 file {path} lists {len(names)} class names, not 10; delete it to use the standard names"
        )
    return names
