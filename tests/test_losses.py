"""SSL losses against independent NumPy references, known values, invariances and a few SGD steps."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from sslrun.pretext.losses import (
    barlow_twins_loss,
    byol_loss,
    moco_v3_loss,
    nearest_neighbours,
    nnclr_loss,
    nt_xent_loss,
    simsiam_loss,
    vicreg_loss,
)

RNG = np.random.default_rng(0)
Z1 = RNG.normal(size=(8, 5)).astype(np.float32)
Z2 = (Z1 + 0.5 * RNG.normal(size=(8, 5))).astype(np.float32)  # correlated, like two views


def hadamard_columns(n: int, d: int) -> np.ndarray:
    """d columns of +-1 entries, each with mean 0 and (biased) variance 1, mutually orthogonal."""
    h = np.array([[1.0]])
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    return h[:, 1 : d + 1].astype(np.float32)  # column 0 is constant


# ---- NumPy references, written independently of the implementation (loops, float64) ----


def nt_xent_reference(z1, z2, temperature):
    z = np.concatenate([z1, z2]).astype(np.float64)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    n2 = len(z)
    losses = []
    for i in range(n2):
        positive = (i + n2 // 2) % n2
        sims = {k: z[i] @ z[k] / temperature for k in range(n2) if k != i}
        losses.append(-sims[positive] + np.log(sum(np.exp(s) for s in sims.values())))
    return np.mean(losses)


def byol_reference(p, z):
    cos = [a @ b / np.linalg.norm(a) / np.linalg.norm(b) for a, b in zip(p.astype(np.float64), z, strict=True)]
    return np.mean([2 - 2 * c for c in cos])


def barlow_reference(z1, z2, lam):
    def std(z):
        z = z.astype(np.float64)
        return (z - z.mean(0)) / np.sqrt(z.var(0) + 1e-5)

    a, b = std(z1), std(z2)
    d = a.shape[1]
    total = 0.0
    for i in range(d):
        for j in range(d):
            c_ij = np.dot(a[:, i], b[:, j]) / len(a)
            total += (1 - c_ij) ** 2 if i == j else lam * c_ij**2
    return total


def vicreg_reference(z1, z2, sim=25.0, var=25.0, cov=1.0, eps=1e-4):
    def var_cov(z):
        c = np.cov(z.astype(np.float64), rowvar=False)  # unbiased
        v = np.mean(np.maximum(0.0, 1 - np.sqrt(np.var(z, axis=0, ddof=1) + eps)))
        return v, (np.sum(c**2) - np.sum(np.diag(c) ** 2)) / z.shape[1]

    (v1, c1), (v2, c2) = var_cov(z1), var_cov(z2)
    return sim * np.mean((z1.astype(np.float64) - z2) ** 2) + var * (v1 + v2) / 2 + cov * (c1 + c2)


def simsiam_reference(p, z):
    return -np.mean(
        [a @ b / np.linalg.norm(a) / np.linalg.norm(b) for a, b in zip(p.astype(np.float64), z, strict=True)]
    )


def info_nce_reference(anchors, candidates, temperature):
    """Row i's cross-entropy of picking candidate i, by loops (the form solo-learn's mocov3 and nnclr losses use:
    F.cross_entropy(normalize(a) @ normalize(c).T / t, arange(n)))."""
    a = [r / np.linalg.norm(r) for r in anchors.astype(np.float64)]
    c = [r / np.linalg.norm(r) for r in candidates.astype(np.float64)]
    losses = []
    for i, row in enumerate(a):
        logits = [row @ col / temperature for col in c]
        losses.append(-logits[i] + np.log(sum(np.exp(v) for v in logits)))
    return np.mean(losses)


def nearest_reference(z, support):
    unit = [r / np.linalg.norm(r) for r in support.astype(np.float64)]
    out = []
    for row in z.astype(np.float64):
        sims = [row @ u / np.linalg.norm(row) for u in unit]
        out.append(unit[int(np.argmax(sims))])
    return np.array(out)


LOSSES = {
    "nt_xent": (lambda a, b: nt_xent_loss(a, b, 0.5), lambda a, b: nt_xent_reference(a, b, 0.5)),
    "byol": (byol_loss, byol_reference),
    "barlow": (
        lambda a, b: barlow_twins_loss(a, b, 5e-3),
        lambda a, b: barlow_reference(a, b, 5e-3),
    ),
    "vicreg": (vicreg_loss, vicreg_reference),
    "simsiam": (simsiam_loss, simsiam_reference),
    "moco_v3": (lambda a, b: moco_v3_loss(a, b, 0.2), lambda a, b: 2 * 0.2 * info_nce_reference(a, b, 0.2)),
    "nnclr": (lambda a, b: nnclr_loss(a, b, 0.1), lambda a, b: info_nce_reference(a, b, 0.1)),
}


@pytest.mark.parametrize("name", LOSSES)
def test_matches_numpy_reference(name):
    loss, reference = LOSSES[name]
    value = loss(tf.constant(Z1), tf.constant(Z2))
    assert value.shape == () and value.dtype == tf.float32
    assert float(value) == pytest.approx(reference(Z1, Z2), rel=1e-5)


def test_vicreg_reference_with_other_weights():
    got = vicreg_loss(Z1, Z2, sim_weight=1.0, var_weight=2.0, cov_weight=3.0, eps=1e-2)
    assert float(got) == pytest.approx(vicreg_reference(Z1, Z2, 1.0, 2.0, 3.0, 1e-2), rel=1e-5)


@pytest.mark.parametrize("name", LOSSES)
def test_bf16_inputs_computed_in_float32(name):
    loss = LOSSES[name][0]
    b1, b2 = tf.cast(Z1, tf.bfloat16), tf.cast(Z2, tf.bfloat16)
    value = loss(b1, b2)
    assert value.dtype == tf.float32
    expected = loss(tf.cast(b1, tf.float32), tf.cast(b2, tf.float32))
    assert float(value) == pytest.approx(float(expected), rel=1e-6)


# ---- known values ----


def test_nt_xent_identical_orthogonal_views_is_small():
    z = np.eye(4, dtype=np.float32)  # each positive at cos 1, all 6 negatives at cos 0
    expected = np.log(1 + 6 * np.exp(-1 / 0.1))
    got = float(nt_xent_loss(z, z, 0.1))
    assert got == pytest.approx(expected, rel=1e-4) and got < 1e-3


def test_nt_xent_collapsed_is_log_of_2n_minus_1():
    z = np.ones((4, 3), np.float32)  # every pair equally similar: uniform over 2N-1 candidates
    assert float(nt_xent_loss(z, z, 0.1)) == pytest.approx(np.log(7), rel=1e-6)


def test_byol_known_values():
    assert float(byol_loss(Z1, Z1)) == pytest.approx(0.0, abs=1e-6)
    assert float(byol_loss(Z1, -3.0 * Z1)) == pytest.approx(4.0, rel=1e-6)
    orthogonal = np.eye(4, dtype=np.float32)
    assert float(byol_loss(orthogonal, np.roll(orthogonal, 1, axis=1))) == pytest.approx(2.0)


def test_barlow_identical_standardized_decorrelated_is_zero():
    z = hadamard_columns(8, 4)
    assert float(barlow_twins_loss(z, z, 1.0)) == pytest.approx(0.0, abs=1e-6)


def test_barlow_identical_correlated_pays_offdiag_only():
    z = hadamard_columns(8, 2)
    z = np.concatenate([z, z[:, :1]], axis=1)  # dims 0 and 2 identical: C_02 = C_20 = 1
    assert float(barlow_twins_loss(z, z, 0.5)) == pytest.approx(0.5 * 2, rel=1e-4)


def test_vicreg_known_values():
    spread = 2.0 * hadamard_columns(8, 4)  # std > 1, uncorrelated: only invariance could cost
    assert float(vicreg_loss(spread, spread)) == pytest.approx(0.0, abs=1e-6)
    collapsed = np.ones((8, 4), np.float32)  # std 0 in every dim, both branches
    assert float(vicreg_loss(collapsed, collapsed)) == pytest.approx(25 * (1 - 1e-2), rel=1e-6)


def test_simsiam_known_values():
    assert float(simsiam_loss(Z1, 4.0 * Z1)) == pytest.approx(-1.0, rel=1e-6)
    assert float(simsiam_loss(Z1, -Z1)) == pytest.approx(1.0, rel=1e-6)


def test_moco_v3_scaled_by_two_temperatures():
    """Perfect, orthogonal keys: each query's softmax is exp(1/t) against N-1 of exp(0), times 2t."""
    e = np.eye(4, dtype=np.float32)
    for t in (0.2, 1.0):
        assert float(moco_v3_loss(e, e, t)) == pytest.approx(2 * t * np.log(1 + 3 * np.exp(-1 / t)), rel=1e-5)


