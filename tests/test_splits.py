import numpy as np
import pytest

from sslrun.data.splits import draw_stratified, make_splits
from sslrun.data.synthetic import make_synthetic
from sslrun.errors import DataError

Y = np.repeat(np.arange(10), 50)


def test_stratified_counts_and_disjoint():
    lab, val = draw_stratified(Y, 7, 3, seed=0)
    assert np.bincount(Y[lab]).tolist() == [7] * 10
    assert np.bincount(Y[val]).tolist() == [3] * 10
    assert not set(lab) & set(val)


def test_reproducible_by_seed_and_repeat():
    a = draw_stratified(Y, 5, 0, seed=3, repeat=1)[0]
    np.testing.assert_array_equal(a, draw_stratified(Y, 5, 0, seed=3, repeat=1)[0])
    assert not np.array_equal(a, draw_stratified(Y, 5, 0, seed=4, repeat=1)[0])
    assert not np.array_equal(a, draw_stratified(Y, 5, 0, seed=3, repeat=2)[0])


def test_budget_larger_than_class_names_class_and_counts():
    y = np.repeat(np.arange(3), [10, 4, 10])
    with pytest.raises(DataError, match=r"class 1 has 4 training images, fewer than the 3 labeled \+ 2 validation"):
        draw_stratified(y, 3, 2, seed=0)


def test_make_splits_sizes_and_pool():
    raw = make_synthetic(300, 100, 0.1)
    s = make_splits(raw, 5, 2, seed=0, num_classes=10)
    assert s.sizes() == {"pretext": 300, "labeled": 50, "val": 20, "test": 100}
    assert s.labeled_x.dtype == np.uint8 and s.image_shape == (28, 28, 1)
