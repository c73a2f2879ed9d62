"""Every registered data set, from small files the tests write in its original format, through the real config."""

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import run_cli
from hydra import compose, initialize_config_dir

from sslrun.cli import conf_dir
from sslrun.config import register_schemas
from sslrun.data import writers
from sslrun.data.datasets import DATASETS
from sslrun.data.idx import write_idx
from sslrun.data.pipeline import image_batches
from sslrun.help import register_help
from sslrun.pipeline import load_splits

register_schemas()
register_help(conf_dir())


def _images(n: int, size: int, channels: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size, channels), dtype=np.uint8), np.arange(n) % 10


def _idx(root: Path) -> list[str]:
    x, y = _images(60, 28, 1)
    for stem, arr in (
        ("train-images-idx3-ubyte", x[..., 0]),
        ("train-labels-idx1-ubyte", y),
        ("t10k-images-idx3-ubyte", x[:20, ..., 0]),
        ("t10k-labels-idx1-ubyte", y[:20]),
    ):
        write_idx(root / f"{stem}.gz", arr)
    return [f"dataset.path={root}"]


def _cifar(root: Path) -> list[str]:
    x, y = _images(60, 32, 3)
    writers.write_cifar10_python(root, x, y, x[:20], y[:20], archive=True)
    return [f"dataset.path={root}"]


def _stl(root: Path) -> list[str]:
    x, y = _images(60, 96, 3)
    writers.write_stl10_binary(root, x, y, x[:20], y[:20], _images(30, 96, 3, seed=1)[0], archive=True)
    return [f"dataset.path={root}"]


def _folder(root: Path) -> list[str]:
    x, y = _images(60, 12, 3)
    for i, (img, label) in enumerate(zip(x, y, strict=True)):
        (root / "train" / f"c{label}").mkdir(parents=True, exist_ok=True)
        (root / "train" / f"c{label}" / f"{i}.png").write_bytes(tf.io.encode_png(img).numpy())
    (root / "unlabeled" / "a" / "b").mkdir(parents=True)
    for i in range(7):
        (root / "unlabeled" / "a" / "b" / f"u{i}.png").write_bytes(tf.io.encode_png(x[i]).numpy())
    return [f"dataset.path={root}", "dataset.image_size=16", "dataset.test_fraction=0.5"]


def _synthetic(root: Path) -> list[str]:
    return ["dataset.train_size=600", "dataset.test_size=100"]  # experiment=smoke's 50 + 5 per class fit


# name -> (fixture writer, expected image shape, train size, pretext pool size, test size)
FIXTURES = {
    "mnist": (_idx, (28, 28, 1), 60, 60, 20),
    "fashion_mnist": (_idx, (28, 28, 1), 60, 60, 20),
    "cifar10": (_cifar, (32, 32, 3), 60, 60, 20),
    "stl10": (_stl, (96, 96, 3), 60, 30, 20),  # pool: the unlabelled split
    "image_folder": (_folder, (16, 16, 3), 30, 30 + 7, 30),  # half held out as test; unlabeled/ joins the pool
    "synthetic": (_synthetic, (28, 28, 1), 600, 600, 100),
}


def test_every_registered_dataset_has_a_fixture():
    assert sorted(FIXTURES) == DATASETS.names()


@pytest.mark.parametrize("name", DATASETS.names())
def test_dataset_through_config_splits_and_pipeline(name, tmp_path):
    write, shape, _, pool, test = FIXTURES[name]
    root = tmp_path / name
    root.mkdir()
    overrides = [
        f"dataset={name}",
        f"cache_dir={tmp_path / 'cache'}",
        "downstream.labels_per_class=2",
        "downstream.val_per_class=1",
        "dataset.download=false",
        *write(root),
    ]
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    splits, source = load_splits(cfg)
    assert splits.image_shape == shape and splits.labeled_x.dtype == np.uint8
    assert splits.sizes() == {"pretext": pool, "labeled": 20, "val": 10, "test": test}, source
    assert np.bincount(splits.labeled_y).tolist() == [2] * 10
    xb = next(iter(image_batches(splits.pretext_x, batch_size=8, shuffle=True)))
    assert xb.shape == (8, *shape) and xb.dtype == tf.float32 and 0 <= float(tf.reduce_min(xb))


