"""Reader for the original CIFAR-10 files: Python pickles or binary records, as a folder or `.tar.gz`.

The archives are read in memory with `tarfile` (170 MB), never extracted to disk.
"""

from __future__ import annotations

import io
import logging
import pickle
import tarfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np

from sslrun.data.base import RawData
from sslrun.errors import DataError

log = logging.getLogger(__name__)

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
PIXELS = 32 * 32 * 3  # one image, channel-first: R 1024, G 1024, B 1024
RECORD = 1 + PIXELS  # binary record: label byte, then the pixels
PY_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
BIN_BATCHES = tuple(f"{name}.bin" for name in PY_BATCHES)
PY_META, BIN_META = "batches.meta", "batches.meta.txt"
# Where find_cifar10 looks inside a folder, in order.
LAYOUTS = (
    "cifar-10-batches-py",
    "cifar-10-python.tar.gz",
    "cifar-10-batches-bin",
    "cifar-10-binary.tar.gz",
)
# What a CIFAR-10 pickle may refer to: numpy arrays and Python 3's protocol-2 bytes. Anything
# else (os.system, ...) is refused, so a hostile file cannot run code while being read.
_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}
_REDOWNLOAD = "download cifar-10-python.tar.gz (or cifar-10-binary.tar.gz) again"


def find_cifar10(folder: Path) -> Path | None:
    """The CIFAR-10 original files in `folder` (or `folder` itself), or None."""
    folder = Path(folder)
    if _is_batches_folder(folder):
        return folder
    for name in LAYOUTS:
        candidate = folder / name
        is_archive = name.endswith(".tar.gz")
        if (is_archive and candidate.is_file()) or (not is_archive and candidate.is_dir()):
            return candidate
    return None


def describe_missing_cifar10(folder: Path) -> str:
    return f"no {', '.join(n + ('' if n.endswith('.gz') else '/') for n in LAYOUTS[:-1])} or {LAYOUTS[-1]}"


