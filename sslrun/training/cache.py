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
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

import sslrun
from sslrun.data.splits import Splits

log = logging.getLogger("sslrun")

# Options that cannot change the weights (how data is found, display) stay out of the key.
_IGNORED = {"dataset": {"download", "source", "path"}, "pretext": {"from", "cache"}, "trainer": {"progress"}}


def key_parts(cfg: DictConfig, splits: Splits, data_source: str) -> dict[str, Any]:
    """What the key hashes; written next to the weights as key.json."""
    plain = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    parts: dict[str, Any] = {
        group: {k: v for k, v in plain[group].items() if k not in _IGNORED.get(group, ())}
        for group in ("dataset", "pretext", "encoder", "trainer")
    }
    # The data itself: where it was read (tfds and IDX files may order examples differently) and its shape.
    parts.update(data_source=data_source, input_shape=list(splits.image_shape), pool=splits.pool,
                 pool_size=len(splits.pretext_x), seed=cfg.seed, sslrun_version=sslrun.__version__)
    if splits.pool == "train_excluding_labeled":  # the pool depends on the label draw
        d = plain["downstream"]
        parts["label_draw"] = {k: d[k] for k in ("labels_per_class", "num_labels", "label_fraction",
                                                 "label_budgets", "val_per_class")}
    return parts


def cache_key(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


@contextmanager
def locked(lock_path: Path, what: str, poll: float = 5.0) -> Iterator[None]:
    """Hold an exclusive flock on lock_path; while another process holds it, say so every `poll` seconds."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as fh:
        start = time.monotonic()
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                log.info("waiting for another process on %s (lock %s, %.0fs so far)", what, lock_path,
                         time.monotonic() - start)
                time.sleep(poll)
        try:
            fh.write(f"{os.getpid()}\n")
            fh.flush()
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def link_run_dir(run_pretext: Path, key_dir: Path) -> None:
    """run_dir/pretext -> the cache key's folder (replacing nothing real)."""
    if run_pretext.is_symlink():
        run_pretext.unlink()
    elif run_pretext.exists():
        return  # a real folder from an uncached run: leave it
    run_pretext.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(key_dir.resolve(), run_pretext)
