"""Reading a finished pretext stage back from disk: the only link between the stages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keras

from sslrun.encoders import build_encoder
from sslrun.errors import RunDirError
from sslrun.training.artifacts import COMPLETE, is_complete
from sslrun.training.checkpoint import CHECKPOINTS
from sslrun.training.pretext import WEIGHTS


def resolve_pretext_dir(path: str | Path) -> Path:
    """A run dir or its pretext/ dir -> the pretext dir, which must be COMPLETE."""
    given = Path(path).expanduser()
    if not given.is_dir():
        raise RunDirError(
            f"pretext.from={path}: no such directory ({given.absolute()}); give a run directory written by "
            "`sslrun stage=pretext` (or stage=all), e.g. outputs/2026-01-01/12-00-00"
        )
    for candidate in (given / "pretext", given):
        if is_complete(candidate):
            return candidate
    checkpoints = sorted(p for d in (given / "pretext", given) for p in (d / CHECKPOINTS).glob("epoch-*.npz"))
    todo = (
        f"It has checkpoints up to {checkpoints[-1].name}: rerun the command that started it (same "
        f"hydra.run.dir={given}) to resume it"
        if checkpoints
        else "Rerun it"
    )
    raise RunDirError(
        f"pretext.from={path}: no {COMPLETE} marker in {given / 'pretext'} or {given}; the pretext "
        f"stage there did not finish (interrupted or failed). {todo}, or point at a finished run"
    )


def load_pretrained_encoder(pretext_dir: Path, input_shape: tuple[int, int, int]) -> tuple[keras.Model, dict[str, Any]]:
    info = json.loads((pretext_dir / COMPLETE).read_text())
    if tuple(info["input_shape"]) != tuple(input_shape):
        raise RunDirError(
            f"pretext in {pretext_dir} was trained on images of shape {tuple(info['input_shape'])} "
            f"but this data set has {tuple(input_shape)}; pick a data set of the same shape"
        )
    enc = info["encoder"]
    encoder = build_encoder(enc["name"], input_shape, enc.get("width", 1.0), enc.get("input_scale", 1.0))
    encoder.load_weights(pretext_dir / WEIGHTS)
    return encoder, info