def load_cifar10(path: Path) -> RawData:
    """CIFAR-10 from a batches folder, a folder holding one, or one of the two `.tar.gz` archives."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"CIFAR-10 path {path} does not exist; point dataset.path at the folder or archive")
    found = find_cifar10(path) if path.is_dir() else path
    if found is None:
        raise DataError(f"folder {path} holds no CIFAR-10 files: {describe_missing_cifar10(path)}")
    files = _read_tar(found) if found.is_file() else _read_folder(found)
    binary = any(name.endswith(".bin") for name in files)
    batches = BIN_BATCHES if binary else PY_BATCHES
    missing = [name for name in batches if name not in files]
    if missing:
        raise DataError(
            f"CIFAR-10 {'archive' if found.is_file() else 'folder'} {found} lacks {', '.join(missing)}: "
            f"the download is incomplete; {_REDOWNLOAD}"
        )
    parse = _parse_binary if binary else _parse_pickle
    parts = [parse(*files[name]) for name in batches]
    kind = "binary batches" if binary else "python pickles"
    log.info("read CIFAR-10 %s from %s", kind, found)
    return RawData(
        x_train=np.concatenate([x for x, _ in parts[:5]]),
        y_train=np.concatenate([y for _, y in parts[:5]]),
        x_test=np.ascontiguousarray(parts[5][0]),
        y_test=parts[5][1],
        source=f"CIFAR-10 {kind} in {found}",
        class_names=_class_names(files, binary),
    )


def _is_batches_folder(folder: Path) -> bool:
    # Any one batch will do, so a folder missing data_batch_1 is reported as incomplete, not as absent.
    return any((folder / name).is_file() for name in PY_BATCHES + BIN_BATCHES)


def _read_folder(folder: Path) -> dict[str, tuple[str, bytes]]:
    """Batch and meta files present in `folder`: name -> (label for messages, content)."""
    python = any((folder / name).is_file() for name in PY_BATCHES)
    names = PY_BATCHES + (PY_META,) if python else BIN_BATCHES + (BIN_META,)
    return {name: (str(folder / name), (folder / name).read_bytes()) for name in names if (folder / name).is_file()}


def _read_tar(archive: Path) -> dict[str, tuple[str, bytes]]:
    """The batch and meta members of a `.tar.gz`, read in one pass without extracting."""
    wanted = set(PY_BATCHES + BIN_BATCHES + (PY_META, BIN_META))
    files: dict[str, tuple[str, bytes]] = {}
    try:
        with tarfile.open(archive, tar_mode(archive)) as tar:
            for member in tar:
                name = PurePosixPath(member.name).name
                if member.isfile() and name in wanted and name not in files:
                    files[name] = (f"{member.name} in {archive}", tar.extractfile(member).read())  # type: ignore[union-attr]
    except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
        raise DataError(
            f"CIFAR-10 archive {archive} is not a valid .tar.gz ({err}): it is damaged or truncated; {_REDOWNLOAD}"
        ) from err
    return files


def tar_mode(archive: Path) -> str:
    """gzip for .tar.gz/.tgz, so a damaged archive gets one clear error rather than one per method."""
    return "r:gz" if archive.name.endswith((".gz", ".tgz")) else "r:*"


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _SAFE_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a CIFAR-10 batch holds only arrays")
        return super().find_class(module, name)


def _unpickle(label: str, content: bytes) -> object:
    try:
        return _NumpyOnlyUnpickler(io.BytesIO(content), encoding="bytes").load()
    except Exception as err:  # a damaged pickle can fail in many ways, all meaning the same
        raise DataError(
            f"CIFAR-10 file {label} could not be unpickled ({type(err).__name__}: {err}): "
            f"it is truncated or not a CIFAR-10 python batch; {_REDOWNLOAD}"
        ) from err


def _parse_pickle(label: str, content: bytes) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(label, content)
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        has = f"keys {sorted(batch, key=repr)}" if isinstance(batch, dict) else f"no keys (a {type(batch).__name__})"
        raise DataError(
            f"CIFAR-10 file {label} is not a CIFAR-10 batch: it has {has} but needs b'data' and b'labels' "
            "(CIFAR-100 has b'fine_labels'); point dataset.path at the CIFAR-10 python files"
        )
    data = np.asarray(batch[b"data"])
    if data.ndim != 2 or data.shape[1] != PIXELS:
        raise DataError(
            f"CIFAR-10 file {label} has data of shape {data.shape}: rows must be {PIXELS} = 32*32*3 long; "
            f"the file is not CIFAR-10 or is damaged; {_REDOWNLOAD}"
        )
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    if labels.shape != (len(data),):
        raise DataError(
            f"CIFAR-10 file {label} has {len(data)} images but {labels.size} labels; the file is damaged; {_REDOWNLOAD}"
        )
    return _images(data.astype(np.uint8, copy=False)), _check_labels(label, labels)


def _parse_binary(label: str, content: bytes) -> tuple[np.ndarray, np.ndarray]:
    if not content or len(content) % RECORD:
        raise DataError(
            f"CIFAR-10 file {label} is {len(content)} bytes, not a multiple of {RECORD} (1 label byte + 32*32*3 "
            f"pixels): the file is truncated or not CIFAR-10 binary; {_REDOWNLOAD}"
        )
    records = np.frombuffer(content, dtype=np.uint8).reshape(-1, RECORD)
    return _images(records[:, 1:]), _check_labels(label, records[:, 0].astype(np.int64))


def _images(rows: np.ndarray) -> np.ndarray:
    return rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def _check_labels(label: str, labels: np.ndarray) -> np.ndarray:
    bad = labels[(labels < 0) | (labels > 9)]
    if bad.size:
        raise DataError(
            f"CIFAR-10 file {label} has labels outside 0..9 (e.g. {int(bad[0])}): it is not CIFAR-10 "
            f"(CIFAR-100 has 100 classes) or is damaged; {_REDOWNLOAD}"
        )
    return labels


def _class_names(files: dict[str, tuple[str, bytes]], binary: bool) -> tuple[str, ...]:
    meta = BIN_META if binary else PY_META
    if meta not in files:
        log.warning("CIFAR-10 %s is missing: using the standard class names", meta)
        return CIFAR10_CLASSES
    label, content = files[meta]
    if binary:
        names = tuple(line.strip() for line in content.decode("utf-8", "replace").splitlines() if line.strip())
    else:
        meta_dict = _unpickle(label, content)
        raw = meta_dict.get(b"label_names", []) if isinstance(meta_dict, dict) else []
        names = tuple(n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n) for n in raw)
    if len(names) != 10:
        raise DataError(
            f"CIFAR-10 file {label} lists {len(names)} class names, not 10: it is not CIFAR-10's; "
            f"delete it to use the standard names, or {_REDOWNLOAD}"
        )
    return names
