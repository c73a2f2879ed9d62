"""The run: config -> data -> pretext -> weights on disk -> downstream -> report."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf
from omegaconf import DictConfig, OmegaConf

import sslrun
from sslrun.config import pretext_from
from sslrun.data.datasets import DATASETS
from sslrun.data.splits import Budget, Splits, make_splits
from sslrun.downstream.evals import EVALS, PRETRAINED_ORDER, EvalInputs
from sslrun.downstream.pretrained import load_pretrained_encoder, resolve_pretext_dir
from sslrun.encoders import ENCODERS, build_encoder
from sslrun.errors import SslrunError
from sslrun.pretext import PRETEXTS
from sslrun.report.summary import print_table, write_history_csv, write_reports
from sslrun.training.pretext import run_pretext

log = logging.getLogger("sslrun")


def check_config(cfg: DictConfig) -> None:
    """Checks the schema cannot express; run before any data is read."""
    for registry, name, key in (
        (DATASETS, cfg.dataset.name, "dataset.name"),
        (PRETEXTS, cfg.pretext.name, "pretext.name"),
        (ENCODERS, cfg.encoder.name, "encoder.name"),
    ):
        if name not in registry:
            raise SslrunError(f"{key}={name!r} is not registered; valid: {', '.join(registry.names())}")
    if getattr(PRETEXTS.get(cfg.pretext.name), "needs_colour", False) and cfg.dataset.channels != 3:
        raise SslrunError(
            f"pretext={cfg.pretext.name} needs colour images, but dataset={cfg.dataset.name} has "
            f"{cfg.dataset.channels} channel(s); use dataset=cifar10, stl10 or image_folder (dataset.channels=3)"
        )
    stage, source = cfg.stage.value, pretext_from(cfg)
    if stage == "downstream" and not source:
        raise SslrunError("stage=downstream needs pretext.from=<run dir> (a run whose pretext stage finished)")
    if stage == "pretext" and source:
        raise SslrunError("stage=pretext trains a new encoder; drop pretext.from, or use stage=downstream")
    positive = {
        "trainer.epochs": cfg.trainer.epochs, "trainer.batch_size": cfg.trainer.batch_size,
        "downstream.batch_size": cfg.downstream.batch_size,
    }
    for key, value in positive.items():
        if value <= 0:
            raise SslrunError(f"{key}={value}: must be a positive number")
    budget(cfg.downstream)  # exactly one label budget, positive
    for name in cfg.downstream.evals:
        if name not in EVALS:
            raise SslrunError(f"downstream.evals: {name!r} is not an evaluation; valid: {', '.join(EVALS.names())}")
    if not cfg.downstream.evals and stage != "pretext":
        raise SslrunError("downstream.evals is empty; name at least one of " + ", ".join(EVALS.names()))


def budget(d: DictConfig) -> Budget:
    return Budget(d.labels_per_class, d.num_labels, d.label_fraction)


def load_splits(cfg: DictConfig) -> tuple[Splits, str]:
    params = OmegaConf.to_container(cfg.dataset, resolve=True, enum_to_str=True)
    pool = params.pop("pool")
    raw = DATASETS.build(params.pop("name"), data_dir=cfg.data_dir, cache_dir=cfg.cache_dir, **params)
    if raw.image_shape[-1] != cfg.dataset.channels:
        raise SslrunError(f"{cfg.dataset.name} has {raw.image_shape[-1]} channels but dataset.channels={cfg.dataset.channels}")
    d = cfg.downstream
    splits = make_splits(raw, budget(d), d.val_per_class, cfg.seed, cfg.dataset.num_classes, pool)
    log.info("data %s from %s: %s (pretext pool: %s, %s)", cfg.dataset.name, raw.source, splits.sizes(),
             splits.pool, budget(d).describe())
    return splits, raw.source


def run_downstream(cfg: DictConfig, splits: Splits, pretext_dir: Path, out: Path) -> dict[str, Any]:
    """Every evaluation in downstream.evals on the same splits; histories to out/history.csv."""
    _, info = load_pretrained_encoder(pretext_dir, splits.image_shape)
    if info["encoder"]["name"] != cfg.encoder.name:
        log.warning("using the pretext run's encoder %s (this config names %s)", info["encoder"]["name"], cfg.encoder.name)
    enc = info["encoder"]
    inputs = EvalInputs(
        pretrained=lambda: load_pretrained_encoder(pretext_dir, splits.image_shape)[0],
        scratch=lambda: build_encoder(enc["name"], splits.image_shape, enc.get("width", 1.0)),
        splits=splits, d=cfg.downstream, seed=cfg.seed,
    )
    results = {}
    for name in cfg.downstream.evals:
        results[name] = EVALS.get(name)(inputs)
        log.info("%s: test accuracy %.4f (%.1fs)", name, results[name]["test_accuracy"], results[name]["seconds"])
    rows = [{"eval": name, **row} for name, r in results.items() for row in r.pop("history")]
    write_history_csv(rows, out / "history.csv")
    return results


def _setup(cfg: DictConfig) -> None:
    keras.utils.set_random_seed(cfg.seed)
    if cfg.trainer.deterministic:
        tf.config.experimental.enable_op_determinism()


def run(cfg: DictConfig, run_dir: Path) -> float | None:
    """Run the stages cfg.stage asks for in run_dir; return the SSL test accuracy (None if not measured)."""
    check_config(cfg)
    _setup(cfg)
    start = time.perf_counter()
    splits, source = load_splits(cfg)
    metrics: dict[str, Any] = {
        "sslrun_version": sslrun.__version__,
        "dataset": cfg.dataset.name,
        "data_source": source,
        "pretext_task": cfg.pretext.name,
        "encoder": cfg.encoder.name,
        "seed": cfg.seed,
        "stage": cfg.stage.value,
        "splits": splits.sizes(),
        "pretext_pool": splits.pool,
        "label_budget": budget(cfg.downstream).describe(),
    }
    if pretext_from(cfg):
        pretext_dir = resolve_pretext_dir(pretext_from(cfg))
        log.info("reusing the pretext stage in %s", pretext_dir)
        metrics["pretext"] = {"reused_from": str(pretext_dir)}
    else:
        pretext_dir = run_dir / "pretext"
        metrics["pretext"] = run_pretext(cfg, splits, pretext_dir)
    if cfg.stage.value != "pretext":
        downstream = run_downstream(cfg, splits, pretext_dir, run_dir / "downstream")
        metrics["downstream"] = downstream
        ssl = next((downstream[e] for e in PRETRAINED_ORDER if e in downstream), None)
        if ssl is not None:
            metrics["ssl_test_accuracy"] = ssl["test_accuracy"]
        if "scratch" in downstream:
            metrics["baseline_test_accuracy"] = downstream["scratch"]["test_accuracy"]
            if ssl is not None:
                metrics["gain"] = metrics["ssl_test_accuracy"] - metrics["baseline_test_accuracy"]
    metrics["seconds"] = round(time.perf_counter() - start, 2)
    write_reports(run_dir, metrics, "sslrun " + " ".join(sys.argv[1:]))
    print_table(metrics)
    log.info("run finished in %.1fs; metrics in %s", metrics["seconds"], run_dir / "metrics.json")
    return metrics.get("ssl_test_accuracy")
