"""Pretext losses: pure functions of tensors."""

from __future__ import annotations

from keras import ops


def rotation_loss(labels, logits):
    """Mean cross-entropy of integer rotation labels (0..3) against logits (batch, 4)."""
    log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
    picked = ops.take_along_axis(log_probs, ops.expand_dims(ops.cast(labels, "int32"), -1), axis=-1)
    return -ops.mean(picked)


def _float32(x):
    """Loss math in float32 even under a bf16/fp16 policy: the sums and exps below overflow or lose
    the small differences that matter in 16 bits."""
    return ops.cast(x, "float32")


def _l2_normalize(x, axis: int = -1):
    # max(., eps) rather than adding eps: exact unit norm for ordinary rows, finite gradient at 0.
    return x * ops.rsqrt(ops.maximum(ops.sum(ops.square(x), axis=axis, keepdims=True), 1e-12))


def _off_diagonal_mask(dim):
    return 1.0 - ops.eye(dim, dtype="float32")


def nt_xent_loss(z1, z2, temperature):
    """SimCLR NT-Xent (Chen et al. 2020, "A Simple Framework for Contrastive Learning", eq. 1).

    `z1[i]` and `z2[i]` are projections of two views of image i, shape (N, d). Over the 2N rows,
    each row's positive is its pair and the other 2N-2 rows are its negatives; rows are
    L2-normalised here, so the loss does not depend on their scale. Returns the mean over the 2N
    anchors (float32 scalar).

    `temperature` has no default on purpose: it is a config value. The paper uses 0.5 for CIFAR-10
    (appendix B.9) and 0.1 for large ImageNet batches; the keras.io SimCLR example uses 0.1.
    """
    z = _l2_normalize(ops.concatenate([_float32(z1), _float32(z2)], axis=0))
    n = ops.shape(z1)[0]
    logits = ops.matmul(z, ops.transpose(z)) / temperature
    # An anchor is not its own negative: push self-similarity out of the softmax (finite, not -inf,
    # so no inf - inf appears in log_softmax).
    logits = logits - 1e9 * ops.eye(2 * n, dtype="float32")
    positives = ops.concatenate([ops.arange(n, 2 * n), ops.arange(0, n)], axis=0)
    log_probs = ops.log_softmax(logits, axis=-1)
    picked = ops.take_along_axis(log_probs, ops.expand_dims(ops.cast(positives, "int32"), -1), axis=-1)
    return -ops.mean(picked)


def byol_loss(p1, z2):
    """BYOL regression loss (Grill et al. 2020, "Bootstrap Your Own Latent", eq. 2).

    `2 - 2 * cos(p1, z2)` averaged over the batch, where `p1` is the online network's prediction
    for view 1 and `z2` the target network's projection of view 2. The target gets no gradient:
    the stop-gradient is applied here, so a caller cannot forget it. The paper symmetrises by also
    feeding view 2 to the online network; that is the caller's job:
    `byol_loss(p1, z2) + byol_loss(p2, z1)`.
    """
    p = _l2_normalize(_float32(p1))
    z = _l2_normalize(_float32(ops.stop_gradient(z2)))
    return ops.mean(2.0 - 2.0 * ops.sum(p * z, axis=-1))


def barlow_twins_loss(z1, z2, lambda_offdiag):
    """Barlow Twins redundancy reduction (Zbontar et al. 2021, eq. 1 and algorithm 1).

    Each of the d dimensions is standardised over the batch (biased variance + 1e-5, as the
    authors' `BatchNorm1d(affine=False)` does), C = z1n^T z2n / N is the (d, d) cross-correlation,
    and the loss is sum_i (1 - C_ii)^2 + lambda_offdiag * sum_{i != j} C_ij^2.

    `lambda_offdiag` has no default on purpose: it is a config value. The paper uses 5e-3
    (0.0051 in the authors' code) with d = 8192; with a much smaller projector (d ~ 128-2048),
    ~1/d keeps the two terms balanced.
    """

    def standardize(z):
        z = _float32(z)
        mean = ops.mean(z, axis=0, keepdims=True)
        var = ops.mean(ops.square(z - mean), axis=0, keepdims=True)
        return (z - mean) * ops.rsqrt(var + 1e-5)

    n = ops.cast(ops.shape(z1)[0], "float32")
    c = ops.matmul(ops.transpose(standardize(z1)), standardize(z2)) / n
    on_diag = ops.sum(ops.square(1.0 - ops.diagonal(c)))
    off_diag = ops.sum(ops.square(c) * _off_diagonal_mask(ops.shape(c)[0]))
    return on_diag + lambda_offdiag * off_diag


