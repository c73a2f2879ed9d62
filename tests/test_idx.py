import gzip

import numpy as np
import pytest

from sslrun.data.idx import read_idx, write_idx
from sslrun.data.mnist import load_idx_folder
from sslrun.errors import DataError


@pytest.mark.parametrize("name", ["a-idx3-ubyte", "a-idx3-ubyte.gz"])
def test_roundtrip(tmp_path, name):
    x = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / name, x)
    y = read_idx(tmp_path / name, expect_ndim=3)
    assert y.dtype == np.uint8 and y.shape == (5, 28, 28)
    np.testing.assert_array_equal(x, y)


def test_header_bytes_are_the_mnist_ones(tmp_path):
    write_idx(tmp_path / "l", np.arange(3, dtype=np.uint8))
    assert (tmp_path / "l").read_bytes()[:8] == bytes([0, 0, 8, 1, 0, 0, 0, 3])


def test_truncated_file_names_file_and_sizes(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx(path, np.zeros((4, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(
        DataError,
        match=r"train-images-idx3-ubyte is truncated: header \(4, 28, 28\) needs 3136 bytes of data, found 3036",
    ):
        read_idx(path)


def test_truncated_gzip(tmp_path):
    path = tmp_path / "x.gz"
    write_idx(path, np.random.default_rng(0).integers(0, 256, (50, 28, 28), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match=r"x.gz could not be read"):
        read_idx(path)


def test_wrong_magic(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(b"\x1f\x8b\x08\x00" + bytes(20))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz has a wrong magic number 0x1f8b0800"):
        read_idx(path)


def test_swapped_files_are_caught(tmp_path):
    write_idx(tmp_path / "labels", np.zeros(3, np.uint8))
    with pytest.raises(DataError, match="1 dimensions where 3 were expected"):
        read_idx(tmp_path / "labels", expect_ndim=3)


def test_folder_reads_gz_and_raw(idx_dir):
    raw = load_idx_folder(idx_dir)
    assert raw.x_train.shape == (400, 28, 28, 1) and raw.x_test.shape == (200, 28, 28, 1)
    assert np.bincount(raw.y_train).tolist() == [40] * 10


def test_count_mismatch(idx_dir):
    write_idx(idx_dir / "t10k-labels-idx1-ubyte", np.zeros(7, np.uint8))
    with pytest.raises(DataError, match=r"test images \(200\) and labels \(7\) differ"):
        load_idx_folder(idx_dir)
