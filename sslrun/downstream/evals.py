"""Downstream evaluations, one registry, one interface: (encoders, splits, config, seed) -> metrics.

All evaluations of a run see the same label draw. `finetune`, `linear`, `knn` and
`propagate` (labels spread over the unlabeled pool's kNN graph) and `selftrain` (fine-tuning on the labels and a
teacher's pseudo-labels of the pool) use the pretrained encoder; `scratch` trains the same architecture
from random initialisation with the same schedule as `finetune`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
from omegaconf import DictConfig

from sslrun.data.splits import Splits
from sslrun.downstream.finetune import finetune
from sslrun.downstream.knn import knn_eval
from sslrun.downstream.linear import linear_probe
from sslrun.downstream.propagate import propagate_eval
from sslrun.downstream.result_cache import baseline_key_parts, cached_baseline
from sslrun.downstream.selftrain import selftrain
from sslrun.registry import Registry


@dataclass
class EvalInputs:
    pretrained: Callable[[], keras.Model]  # a fresh copy of the pretrained encoder per call
    scratch: Callable[[], keras.Model]  # the same architecture, randomly initialised
    splits: Splits
    d: DictConfig
    seed: int
    tb_dir: Path | None = None  # TensorBoard logs of this evaluation's phases, when on
    cache: dict = field(default_factory=dict)  # one per study: what depends only on the encoder and the pool
    baseline_cache: Path | None = None  # <cache_dir>/downstream: scratch results of identical earlier runs
    encoder_info: dict = field(default_factory=dict)  # the architecture (name, width, input_scale): the cache key
    lock_timeout: float | None = None
    keeps_classifier: bool = True  # whether the study keeps this result's classifier (its first draw: the export)

    @classmethod
    def build(
        cls,
        cfg: DictConfig,
        encoders: Any,
        splits: Splits,
        seed: int,
        tb_dir: Path | None,
        keeps_classifier: bool,
        cache: dict | None = None,
    ) -> EvalInputs:
        """One evaluation's inputs from the run's config and its Encoders (sslrun.downstream.workers), in the
        study's process and in a worker alike."""
        d = cfg.downstream
        return cls(
            encoders.pretrained,
            encoders.scratch,
            splits=splits,
            d=d,
            seed=seed,
            tb_dir=tb_dir,
            cache={} if cache is None else cache,
            encoder_info=encoders.info,
            lock_timeout=cfg.lock_timeout,
            baseline_cache=Path(cfg.cache_dir).expanduser() / "downstream" if d.cache else None,
            keeps_classifier=keeps_classifier,
        )


EVALS: Registry[dict[str, Any]] = Registry("evaluation")


@EVALS.register("finetune")
def _finetune(inp: EvalInputs) -> dict[str, Any]:
    return finetune(inp.pretrained(), inp.splits, inp.d, inp.seed, "finetune", pretrained=True, tb_dir=inp.tb_dir)


@EVALS.register("scratch")
def _scratch(inp: EvalInputs) -> dict[str, Any]:
    def train() -> dict[str, Any]:
        keras.utils.set_random_seed(inp.seed)  # its initial weights from its own seed, not from what ran before
        return finetune(inp.scratch(), inp.splits, inp.d, inp.seed, "scratch", pretrained=False, tb_dir=inp.tb_dir)

    if inp.baseline_cache is None:
        return train()
    parts = baseline_key_parts(inp.splits, inp.d, inp.encoder_info, inp.seed)
    return cached_baseline(inp.baseline_cache, parts, train, inp.lock_timeout, inp.keeps_classifier)


@EVALS.register("selftrain")
def _selftrain(inp: EvalInputs) -> dict[str, Any]:
    return selftrain(inp.pretrained, inp.splits, inp.d, inp.seed, inp.tb_dir, inp.cache)


@EVALS.register("linear")
def _linear(inp: EvalInputs) -> dict[str, Any]:
    return linear_probe(inp.pretrained(), inp.splits, inp.d, inp.seed, inp.tb_dir)


@EVALS.register("knn")
def _knn(inp: EvalInputs) -> dict[str, Any]:
    return knn_eval(inp.pretrained(), inp.splits, inp.d, inp.seed)


@EVALS.register("propagate")
def _propagate(inp: EvalInputs) -> dict[str, Any]:
    return propagate_eval(inp.pretrained(), inp.splits, inp.d, inp.cache)


BASELINE = "scratch"  # the one evaluation without the pretrained encoder
FEATURE_EVALS = ("linear", "knn", "propagate")  # on frozen features: what downstream.feature_flip changes
WORKER_EVALS = ("finetune", "scratch")  # one fit each, no pool, no shared cache: downstream.workers runs them
CLASSIFIER_EVALS = ("finetune", "scratch", "selftrain", "linear")  # train a classifier: model/ exports one


def uses_frozen_features(d: DictConfig) -> bool:
    """Whether any evaluation of `d` reads frozen features (selftrain does through a propagate teacher)."""
    return any(e in FEATURE_EVALS for e in d.evals) or (
        "selftrain" in d.evals and d.get("selftrain_teacher") is not None and d.selftrain_teacher.value == "propagate"
    )


def headline(evals: list[str]) -> str | None:
    """The evaluation reported as `ssl_test_accuracy`: the first pretrained one that downstream.evals lists."""
    return next((e for e in evals if e != BASELINE), None)
