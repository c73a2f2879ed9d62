"""A run dir belongs to one config and to one process at a time.

- `run_key.json` records what the run's numbers depend on (`result_parts`: the resolved config
  minus where things are and how they are shown). A rerun into the dir whose config differs in
  any of those keys is refused, listing them, whether the run finished or was interrupted; a
  finished run is never written again.
- `pretext/key.json` (runs with pretext.cache=false) records the pretext stage's cache key parts,
  which include the data's source and size; checked the same way before resuming or reusing it.
- `.sslrun.lock`: an flock held while the run works (cache.locked): a second process on the same
  dir waits (at most `lock_timeout` seconds), then finds the run finished and does nothing.
  Temp files of writes a killed process left behind are removed once the lock is held.

Keys present in only one of two records (an option added or removed between sslrun versions) are
not compared.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from sslrun.atomic import atomic_write_text
from sslrun.errors import RunDirError
from sslrun.training.cache import locked

log = logging.getLogger("sslrun")

RUN_KEY = "run_key.json"
LOCK = ".sslrun.lock"
METRICS = "metrics.json"  # written last: the run is finished when it exists

# Options that cannot change a run's numbers: where things are, how they are shown, what a sweeper reads.
_PLACES_AND_DISPLAY = {
    "": {"data_dir", "cache_dir", "tensorboard", "lock_timeout", "objective"},
    "dataset": {"download", "source", "path"},
    "pretext": {"cache"},
    "trainer": {"progress"},
}


def result_parts(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config minus _PLACES_AND_DISPLAY: what run_key.json records."""
    plain = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    out: dict[str, Any] = {}
    for key, value in plain.items():
        if key in _PLACES_AND_DISPLAY[""]:
            continue
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in _PLACES_AND_DISPLAY.get(key, ())}
        out[key] = value
    return out


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def differences(recorded: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """`key: recorded -> now` for every dotted key both records hold with different values."""
    old, new = _flat(recorded), _flat(json.loads(json.dumps(now)))  # as JSON: tuples -> lists
    return [f"{k}: {old[k]!r} -> {new[k]!r}" for k in sorted(old.keys() & new.keys()) if old[k] != new[k]]


def check_unchanged(record: Path, parts: dict[str, Any], what: str, write: bool = True) -> None:
    """Refuse if `record` holds parts that differ from these; write them when there is no record yet."""
    if record.is_file():
        diff = differences(json.loads(record.read_text()), parts)
        if diff:
            raise RunDirError(
                f"{what} was run with a different config, which would change its results: "
                f"{'; '.join(diff)} (recorded -> now; see {record}). Rerun with the recorded values to "
                "resume or reuse it, or give this config a new hydra.run.dir"
            )
    elif write:
        atomic_write_text(record, json.dumps(parts, indent=2) + "\n")


@contextmanager
def claim_run_dir(cfg: DictConfig, run_dir: Path) -> Iterator[None]:
    """Check run_key.json, then hold the run dir's lock while the stages work in it."""
    parts, what = result_parts(cfg), f"run dir {run_dir}"
    if (run_dir / METRICS).is_file():  # finished: compared, never written again
        check_unchanged(run_dir / RUN_KEY, parts, what, write=False)
        yield
        return
    with locked(run_dir / LOCK, what, timeout=cfg.lock_timeout):
        finished = (run_dir / METRICS).is_file()  # another process may have finished it while we waited
        recorded = (run_dir / RUN_KEY).is_file()
        check_unchanged(run_dir / RUN_KEY, parts, what, write=not finished)
        if not finished:
            clean_temp_files(run_dir)
        try:
            yield
        except RunDirError:  # refused later (pretext/key.json): the record just written is not this dir's config
            if not recorded:
                (run_dir / RUN_KEY).unlink(missing_ok=True)
            raise


def clean_temp_files(run_dir: Path) -> None:
    """Temp files (`.NAME.tmp`, `.PID.tmp.NAME`, ...) of writes a killed process never finished.

    A `pretext` symlink into the cache is not followed: that folder has its own lock and cleanup.
    """
    for folder, _, files in os.walk(run_dir):  # does not descend into symlinked folders
        for name in files:
            if name.startswith(".") and (name.endswith(".tmp") or ".tmp." in name):
                path = Path(folder) / name
                log.info("removing %s, left by an interrupted write", path)
                path.unlink(missing_ok=True)
