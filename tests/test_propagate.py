"""Label propagation: the graph against brute force, diffusion along a manifold, the eval with its study cache."""

import keras
import numpy as np
import pytest
from test_evals import _downstream

from sslrun.data.splits import make_splits
from sslrun.data.synthetic import make_synthetic
from sslrun.downstream.evals import EVALS, EvalInputs
from sslrun.downstream.knn import knn_predict, nearest
from sslrun.downstream.propagate import (
    certainty,
    label_weights,
    propagate_labels,
    propagate_scores,
    softmax_regression,
    unit_rows,
    vote,
)


def test_nearest_matches_brute_force_and_skips_self():
    rng = np.random.default_rng(0)
    u = unit_rows(rng.normal(size=(300, 8)), np.zeros(8))
    idx, sim = nearest(u, u, 5, exclude_self=True, chunk=64)
    s = u @ u.T
    np.fill_diagonal(s, -np.inf)
    want = np.argsort(-s, axis=1)[:, :5]
    assert idx.shape == (300, 5) and not (idx == np.arange(300)[:, None]).any()
    assert (np.sort(idx, 1) == np.sort(want, 1)).all()
    np.testing.assert_allclose(np.sort(sim, 1), np.sort(np.take_along_axis(s, want, 1), 1), rtol=1e-5)


def test_vote_from_cached_pool_neighbours_equals_knn_over_the_whole_graph():
    rng = np.random.default_rng(1)
    pool, lab, query = (unit_rows(rng.normal(size=(n, 6)), np.zeros(6)) for n in (400, 12, 50))
    labels = rng.integers(0, 4, 412)
    near_idx, near_sim = nearest(query, pool, 7, exclude_self=False)
    want = knn_predict(np.concatenate([pool, lab]), labels, query, k=7, num_classes=4)
    assert (vote(query, near_idx, near_sim, lab, labels, 7, 4) == want).all()
    # nodes no label reached are passed over: with every pool node unlabeled, the labeled nodes decide
    unreached = np.concatenate([np.full(400, -1), labels[400:]])
    assert (vote(query, near_idx, near_sim, lab, unreached, 7, 4) == knn_predict(lab, labels[400:], query, 7, 4)).all()


def _arcs(n: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Two half circles in orthogonal planes: neighbours along an arc are close, its ends are opposite."""
    t = np.linspace(0, np.pi, n)
    a = np.stack([np.cos(t), np.sin(t), 0 * t, 0 * t], 1)
    b = np.stack([0 * t, 0 * t, np.cos(t), np.sin(t)], 1)
    return np.concatenate([a, b]).astype(np.float32), np.repeat([0, 1], n)


def test_labels_diffuse_along_each_arc_where_nearest_labels_fail():
    x, y = _arcs()
    seeds = np.array([0, 100])  # one label per class, each at the start of its arc
    idx, sim = nearest(x, x, 6, exclude_self=True)
    assert (propagate_labels(idx, sim, seeds, y[seeds], 2, alpha=0.99) == y).all()
    # the labeled images alone mislabel the far half of each arc (cosine < 0 to its own seed)
    by_label = knn_predict(x[seeds], y[seeds], x, k=1, num_classes=2)
    assert 0.6 < np.mean(by_label == y) < 0.8
    # no label on arc b (its own graph component): its images stay unlabeled (-1), not class 0
    only_a = propagate_labels(idx, sim, seeds[:1], y[:1], 2, alpha=0.99)
    assert (only_a[:100] == 0).all() and (only_a[100:] == -1).all()


def test_certainty_and_label_weights():
    f = np.array([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 1.0, 1.0]])
    np.testing.assert_allclose(certainty(f), [1.0, 0.0, 0.0, 1.0, 1 - np.log(2) / np.log(3)], atol=1e-12)
    labels = np.array([0, 0, -1, 1, 1])
    w = label_weights(f, labels, seeds=np.array([0]))
    # unreached node 2 and the uniform node 1 carry nothing; the labeled node 0 the most; node 3 (certain, class 1)
    # as much as node 0's certainty 1 allows; node 4 (half certain) less; the weighted nodes average 1
    assert w[1] < 1e-6 and w[2] == 0 and w[0] == w.max() and w[3] > w[4] > 0.1
    np.testing.assert_allclose(w[w > 0].mean(), 1.0, rtol=1e-6)
    # at equal certainty a rarer class weighs more
    rare = label_weights(np.eye(3)[[0, 0, 0, 1]], np.array([0, 0, 0, 1]), seeds=np.array([], int))
    assert rare[3] == pytest.approx(3 * rare[0])


def test_softmax_regression_learns_the_arcs_from_propagated_labels():
    x, y = _arcs()
    seeds = np.array([0, 100])
    idx, sim = nearest(x, x, 6, exclude_self=True)
    scores = propagate_scores(idx, sim, seeds, y[seeds], 2, alpha=0.99)
    labels = propagate_labels(idx, sim, seeds, y[seeds], 2, alpha=0.99)
    W, b = softmax_regression(x, labels, label_weights(scores, labels, seeds), 2)
    # (the two ends of each arc, (+-1, 0, 0, 0) and (0, 0, +-1, 0), no line separates; the rest it does)
    assert np.mean((x @ W + b).argmax(1) == y) >= 0.97
    # fit to the two labeled images alone it is not (the far half of each arc points the other way)
    W, b = softmax_regression(x[seeds], y[seeds], np.ones(2, np.float32), 2)
    assert np.mean((x @ W + b).argmax(1) == y) < 0.9


@pytest.mark.parametrize("classifier", ["vote", "linear"])
def test_propagate_eval_shares_the_pool_graph_across_draws(classifier):
    d = _downstream(propagate_classifier=classifier)
    raw = make_synthetic(600, 300, 0.05)

    # a fixed "encoder": the mean pixel per column, where the class sets the shape's x position
    def enc():
        return keras.Sequential(
            [keras.Input((28, 28, 1)), keras.layers.Lambda(lambda x: keras.ops.mean(x, axis=(1, 3)))]
        )

    cache: dict = {}
    accs = []
    for repeat in range(2):
        splits = make_splits(raw, 3, 2, seed=0, num_classes=10, repeat=repeat)
        out = EVALS.get("propagate")(EvalInputs(enc, enc, splits, d, seed=0, cache=cache))
        assert out["predictions"].shape == (len(splits.test_y),) and 0 <= out["val_accuracy"] <= 1
        accs.append(out["test_accuracy"])
    # one pool graph and one set of test neighbours (with their features) for both draws; each draw has
    # its own validation images
    # (the linear classifier needs no neighbours of the test and validation images)
    assert sorted(key[0] for key in cache) == ["neighbours"] * 3 * (classifier == "vote") + ["propagate"]
    entry = next(v for key, v in cache.items() if key[0] == "propagate")
    assert entry["idx"].shape == (len(splits.pretext_x), d.propagate_k)
    assert min(accs) > 0.6, accs
