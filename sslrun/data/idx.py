"""Reader for the IDX format of MNIST and Fashion-MNIST (`.gz` or raw)."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from sslrun.errors import DataError

# Third byte of the magic number: element type.
_DTYPES = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (EOFError, OSError, zlib.error) as err:
        raise DataError(
            f"IDX file {path} could not be read ({err}); the file is damaged or truncated: "
            "download it again or point dataset.path at a good copy"
        ) from err


def read_idx(path: str | Path, expect_ndim: int | None = None) -> np.ndarray:
    """Read one IDX file into an array of shape (n, ...)."""
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        magic = raw[:4].hex() if raw else "(empty file)"
        raise DataError(
            f"IDX file {path} has a wrong magic number 0x{magic}: expected 0x000008NN "
            "(an MNIST-style IDX file); check that the file is what its name says"
        )
    ndim = raw[3]
    if expect_ndim is not None and ndim != expect_ndim:
        raise DataError(
            f"IDX file {path} has {ndim} dimensions where {expect_ndim} were expected "
            "(images have 3, labels 1): are the image and label files swapped?"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"IDX file {path} is truncated inside its header ({len(raw)} bytes)")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_DTYPES[raw[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    found = len(raw) - header
    if found != expected:
        what = "truncated" if found < expected else "longer than its header says"
        raise DataError(
            f"IDX file {path} is {what}: header {dims} needs {expected} bytes of data, "
            f"found {found}; download it again or point dataset.path at a good copy"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def read_idx_count(path: str | Path) -> int:
    """The number of items an IDX file's header declares (reads 8 bytes, not the file)."""
    path = Path(path)
    with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as fh:
        head = fh.read(8)
    if len(head) < 8:
        raise DataError(f"IDX file {path} is truncated inside its header ({len(head)} bytes)")
    return int(np.frombuffer(head, dtype=">u4", count=1, offset=4)[0])


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write an uint8 array as IDX (gzip when the name ends in .gz); used for fixtures."""
    path = Path(path)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + array.tobytes()
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as fh:
            fh.write(payload)
    else:
        path.write_bytes(payload)
