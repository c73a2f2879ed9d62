"""Files between stages: written atomically (temp name, then rename), COMPLETE last."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import keras

from sslrun import faults
from sslrun.atomic import atomic_write_text, name_the_file

COMPLETE = "COMPLETE"


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def atomic_save_weights(model: keras.Model, path: Path) -> None:
    """`model.save_weights` to a temp name, then rename: never a partial file under `path`.

    An interrupted save_weights leaves an unloadable .h5 (keras-team/keras#20463).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{os.getpid()}.tmp.{path.name}")  # Keras wants the .weights.h5 suffix
    try:
        model.save_weights(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        faults.before_rename(tmp, path)
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError):
            name_the_file(err, path)
        raise


def mark_complete(folder: Path, info: dict[str, Any]) -> None:
    atomic_write_json(folder / COMPLETE, info)


def is_complete(folder: Path) -> bool:
    return (folder / COMPLETE).is_file()
