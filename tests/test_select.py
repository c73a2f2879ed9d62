"""Label selection strategies (sslrun.select): enumerated over the registry, on synthetic features."""

from __future__ import annotations

import numpy as np
import pytest

from sslrun.errors import DataError
from sslrun.select import SELECTORS

STRATEGIES = SELECTORS.names()


def _blobs(clusters: int = 8, per: int = 60, dim: int = 16, seed: int = 0, sizes=None):
    """Well-separated Gaussian clusters (features, cluster of each row), rows shuffled."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)) * 6
    sizes = sizes or [per] * clusters
    x = np.concatenate([c + rng.normal(size=(s, dim)) for c, s in zip(centres, sizes, strict=True)])
    y = np.repeat(np.arange(clusters), sizes)
    order = rng.permutation(len(y))
    return x[order].astype(np.float32), y[order]


def test_the_registry_holds_the_four_strategies():
    assert set(STRATEGIES) == {"kcenter", "probcover", "random", "typiclust"}


@pytest.mark.parametrize("name", STRATEGIES)
def test_picks_are_n_distinct_rows_and_the_same_for_the_same_seed_and_repeat(name):
    x, _ = _blobs()
    pick = SELECTORS.get(name)
    first = pick(x, 12, seed=3, repeat=1)
    assert first.dtype == np.int64 and len(first) == 12 and len(set(first.tolist())) == 12
    assert first.min() >= 0 and first.max() < len(x)
    np.testing.assert_array_equal(first, pick(x, 12, seed=3, repeat=1))


@pytest.mark.parametrize("name", ["random", "kcenter"])
def test_another_repeat_draws_otherwise(name):
    x, _ = _blobs()
    pick = SELECTORS.get(name)
    assert not np.array_equal(pick(x, 12, seed=3, repeat=0), pick(x, 12, seed=3, repeat=1))


@pytest.mark.parametrize("name", STRATEGIES)
def test_labels_never_reach_a_strategy(name, monkeypatch):
    """draw_labels with shuffled labels picks the same rows: only the features choose."""
    from sslrun.data.splits import Budget, LabelDraw, draw_labels

    x, y = _blobs()
    how = LabelDraw(draw=name)
    picked, _ = draw_labels(y, Budget(num_labels=8), how, 0, 2, features=x)
    shuffled, _ = draw_labels(np.random.default_rng(9).permutation(y), Budget(num_labels=8), how, 0, 2, features=x)
    np.testing.assert_array_equal(picked, shuffled)
    np.testing.assert_array_equal(picked, np.sort(SELECTORS.get(name)(x, 8, 0, 2)))


@pytest.mark.parametrize("name", ["typiclust", "probcover"])
def test_a_budget_of_one_per_cluster_covers_every_cluster(name):
    hits = []
    for seed in range(3):
        x, y = _blobs(seed=seed, sizes=[30, 50, 70, 90, 110, 40, 60, 80])
        hits.append(len(set(y[SELECTORS.get(name)(x, 8, seed=seed, repeat=0)].tolist())))
    assert hits == [8, 8, 8]


def test_random_does_not_cover_every_cluster():
    covered = []
    for seed in range(3):
        x, y = _blobs(seed=seed, sizes=[30, 50, 70, 90, 110, 40, 60, 80])
        covered.append(len(set(y[SELECTORS.get("random")(x, 8, seed=seed, repeat=0)].tolist())))
    assert min(covered) < 8  # 8 uniform draws over 8 clusters cover them all with probability < 0.3%


def test_kcenter_covers_every_cluster_too():
    x, y = _blobs(seed=1)
    assert len(set(y[SELECTORS.get("kcenter")(x, 8, seed=1, repeat=0)].tolist())) == 8


@pytest.mark.parametrize("name", STRATEGIES)
def test_already_labeled_rows_are_never_picked_again(name):
    x, _ = _blobs()
    labeled = SELECTORS.get("random")(x, 40, seed=5, repeat=0)
    more = SELECTORS.get(name)(x, 30, seed=5, repeat=0, labeled=labeled)
    assert len(set(more.tolist())) == 30 and not set(more.tolist()) & set(labeled.tolist())


@pytest.mark.parametrize("name", ["typiclust", "probcover", "kcenter"])
def test_a_second_round_goes_to_the_clusters_not_yet_labeled(name):
    x, y = _blobs(seed=2)
    labeled = np.array([np.flatnonzero(y == c)[0] for c in range(4)])  # one image of each of four clusters
    more = SELECTORS.get(name)(x, 4, seed=0, repeat=0, labeled=labeled)
    assert set(y[more].tolist()) == {4, 5, 6, 7}


@pytest.mark.parametrize("name", STRATEGIES)
def test_a_budget_larger_than_the_pool_is_refused(name):
    x, _ = _blobs(clusters=2, per=5)
    with pytest.raises(DataError, match="the pool has 7 images not yet labeled"):
        SELECTORS.get(name)(x, 8, 0, 0, labeled=np.array([0, 1, 2]))


def test_every_image_can_be_picked():
    x, _ = _blobs(clusters=3, per=4)
    for name in STRATEGIES:
        assert sorted(SELECTORS.get(name)(x, 12, 0, 0).tolist()) == list(range(12)), name
