"""Writing a file so that readers see the old one or the whole new one, never half (no Keras import)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", perms: int | None = None) -> Iterator[IO]:
    """A temp file next to `path`; on success it is flushed, fsynced and renamed onto `path`; on error removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if perms is not None:
            os.chmod(tmp, perms)  # mkstemp makes files private
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            name_the_file(err, path)
        raise


def name_the_file(err: OSError, path: str | os.PathLike) -> None:
    """A failed write or flush (ENOSPC) carries no file name: give it the one the user knows."""
    if err.filename is None:
        err.filename = str(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w") as fh:
        fh.write(text)


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """A temp folder next to `path` to fill; on success it is renamed onto `path` (an older `path` is moved
    aside first and removed after), on error removed: readers see the old folder or the whole new one."""
    import shutil

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    old = path.with_name(f".{path.name}.{os.getpid()}.old")
    try:
        yield tmp
        os.chmod(tmp, 0o755)  # mkdtemp makes folders private
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, OSError):
            name_the_file(err, path)
        raise
    shutil.rmtree(old, ignore_errors=True)
