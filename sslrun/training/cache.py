"""The pretext cache: `<cache_dir>/pretext/<key>/`, keyed by everything that determines the encoder weights.

A run whose key is COMPLETE reuses it; a run that finds it missing takes a file
lock (fcntl.flock: released by the kernel if the process dies, so a killed run
never leaves a stale lock), checks again, and trains. A second process with the
same key blocks on the lock, then finds COMPLETE and reuses. The run dir gets a
`pretext` symlink to the key's folder.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

import sslrun
from sslrun.data.splits import Splits
from sslrun.errors import Busy

log = logging.getLogger("sslrun")

# Options that cannot change the weights (how data is found, display) stay out of the key.
# The hygiene check changes no weights; a drop changes the pool, which the data source and pool size say.
_IGNORED = {
    "dataset": {"download", "source", "path", "hygiene", "drop_test_duplicates"},
    "pretext": {"from", "cache"},
    "trainer": {"progress"},
}


def key_parts(cfg: DictConfig, splits: Splits, data_source: str) -> dict[str, Any]:
    """What the key hashes; written next to the weights as key.json."""
    plain = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    parts: dict[str, Any] = {
        group: {k: v for k, v in plain[group].items() if k not in _IGNORED.get(group, ())}
        for group in ("dataset", "pretext", "encoder", "trainer")
    }
    # The data itself: where it was read (tfds and IDX files may order examples differently) and its shape.
    parts.update(
        data_source=data_source,
        input_shape=list(splits.image_shape),
        pool=splits.pool,
        pool_size=len(splits.pretext_x),
        seed=cfg.seed,
        sslrun_version=sslrun.__version__,
    )
    if splits.pool == "train_excluding_labeled":  # the pool depends on the label draw
        d = plain["downstream"]
        parts["label_draw"] = {
            k: d.get(k)
            for k in (
                "labels_per_class",
                "num_labels",
                "label_fraction",
                "label_budgets",
                "val_per_class",
                "draw",
                "val_split",
            )
        }
    return parts


def cache_key(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


@contextmanager
def locked(lock_path: Path, what: str, timeout: float | None = None, note_every: float = 30.0) -> Iterator[None]:
    """Hold an exclusive flock on lock_path, waiting for another process that holds it (saying so).

    timeout (seconds, None: no limit): then raise Busy naming the holder. The file holds the holder's
    pid while locked and is emptied on release, so a non-empty file we can lock was left by a process
    that died holding it: logged, then taken over (the kernel already dropped its lock).
    """
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as fh:
        start, noted = time.monotonic(), -note_every
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - start
                if timeout is not None and waited >= timeout:
                    raise Busy(
                        f"{what} is in use by {_holder(lock_path)} (lock {lock_path}); gave up after "
                        f"{waited:.0f}s (lock_timeout={timeout:g}). Rerun when it has finished, or use another "
                        "hydra.run.dir"
                    ) from None
                if waited - noted >= note_every:
                    noted = waited
                    log.info(
                        "waiting for %s: in use by %s (lock %s, %.0fs so far)",
                        what,
                        _holder(lock_path),
                        lock_path,
                        waited,
                    )
                time.sleep(0.2)
        try:
            left = _holder(lock_path, default="")
            if left:
                log.info("lock %s was left by %s, which died holding it; taking it over", lock_path, left)
            fh.truncate(0)
            fh.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
            fh.flush()
            yield
        finally:
            fh.truncate(0)  # released cleanly: an empty file
            fh.flush()
            fcntl.flock(fh, fcntl.LOCK_UN)


def _holder(lock_path: Path, default: str = "another process") -> str:
    try:
        return lock_path.read_text().strip() or default
    except OSError:
        return default


def link_run_dir(run_pretext: Path, key_dir: Path) -> None:
    """run_dir/pretext -> the cache key's folder (replacing nothing real)."""
    if run_pretext.is_symlink():
        run_pretext.unlink()
    elif run_pretext.exists():
        return  # a real folder from an uncached run: leave it
    run_pretext.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(key_dir.resolve(), run_pretext)
