"""Acceptance: a new two-view method is a schema, a TwoViewTask subclass and a YAML option, and nothing else.

The method below (alignment and uniformity on the hypersphere, Wang and Isola 2020) is written and
registered here, with no edit to sslrun or to any other test: in this process for its hooks, and in
the console script through SSLRUN_PLUGINS (sslrun/plugins.py); its YAML is written to a tmp conf
folder that Hydra finds through hydra.searchpath.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import run_cli
from hydra import compose, initialize_config_dir

from sslrun.cli import conf_dir
from sslrun.config import PRETEXT_SCHEMAS, TwoViewConfig, register_schemas
from sslrun.help import register_help
from sslrun.pretext import PRETEXTS
from sslrun.pretext.twoview import TwoViewTask
from sslrun.training.pretext import build_task, write_examples

NAME = "align_uniform"
FINALIZED = "align_uniform: finalize_encoder called"  # the hook says so: the run's log shows it was called


@dataclass(init=False, repr=False, eq=False)
class AlignUniformConfig(TwoViewConfig):
    projection_hidden: int = 64
    projection_dim: int = 32  # the paper's hypersphere is low-dimensional; small encoders here
    uniformity_weight: float = 1.0  # the paper's lambda; its t = 2 is fixed below


class AlignUniformTask(TwoViewTask):
    schema = AlignUniformConfig

    def __init__(self, *args, uniformity_weight: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.uniformity_weight = uniformity_weight

    def pair_loss(self, x1, x2, training: bool):
        z1, z2 = (tf.math.l2_normalize(tf.cast(z, tf.float32), axis=1) for z in self.embed_pair(x1, x2, training))
        align = tf.reduce_mean(tf.reduce_sum((z1 - z2) ** 2, axis=1))  # in [0, 4] on the unit sphere
        distances = tf.reduce_sum((z1[:, None] - z1[None]) ** 2, axis=-1)
        return align + self.uniformity_weight * tf.math.log(tf.reduce_mean(tf.exp(-2.0 * distances)))  # <= 0

    def finalize_encoder(self) -> None:
        logging.getLogger(__name__).warning(FINALIZED)


def register() -> None:
    """`pretext=align_uniform`; the console script's plugin calls this (PLUGIN)."""
    PRETEXTS.register(NAME)(AlignUniformTask)


PLUGIN = "from test_new_method import register\n\nregister()\n"

YAML = f"""# Alignment and uniformity (Wang and Isola 2020): a method outside sslrun
defaults:
  - /schema/pretext/{NAME}@_here_  # every default, with its reason: AlignUniformConfig in tests/test_new_method.py
  - _self_

name: {NAME}
uniformity_weight: 0.5  # differs from the schema's 1.0
"""


def conf_folder(tmp_path: Path) -> Path:
    """The method's YAML option in a conf folder of its own, for hydra.searchpath."""
    (tmp_path / "conf/pretext").mkdir(parents=True)
    (tmp_path / "conf/pretext" / f"{NAME}.yaml").write_text(YAML)
    return tmp_path / "conf"


@pytest.fixture
def registered(monkeypatch):
    """The method registered in this process, and gone from both registries after the test."""
    monkeypatch.setattr(PRETEXTS, "_entries", dict(PRETEXTS._entries))
    monkeypatch.setattr(PRETEXT_SCHEMAS, "_entries", dict(PRETEXT_SCHEMAS._entries))
    register()
    register_schemas()
    register_help(conf_dir())


def test_the_method_composes_from_its_yaml_and_its_schema_and_offers_the_hooks(registered, tmp_path):
    extra = conf_folder(tmp_path)
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose("config", overrides=[f"pretext={NAME}", f"hydra.searchpath=[file://{extra}]"])
    node = cfg.pretext
    # the YAML's one value, its schema's defaults, and the two-view block every such method shares
    assert (node.uniformity_weight, node.projection_dim, node.online_probe, node.augment.size) == (0.5, 32, True, None)
    assert PRETEXT_SCHEMAS.get(NAME) is AlignUniformConfig and not AlignUniformTask.needs_colour

    from sslrun.encoders import build_encoder

    task = build_task(node, build_encoder("small_cnn", (16, 16, 1), 0.25), 0, 10)
    assert isinstance(task, AlignUniformTask) and task.name == NAME and task.uses_labels
    assert task.uniformity_weight == 0.5 and task.projector.layers[-1].units == 32
    x = np.random.default_rng(0).random((8, 16, 16, 1), dtype=np.float32)
    loss = float(task.pair_loss(tf.constant(x), tf.constant(x), training=False))
    assert -np.log(8) * 0.5 - 1e-5 <= loss <= 0.0  # identical views: no misalignment, only uniformity (<= 0)
    write_examples(task, (x * 255).astype("uint8"), tmp_path / "examples.png")  # the two-view base's figure
    assert (tmp_path / "examples.png").stat().st_size > 0
    node.online_probe = False
    assert not build_task(node, build_encoder("small_cnn", (16, 16, 1), 0.25), 0, 10).uses_labels


def test_the_method_in_its_own_file_and_yaml_trains_and_evaluates_end_to_end(tmp_path):
    (tmp_path / "plugin").mkdir()
    (tmp_path / "plugin/align_uniform_plugin.py").write_text(PLUGIN)
    path = [str(tmp_path / "plugin"), str(Path(__file__).parent), os.environ.get("PYTHONPATH")]
    env = {"SSLRUN_PLUGINS": "align_uniform_plugin", "PYTHONPATH": os.pathsep.join(filter(None, path))}
    args = [
        "experiment=smoke",
        f"pretext={NAME}",
        f"hydra.searchpath=[file://{conf_folder(tmp_path)}]",
        "trainer.progress=false",
        "tensorboard=false",
        "pretext.cache=false",
        "trainer.epochs=1",
        "trainer.steps_per_epoch=4",
        "downstream.unfrozen_epochs=1",
        "downstream.evals=[finetune]",
        "hydra.run.dir=run",
    ]
    res = run_cli(args, tmp_path, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    run = tmp_path / "run"
    config = (run / "pretext/config.yaml").read_text()
    assert f"name: {NAME}" in config and "uniformity_weight: 0.5" in config and "projection_dim: 32" in config
    history = (run / "pretext/history.csv").read_text().splitlines()
    header, row = history[0].split(","), history[1].split(",")
    assert len(history) == 2 and -np.log(128) * 0.5 <= float(row[header.index("loss")]) <= 4.0
    assert float(row[header.index("probe_loss")]) > 0  # uses_labels: the base's online probe trained on labels
    assert (run / "pretext/examples.png").stat().st_size > 0  # plot_examples
    assert FINALIZED in res.stdout + res.stderr + "".join(p.read_text() for p in run.glob("*.log"))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["pretext_task"] == NAME and "finetune" in metrics["downstream"]
    assert 0.0 <= metrics["ssl_test_accuracy"] <= 1.0


def test_an_unimportable_plugin_is_one_line_naming_it(tmp_path):
    res = run_cli(["experiment=smoke", "hydra.run.dir=run"], tmp_path, env={"SSLRUN_PLUGINS": "no_such_module"})
    assert res.returncode == 2, res.stderr[-2000:]
    assert res.stderr.strip().splitlines() == [
        "sslrun: error: SSLRUN_PLUGINS='no_such_module': cannot import 'no_such_module' (No module named "
        "'no_such_module'); put the folder that holds it on PYTHONPATH, or install it"
    ]