TINY = [
    "encoder.width=0.25",
    "trainer.epochs=1",
    "trainer.batch_size=16",
    "trainer.progress=false",
    "downstream.labels_per_class=2",
    "downstream.val_per_class=1",
    "downstream.frozen_epochs=1",
    "downstream.unfrozen_epochs=1",
    "downstream.evals=[finetune]",
    "tensorboard=false",
]


@pytest.mark.parametrize("name", ["stl10", "image_folder"])
def test_end_to_end_on_original_files(name, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    args = [f"dataset={name}", *FIXTURES[name][0](root), *TINY, "hydra.run.dir=run"]
    res = run_cli(args, tmp_path, env={"SSLRUN_CACHE_DIR": str(tmp_path / "cache")})
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.loads((tmp_path / "run/metrics.json").read_text())
    assert metrics["splits"]["pretext"] == FIXTURES[name][3] and metrics["label_budget"] == "labels_per_class=2"
    assert metrics["pretext_pool"] == ("unlabeled" if name == "stl10" else "unlabeled_and_train")
    assert (tmp_path / "run/pretext/COMPLETE").is_file()


@pytest.mark.parametrize("name", DATASETS.names())
def test_smoke_preset_runs_on_every_dataset(name, tmp_path):
    """experiment=smoke dataset=<name>, a CI's check of its own data: the whole pipeline on at most
    dataset.train_limit/test_limit images (a fixture has fewer: all of it), the smoke's label budget."""
    write, _, train, _, test = FIXTURES[name]
    root = tmp_path / "data"
    root.mkdir()
    args = ["experiment=smoke", f"dataset={name}", *write(root)]
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose("config", overrides=args)
    # one epoch a phase and finetune only: every stage runs (pretext, weights, fine-tuning, evaluation), in
    # half the time; the smoke's own epochs and its scratch baseline run in tests/test_cli.py
    short = [
        "trainer.epochs=1",
        "downstream.frozen_epochs=1",
        "downstream.unfrozen_epochs=1",
        "downstream.evals=[finetune]",
    ]
    res = run_cli([*args, *short, "trainer.progress=false", "tensorboard=false", "hydra.run.dir=run"], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "run/pretext/COMPLETE").is_file()
    metrics = json.loads((tmp_path / "run/metrics.json").read_text())
    d, limits = cfg.downstream, (cfg.dataset.train_limit, cfg.dataset.test_limit)
    assert train < limits[0] and test < limits[1]
    assert f"dataset.train_limit={limits[0]}: all {train} train images" in res.stdout
    assert f"dataset.test_limit={limits[1]}: all {test} test images" in res.stdout
    assert metrics["splits"] == {
        "pretext": train,
        "labeled": 10 * d.labels_per_class,
        "val": 10 * d.val_per_class,
        "test": test,
    }
    assert metrics["pretext_pool"] == "train" and metrics["pretext"]["epochs"] == 1
    assert set(metrics["downstream"]) == {"finetune"} and set(d.evals) == {"finetune", "scratch"}
    for entry in metrics["downstream"].values():
        assert 0 <= entry["test_accuracy"] <= 1


def test_limits_are_at_most_n_and_positive(caplog):
    from sslrun.data.synthetic import make_synthetic
    from sslrun.errors import SslrunError
    from sslrun.pipeline import limit

    raw = make_synthetic(60, 20, noise=0.1)
    assert limit(raw, None, None) is raw
    with caplog.at_level("INFO", logger="sslrun"):
        cut = limit(raw, 50, 300)
    assert (len(cut.y_train), len(cut.y_test)) == (50, 20)
    assert (cut.x_train == raw.x_train[:50]).all() and (cut.y_test == raw.y_test).all()
    assert "dataset.train_limit=50: the first 50 of 60 train images" in caplog.text
    assert "dataset.test_limit=300: all 20 test images" in caplog.text
    for train, test, key in ((0, None, "train_limit=0"), (None, -3, "test_limit=-3")):
        with pytest.raises(SslrunError, match=f"dataset.{key}: must be a positive number of images"):
            limit(raw, train, test)


@pytest.mark.parametrize("name", ["mnist", "cifar10", "stl10", "image_folder"])
def test_missing_dataset_path_is_named(name, tmp_path):
    from sslrun.errors import DataError

    missing = tmp_path / "nowhere"
    overrides = [f"dataset={name}", f"dataset.path={missing}", f"cache_dir={tmp_path}"]
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    with pytest.raises(DataError, match=f"{missing}.*does not exist"):
        load_splits(cfg)
