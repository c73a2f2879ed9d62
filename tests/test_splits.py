import numpy as np
import pytest

from sslrun.data.base import RawData
from sslrun.data.pipeline import image_batches
from sslrun.data.splits import Budget, draw_stratified, make_splits
from sslrun.data.stack import ImageStack
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
    with pytest.raises(
        DataError, match=r"class 1 \(cat\) has 4 training images, fewer than the 3 labeled \+ 2 validation"
    ):
        draw_stratified(y, 3, 2, seed=0, class_names=("ant", "cat", "dog"))


def test_num_labels_total_spread_evenly():
    lab, _ = draw_stratified(Y, Budget(num_labels=25), 0, seed=1)
    counts = np.bincount(Y[lab], minlength=10)
    assert counts.sum() == 25 and set(counts) == {2, 3} and (counts == 3).sum() == 5


def test_label_fraction_per_class():
    y = np.repeat(np.arange(3), [100, 40, 10])
    lab, _ = draw_stratified(y, Budget(label_fraction=0.1), 0, seed=0)
    assert np.bincount(y[lab]).tolist() == [10, 4, 1]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "exactly one label budget, got none"),
        ({"labels_per_class": 5, "num_labels": 50}, "got labels_per_class, num_labels"),
        ({"label_fraction": 1.5}, "label_fraction=1.5"),
        ({"num_labels": 0}, "num_labels=0"),
    ],
)
def test_bad_budgets(kwargs, message):
    with pytest.raises(DataError, match=message):
        Budget(**kwargs)


def test_make_splits_sizes_and_pool():
    raw = make_synthetic(300, 100, 0.1)
    s = make_splits(raw, 5, 2, seed=0, num_classes=10)
    assert s.sizes() == {"pretext": 300, "labeled": 50, "val": 20, "test": 100}
    assert s.labeled_x.dtype == np.uint8 and s.image_shape == (28, 28, 1) and s.pool == "train"


def test_pool_excluding_labeled_has_none_of_the_labeled_images():
    raw = make_synthetic(300, 100, 0.1)
    ids = np.arange(300)
    raw.x_train = np.stack([ids // 256, ids % 256], 1).astype(np.uint8).reshape(300, 1, 2, 1)  # unique images
    s = make_splits(raw, 5, 2, seed=0, num_classes=10, pool="train_excluding_labeled")
    assert len(s.pretext_x) == 300 - 70
    key = lambda x: set(x[:, 0, 0, 0].astype(int) * 256 + x[:, 0, 1, 0])  # noqa: E731
    assert len(key(s.pretext_x) | key(s.labeled_x) | key(s.val_x)) == 300


def test_unlabeled_pools_and_missing_unlabeled_split():
    raw = make_synthetic(300, 100, 0.1)
    with pytest.raises(DataError, match="no unlabeled split; use dataset.pool=train"):
        make_splits(raw, 5, 2, seed=0, num_classes=10, pool="unlabeled")
    raw.x_unlabeled = np.zeros((40, 28, 28, 1), np.uint8)
    assert len(make_splits(raw, 5, 2, 0, 10, pool="unlabeled").pretext_x) == 40
    s = make_splits(raw, 5, 2, 0, 10, pool="auto")
    assert s.pool == "unlabeled_and_train" and len(s.pretext_x) == 340 and isinstance(s.pretext_x, ImageStack)


def test_num_classes_from_data_when_null():
    raw = RawData(
        np.zeros((30, 2, 2, 1), np.uint8),
        np.arange(30) % 3,
        np.zeros((3, 2, 2, 1), np.uint8),
        np.arange(3),
        source="t",
        class_names=("a", "b", "c"),
    )
    assert make_splits(raw, 2, 1, 0, None).num_classes == 3


def test_stack_take_across_parts_in_any_order(tmp_path):
    mm = np.memmap(tmp_path / "u.bin", np.uint8, "w+", shape=(5, 2, 2, 1))
    mm[:] = np.arange(5).reshape(5, 1, 1, 1)
    stack = ImageStack([mm, np.full((3, 2, 2, 1), 9, np.uint8)])
    assert len(stack) == 8 and stack.on_disk and stack.shape == (8, 2, 2, 1)
    assert stack.take(np.array([6, 0, 4, 2]))[:, 0, 0, 0].tolist() == [9, 0, 4, 2]


def test_streamed_batches_equal_in_memory_batches(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (50, 4, 4, 3), dtype=np.uint8)
    mm = np.memmap(tmp_path / "x.bin", np.uint8, "w+", shape=x.shape)
    mm[:] = x
    y = np.arange(50) % 10
    a = list(image_batches(x, y, batch_size=16, shuffle=True, seed=3))
    b = list(image_batches(mm, y, batch_size=16, shuffle=True, seed=3))
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        np.testing.assert_array_equal(xa.numpy(), xb.numpy())
        np.testing.assert_array_equal(ya.numpy(), yb.numpy())
    assert a[0][0].dtype == "float32" and float(a[0][0].numpy().max()) <= 1.0


def test_first_draw_takes_file_order_per_class_and_overall():
    from sslrun.data.splits import LabelDraw, draw_labels

    y = np.tile(np.arange(10), 50)  # class c at indices c, c+10, ...
    lab, val = draw_labels(y, 3, LabelDraw(draw="first", val_per_class=1), seed=5)
    assert sorted(lab.tolist()) == sorted(c + 10 * k for c in range(10) for k in range(3))
    assert sorted(val.tolist()) == [30 + c for c in range(10)]
    lab, val = draw_labels(y, Budget(num_labels=100), LabelDraw(draw="first", val_split=0.3), seed=5)
    assert lab.tolist() == list(range(70)) and val.tolist() == list(range(70, 100))  # keras validation_split


def test_random_draw_is_uniform_not_stratified_and_val_split_cuts_draw_order():
    from sslrun.data.splits import LabelDraw, draw_labels

    y = np.repeat(np.arange(10), 600)
    how = LabelDraw(draw="random", val_split=0.2)
    lab, val = draw_labels(y, Budget(num_labels=150), how, seed=42, repeat=3)
    assert (len(lab), len(val)) == (120, 30) and not set(lab) & set(val)
    order = np.random.default_rng([42, 3]).permutation(len(y))[:150]
    assert sorted(val.tolist()) == sorted(order[120:].tolist())
    counts = [np.bincount(y[draw_labels(y, Budget(num_labels=150), how, 42, r)[0]], minlength=10) for r in range(5)]
    assert any(len(set(c)) > 1 for c in counts)  # not 12 per class every time
    with pytest.raises(DataError, match="draw=random draws a total"):
        draw_labels(y, 5, LabelDraw(draw="random"), seed=0)


def test_val_from_test_and_one_validation_source():
    from sslrun.data.splits import LabelDraw

    raw = make_synthetic(300, 100, 0.1)
    s = make_splits(
        raw, Budget(num_labels=30), LabelDraw(draw="first", val_from_test=40), 0, 10, pool="train_excluding_labeled"
    )
    assert s.sizes() == {"pretext": 270, "labeled": 30, "val": 40, "test": 60}
    np.testing.assert_array_equal(s.val_x, raw.x_test[:40])
    np.testing.assert_array_equal(s.labeled_x, raw.x_train[:30])
    with pytest.raises(DataError, match="validation images from one place only"):
        LabelDraw(val_per_class=2, val_split=0.2)
    with pytest.raises(DataError, match="leaves no test images"):
        make_splits(raw, 2, LabelDraw(val_from_test=100), 0, 10)
