"""`sslrun-data list` and `sslrun-data prepare` (offline, from original files the tests write)."""

import numpy as np
import pytest
import tensorflow_datasets as tfds
from conftest import run_cli

from sslrun.data import writers
from sslrun.data.prepare import prepare
from sslrun.errors import DataError


def _colour(n: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8), np.arange(n) % 10


def _load(name, data_dir, split):
    ds = tfds.load(name, split=split, data_dir=str(data_dir), batch_size=-1, as_supervised=False)
    return tfds.as_numpy(ds)


def test_prepare_mnist_offline_from_full_size_idx_files(tmp_path):
    # tfds' MNIST builder insists on 60,000 + 10,000 images: write that many (tiled), raw train, gzipped test
    from sslrun.data.idx import write_idx

    rng = np.random.default_rng(0)
    tile = rng.integers(0, 256, (1000, 28, 28), dtype=np.uint8)
    folder = tmp_path / "idx"
    folder.mkdir()
    write_idx(folder / "train-images-idx3-ubyte", np.tile(tile, (60, 1, 1)))
    write_idx(folder / "train-labels-idx1-ubyte", np.arange(60000) % 10)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", np.tile(tile, (10, 1, 1))[::-1])
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.arange(10000) % 7)
    out = prepare("mnist", str(folder), str(tmp_path / "tfds"), offline=True)
    assert "prepared from local files" in out and "'train': 60000" in out and "'test': 10000" in out
    test = _load("mnist", tmp_path / "tfds", "test")
    assert sorted(np.bincount(test["label"]).tolist()) == sorted(np.bincount(np.arange(10000) % 7).tolist())
    assert "already prepared" in prepare("mnist", str(folder), str(tmp_path / "tfds"), offline=True)


def test_prepare_refuses_small_idx_files_with_the_fix(idx_dir, tmp_path):
    with pytest.raises(DataError, match=r"holds 400 items(.|\n)*run with dataset.path="):
        prepare("mnist", str(idx_dir), str(tmp_path / "tfds"), offline=True)


def test_prepare_cifar10_offline_from_python_pickles(tmp_path):
    x, y = _colour(50, 32)
    xt, yt = _colour(20, 32, seed=1)
    writers.write_cifar10_python(tmp_path / "c", x, y, xt, yt, archive=True)
    out = prepare("cifar10", str(tmp_path / "c"), str(tmp_path / "tfds"), offline=True)
    assert "'train': 50" in out and "'test': 20" in out
    train = _load("cifar10", tmp_path / "tfds", "train")
    order = np.argsort(train["id"])  # tfds ids name the source record: train_00000 ...
    np.testing.assert_array_equal(train["image"][order], x)
    np.testing.assert_array_equal(train["label"][order], y)


def test_prepare_stl10_offline_from_unpacked_folder(tmp_path):
    x, y = _colour(20, 96)
    xt, yt = _colour(10, 96, seed=1)
    xu, _ = _colour(7, 96, seed=2)
    writers.write_stl10_binary(tmp_path / "s", x, y, xt, yt, xu, archive=False)
    out = prepare("stl10", str(tmp_path / "s"), str(tmp_path / "tfds"), offline=True)
    assert "'unlabelled': 7" in out and "'train': 20" in out


def test_prepare_without_local_files_names_places_and_fixes(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SSLRUN_SYSTEM_DATASETS", str(tmp_path / "none"))
    monkeypatch.delenv("SSLRUN_DATA_DIR", raising=False)
    with pytest.raises(DataError, match=r"dataset 'cifar10' not found(.|\n)*cifar-10-python.tar.gz"):
        prepare("cifar10", None, str(tmp_path / "tfds"), offline=True)
    with pytest.raises(DataError, match="no tensorflow-datasets builder"):
        prepare("image_folder", None, str(tmp_path / "tfds"), offline=True)


def test_list_reports_found_and_missing(idx_dir, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "mnist").symlink_to(idx_dir)
    x, y = _colour(30, 32)
    writers.write_cifar10_binary(data / "cifar10", x, y, x[:10], y[:10], archive=False)
    res = run_cli(["list"], tmp_path, env={"SSLRUN_DATA_DIR": str(data)}, exe="sslrun-data")
    assert res.returncode == 0, res.stderr
    rows = {line.split("│")[1].strip(): line for line in res.stdout.splitlines() if line.count("│") > 3}
    assert "yes" in rows["mnist"] and "400" in rows["mnist"] and "200" in rows["mnist"]
    assert "yes" in rows["cifar10"] and "32x32x3" in rows["cifar10"]
    assert "no" in rows["stl10"] and "no" in rows["fashion_mnist"]


def test_prepare_usage_error(tmp_path):
    res = run_cli(["prepare", "datset=mnist"], tmp_path, exe="sslrun-data")
    assert res.returncode == 2 and "expected dataset=NAME" in res.stderr