def test_nearest_neighbours_against_loops_and_without_gradient():
    support = RNG.normal(size=(11, 5)).astype(np.float32)
    np.testing.assert_allclose(nearest_neighbours(Z1, support).numpy(), nearest_reference(Z1, support), atol=1e-6)
    exact = nearest_neighbours(3.0 * support[[4, 2, 9]], support).numpy()  # a row's nearest is itself
    np.testing.assert_allclose(
        exact, support[[4, 2, 9]] / np.linalg.norm(support[[4, 2, 9]], axis=1, keepdims=True), atol=1e-6
    )
    z, queue = tf.Variable(Z1), tf.Variable(support)
    with tf.GradientTape() as tape:
        loss = nnclr_loss(nearest_neighbours(z, queue), z, 0.1)
    grad_queue, grad_z = tape.gradient(loss, [queue, z])
    assert grad_queue is None and np.abs(grad_z.numpy()).sum() > 0  # only the predictions are pulled


@pytest.mark.parametrize("name", ["simsiam", "moco_v3"])
def test_no_gradient_into_the_target(name):
    p, z = tf.Variable(Z1), tf.Variable(Z2)
    with tf.GradientTape() as tape:
        loss = LOSSES[name][0](p, z)
    grad_p, grad_z = tape.gradient(loss, [p, z])
    assert grad_z is None and np.abs(grad_p.numpy()).sum() > 0


