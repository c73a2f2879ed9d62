"""The tensorflow-datasets source, on tfds' own mock data (no network, no files)."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from sslrun.data.datasets import DATASETS
from sslrun.data.sources import load_from_tfds

SHAPES = {"mnist": (28, 28, 1), "fashion_mnist": (28, 28, 1), "cifar10": (32, 32, 3), "stl10": (96, 96, 3)}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_tfds_source_via_mock_data(name, monkeypatch, tmp_path):
    monkeypatch.setattr("tensorflow_datasets.core.DatasetBuilder.is_prepared", lambda self: True)
    with tfds.testing.mock_data(num_examples=30):
        raw = DATASETS.build(name, source="tfds", path=None, data_dir=None, download=False, cache_dir=str(tmp_path))
    assert raw.x_train.shape == (30, *SHAPES[name]) and raw.x_train.dtype.name == "uint8"
    assert raw.y_test.shape == (30,) and raw.source.startswith("tfds")
    assert len(raw.class_names) == 10
    if name == "stl10":  # the unlabelled split is written once to disk and memory-mapped
        assert isinstance(raw.x_unlabeled, np.memmap) and raw.x_unlabeled.shape == (30, 96, 96, 3)
        assert list(tmp_path.glob("tfds-arrays/stl10-*-unlabelled.json"))
    else:
        assert raw.x_unlabeled is None


def test_unprepared_without_download_is_reported(tmp_path):
    looked = []
    assert load_from_tfds("mnist", str(tmp_path), download=False, looked=looked) is None
    assert "not prepared; dataset.download=false" in looked[0]
