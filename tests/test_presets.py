"""Every experiment preset composes, names its command on its first comment line, and runs one step on fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import pytest
from hydra import compose, initialize_config_dir
from test_datasets import FIXTURES

from sslrun.cli import conf_dir
from sslrun.config import register_schemas
from sslrun.help import register_help

register_schemas()
register_help(conf_dir())

PRESETS = sorted(p.stem for p in (conf_dir() / "experiment").glob("*.yaml"))
SEEDS = [
    "seed000_fashion_rotation",
    "seed001_mnist_rotation",
    "seed002_stl10_simclr",
    "seed003_cifar10_colorization",
    "seed004_mnist_rotation_150",
]


def _compose(overrides: list[str]):
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return compose("config", overrides=overrides)


def test_every_seed_document_has_a_preset_and_a_plus_version():
    assert set(SEEDS) | {f"{s}_plus" for s in SEEDS} <= set(PRESETS)


@pytest.mark.parametrize("name", PRESETS)
def test_first_comment_line_is_the_command(name):
    lines = (conf_dir() / "experiment" / f"{name}.yaml").read_text().splitlines()
    assert lines[0] == "# @package _global_"
    assert lines[1].startswith(
        f"# sslrun -m experiment={name}" if _is_sweep(name) else f"# sslrun experiment={name}  -- "
    )
    if name.startswith("seed"):
        assert "document" in lines[1]  # and what the document reports


def _tiny(cfg, data_root: Path, tmp_path: Path) -> list[str]:
    """Scale a preset down to one step of everything on the data set's fixture, keeping its protocol's shape."""
    d = cfg.downstream
    out = [
        f"cache_dir={tmp_path / 'cache'}",
        "dataset.download=false",
        "trainer.epochs=1",
        "trainer.steps_per_epoch=1",
        "trainer.batch_size=8",
        "trainer.progress=false",
        "tensorboard=false",
        "downstream.repeats=2" if d.repeats > 1 else "downstream.repeats=1",
        "downstream.batch_size=8",
        "downstream.linear_epochs=2",
        "downstream.label_budgets=null",
        "downstream.knn_k=3",
        *FIXTURES[cfg.dataset.name][0](data_root),
    ]
    if len(d.evals) > 1 and "scratch" in d.evals:  # scratch is finetune's code path on a fresh encoder: spare it
        out.append("downstream.evals=[" + ",".join(e for e in d.evals if e != "scratch") + "]")
    if cfg.trainer.warmup_epochs:  # a warm-up must be shorter than the one epoch
        out.append("trainer.warmup_epochs=0")
    if cfg.encoder.name.startswith("resnet"):  # the same layers, a quarter of the channels: seconds, not minutes
        out.append("encoder.width=0.25")
    for key in ("frozen_epochs", "unfrozen_epochs", "scratch_epochs"):
        if d.get(key):
            out.append(f"downstream.{key}=1")
    if d.num_labels:
        out.append("downstream.num_labels=20")
    if d.labels_per_class:
        out.append("downstream.labels_per_class=2")
    if d.val_per_class:
        out.append("downstream.val_per_class=1")
    if d.val_from_test:
        out.append("downstream.val_from_test=5")
    return out  # a preset's dataset.train_limit/test_limit (seed 001: 1000, 300) stay: at most, the fixture's all


def _marks(name: str):
    """ResNet presets take about a minute each even at a quarter width (graph building): `make test` skips them,
    `pytest -m slow tests/test_presets.py` runs them."""
    cfg = _compose([f"experiment={name}"])
    return pytest.param(name, marks=pytest.mark.slow) if cfg.encoder.name.startswith("resnet") else name


def _is_sweep(name: str) -> bool:
    """Presets that are multiruns (`sslrun -m`): Optuna's, and compare (tests/test_compare.py runs it)."""
    return name.startswith("hpo") or name == "compare"


@pytest.mark.parametrize("name", [_marks(p) for p in PRESETS if not _is_sweep(p)])
def test_preset_runs_one_step_on_fixtures(name, tmp_path):
    from sslrun.pipeline import run

    cfg = _compose([f"experiment={name}"])
    root = tmp_path / "data"
    root.mkdir()
    cfg = _compose([f"experiment={name}", *_tiny(cfg, root, tmp_path)])
    run(cfg, tmp_path / "run")
    assert keras.mixed_precision.global_policy().name == "float32"  # a plus preset's bfloat16 does not leak
    metrics = json.loads((tmp_path / "run/metrics.json").read_text())
    assert metrics["pretext"]["epochs"] == 1 and (tmp_path / "run/pretext/encoder.weights.h5").is_file()
    assert set(metrics["downstream"]) == set(cfg.downstream.evals) and cfg.downstream.evals
    assert 0 <= metrics["ssl_test_accuracy"] <= 1


def test_hpo_preset_composes_with_the_optuna_sweeper():
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose("config", overrides=["experiment=hpo_simclr"], return_hydra_config=True)
    assert cfg.hydra.sweeper._target_.endswith("OptunaSweeper") and cfg.hydra.sweeper.direction == "maximize"
    assert cfg.pretext.name == "simclr" and cfg.objective.value == "ssl_val_accuracy"