# ---- invariances ----


def test_nt_xent_invariant_to_scale():
    base = float(nt_xent_loss(Z1, Z2, 0.2))
    assert float(nt_xent_loss(3.0 * Z1, 0.01 * Z2, 0.2)) == pytest.approx(base, rel=1e-5)


def test_barlow_invariant_to_per_dim_affine():
    base = float(barlow_twins_loss(Z1, Z2, 5e-3))
    scaled = Z1 * np.arange(1, 6, dtype=np.float32) + 7.0
    assert float(barlow_twins_loss(scaled, Z2, 5e-3)) == pytest.approx(base, rel=1e-4)


@pytest.mark.parametrize("name", ["nt_xent", "barlow", "vicreg"])
def test_symmetric_in_the_two_views(name):
    loss = LOSSES[name][0]
    assert float(loss(Z2, Z1)) == pytest.approx(float(loss(Z1, Z2)), rel=1e-5)


def test_byol_invariant_to_scale():
    # The value is symmetric too (cosine); the asymmetry is in the gradient, tested below.
    assert float(byol_loss(2.0 * Z1, 5.0 * Z2)) == pytest.approx(float(byol_loss(Z1, Z2)), rel=1e-5)


# ---- gradients ----


def test_byol_no_gradient_into_target():
    p, z = tf.Variable(Z1), tf.Variable(Z2)
    with tf.GradientTape() as tape:
        loss = byol_loss(p, z)
    grad_p, grad_z = tape.gradient(loss, [p, z])
    assert grad_z is None
    assert np.abs(grad_p.numpy()).sum() > 0


def test_byol_target_network_gets_no_gradient():
    online, target = keras.layers.Dense(4), keras.layers.Dense(4)
    x = tf.constant(Z1)
    online(x), target(x)
    with tf.GradientTape() as tape:
        loss = byol_loss(online(x), target(x + 1.0))
    grads = tape.gradient(loss, online.trainable_variables + target.trainable_variables)
    assert all(g is not None for g in grads[:2]) and grads[2:] == [None, None]


def synthetic_views(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(32, 12)).astype(np.float32)
    v1 = x + 0.3 * rng.normal(size=x.shape).astype(np.float32)
    v2 = x + 0.3 * rng.normal(size=x.shape).astype(np.float32)
    return tf.constant(v1), tf.constant(v2)


TRAINABLE = {
    "nt_xent": lambda a, b: nt_xent_loss(a, b, 0.5),
    "byol": lambda a, b: byol_loss(a, b),  # `a` goes through a predictor first, below
    "barlow": lambda a, b: barlow_twins_loss(a, b, 0.1),
    "vicreg": vicreg_loss,
    "simsiam": simsiam_loss,  # `a` through the predictor, like BYOL
    "moco_v3": lambda a, b: moco_v3_loss(a, b, 0.2),  # the same
    "nnclr": lambda a, b: nnclr_loss(b, a, 0.1),  # b stands for the neighbours: no gradient, as from a queue
}
PREDICTED = {"byol", "simsiam", "moco_v3", "nnclr"}  # their online branch goes through a predictor


@pytest.mark.parametrize("name", TRAINABLE)
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_decreases_under_a_few_optimizer_steps(name, optimizer):
    keras.utils.set_random_seed(0)
    projector = keras.Sequential([keras.layers.Dense(16, activation="relu"), keras.layers.Dense(8)])
    predictor = keras.layers.Dense(8)  # BYOL's online predictor; unused by the others
    v1, v2 = synthetic_views()
    projector(v1), predictor(projector(v1))
    variables = projector.trainable_variables + (predictor.trainable_variables if name in PREDICTED else [])
    opt = keras.optimizers.SGD(0.05) if optimizer == "sgd" else keras.optimizers.Adam(1e-2)

    def compute():
        a, b = projector(v1), projector(v2)
        return TRAINABLE[name](predictor(a) if name in PREDICTED else a, b)

    first = float(compute())
    for _ in range(20):
        with tf.GradientTape() as tape:
            loss = compute()
        opt.apply(tape.gradient(loss, variables), variables)
    last = float(compute())
    assert np.isfinite(last) and last < first
    assert first - last > 0.01 * abs(first), (first, last)  # a real decrease, not rounding
