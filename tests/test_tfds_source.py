"""The tensorflow-datasets source, on tfds' own mock data (no network, no files)."""

import pytest
import tensorflow_datasets as tfds

from sslrun.data.datasets import DATASETS
from sslrun.data.sources import load_from_tfds


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_tfds_source_via_mock_data(name, monkeypatch):
    monkeypatch.setattr("tensorflow_datasets.core.DatasetBuilder.is_prepared", lambda self: True)
    with tfds.testing.mock_data(num_examples=30):
        raw = DATASETS.build(name, source="tfds", path=None, data_dir=None, download=False)
    assert raw.x_train.shape == (30, 28, 28, 1) and raw.x_train.dtype.name == "uint8"
    assert raw.y_test.shape == (30,) and raw.source.startswith("tfds")


def test_unprepared_without_download_is_reported(tmp_path):
    looked = []
    assert load_from_tfds("mnist", str(tmp_path), download=False, looked=looked) is None
    assert "not prepared; dataset.download=false" in looked[0]
