"""Downstream evaluations, one registry, one interface: (encoders, splits, config, seed) -> metrics.

All evaluations of a run see the same label draw. `finetune`, `linear` and `knn`
use the pretrained encoder; `scratch` trains the same architecture from random
initialisation with the same schedule as `finetune`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
from omegaconf import DictConfig

from sslrun.data.splits import Splits
from sslrun.downstream.finetune import finetune
from sslrun.downstream.knn import knn_eval
from sslrun.downstream.linear import linear_probe
from sslrun.registry import Registry


@dataclass
class EvalInputs:
    pretrained: Callable[[], keras.Model]  # a fresh copy of the pretrained encoder per call
    scratch: Callable[[], keras.Model]  # the same architecture, randomly initialised
    splits: Splits
    d: DictConfig
    seed: int
    tb_dir: Path | None = None  # TensorBoard logs of this evaluation's phases, when on


EVALS: Registry[dict[str, Any]] = Registry("evaluation")


@EVALS.register("finetune")
def _finetune(inp: EvalInputs) -> dict[str, Any]:
    return finetune(inp.pretrained(), inp.splits, inp.d, inp.seed, "finetune", pretrained=True, tb_dir=inp.tb_dir)


@EVALS.register("scratch")
def _scratch(inp: EvalInputs) -> dict[str, Any]:
    return finetune(inp.scratch(), inp.splits, inp.d, inp.seed, "scratch", pretrained=False, tb_dir=inp.tb_dir)


@EVALS.register("linear")
def _linear(inp: EvalInputs) -> dict[str, Any]:
    return linear_probe(inp.pretrained(), inp.splits, inp.d, inp.seed, inp.tb_dir)


@EVALS.register("knn")
def _knn(inp: EvalInputs) -> dict[str, Any]:
    return knn_eval(inp.pretrained(), inp.splits, inp.d, inp.seed)


PRETRAINED_ORDER = ("finetune", "linear", "knn")  # which one is reported as `ssl_test_accuracy`