def vicreg_loss(z1, z2, sim_weight=25.0, var_weight=25.0, cov_weight=1.0, eps=1e-4):
    """VICReg (Bardes et al. 2022, "Variance-Invariance-Covariance Regularization", eq. 6).

    sim_weight * invariance + var_weight * variance + cov_weight * covariance, a float32 scalar:
    - invariance: mean squared error between z1 and z2 (over all elements);
    - variance: per branch, mean over dims of relu(1 - sqrt(Var(z_j) + eps)) (unbiased variance,
      target std 1), averaged over the two branches;
    - covariance: per branch, sum of squared off-diagonal entries of the (unbiased) covariance
      matrix divided by d, summed over the two branches.
    These follow the authors' code (facebookresearch/vicreg `main_vicreg.py`): the paper's eq. 6
    writes the invariance as a sum over dims and the variance terms as a sum over branches; the
    code's averages rescale those two terms, and the published weights go with the code.

    Defaults are the paper's (section 4.1): lambda = mu = 25, nu = 1, eps = 1e-4.
    """
    z1, z2 = _float32(z1), _float32(z2)
    n = ops.cast(ops.shape(z1)[0], "float32")
    dim = ops.shape(z1)[1]
    mask = _off_diagonal_mask(dim)

    def variance_and_covariance(z):
        z = z - ops.mean(z, axis=0, keepdims=True)
        cov = ops.matmul(ops.transpose(z), z) / (n - 1.0)
        std = ops.sqrt(ops.diagonal(cov) + eps)
        variance = ops.mean(ops.relu(1.0 - std))
        covariance = ops.sum(ops.square(cov) * mask) / ops.cast(dim, "float32")
        return variance, covariance

    invariance = ops.mean(ops.square(z1 - z2))
    var1, cov1 = variance_and_covariance(z1)
    var2, cov2 = variance_and_covariance(z2)
    return sim_weight * invariance + var_weight * (var1 + var2) / 2.0 + cov_weight * (cov1 + cov2)


def colorization_loss(target, prediction):
    """Mean squared error between the true and predicted colour channels (Larsson et al. 2017; seed 003).

    A regression loss, as seed 003 uses; Zhang et al. (2016) classify quantised `ab` instead to
    avoid desaturated outputs, which matters for pictures, less for the features learned.
    """
    return ops.mean(ops.square(_float32(target) - _float32(prediction)))


def simsiam_loss(p1, z2):
    """SimSiam's negative cosine similarity D(p1, z2) (Chen and He 2021, "Exploring Simple Siamese
    Representation Learning", eq. 1 and algorithm 1): -cos(p1, stopgrad(z2)) averaged over the batch.

    `p1` is the predictor's output for view 1, `z2` the projection of view 2; the stop-gradient is
    applied here, so a caller cannot forget it (without it SimSiam collapses, the paper's section 4.1).
    The symmetric loss is the caller's: `(simsiam_loss(p1, z2) + simsiam_loss(p2, z1)) / 2`, in [-1, 1].
    """
    p = _l2_normalize(_float32(p1))
    z = _l2_normalize(_float32(ops.stop_gradient(z2)))
    return -ops.mean(ops.sum(p * z, axis=-1))


def _info_nce(anchors, candidates, temperature):
    """Mean cross-entropy of anchors[i] picking candidates[i] among all candidates (cosine / temperature)."""
    logits = ops.matmul(_l2_normalize(anchors), ops.transpose(_l2_normalize(candidates))) / temperature
    log_probs = ops.log_softmax(logits, axis=-1)
    return -ops.mean(ops.diagonal(log_probs))


def moco_v3_loss(q1, k2, temperature):
    """MoCo v3's contrastive loss ctr(q1, k2) (Chen, Xie and He 2021, "An Empirical Study of Training
    Self-Supervised Vision Transformers", algorithm 1): InfoNCE of each query q1[i] against every key
    of the batch, k2[i] its positive, times 2 * temperature (the authors' scaling, which makes the
    gradient's size independent of the temperature).

    `q1` is the online network's prediction for view 1, `k2` the momentum network's projection of
    view 2, shape (N, d); the keys get no gradient (stop-gradient here). The symmetric loss is the
    caller's: `moco_v3_loss(q1, k2, t) + moco_v3_loss(q2, k1, t)`.
    """
    q, k = _float32(q1), _float32(ops.stop_gradient(k2))
    return 2.0 * temperature * _info_nce(q, k, temperature)


def nearest_neighbours(z, support):
    """For each row of z (N, d), the row of support (K, d) with the largest cosine similarity to it
    (NNCLR's NN(z, Q), Dwibedi et al. 2021, eq. 2), l2-normalised, without gradient."""
    z, support = _l2_normalize(_float32(z)), _l2_normalize(_float32(ops.stop_gradient(support)))
    index = ops.argmax(ops.matmul(z, ops.transpose(support)), axis=-1)
    return ops.take(support, index, axis=0)


def nnclr_loss(nn1, p2, temperature):
    """NNCLR's loss (Dwibedi et al. 2021, "With a Little Help from My Friends", eq. 2): InfoNCE of each
    nearest neighbour nn1[i] (of view 1's projection, from the support set) picking the prediction
    p2[i] of view 2 among the batch's predictions, at `temperature`.

    The neighbours come from a queue of past projections and get no gradient. The symmetric loss is the
    caller's: `(nnclr_loss(nn1, p2, t) + nnclr_loss(nn2, p1, t)) / 2`.
    """
    return _info_nce(_float32(ops.stop_gradient(nn1)), _float32(p2), temperature)
