"""What a train step needs to be right under a multi-replica tf.distribute strategy.

Keras 3's TensorFlow optimizer SUMS gradients over replicas (`optimizer.apply` all-reduces them), and
a custom `train_step` gets no loss scaling from `compile`. So:
- a per-example loss (mean over the replica's share of the batch) is divided by the number of
  replicas: the summed gradients are then those of the mean over the global batch;
- a loss over the whole batch (NT-Xent, cross-correlation, covariance) is computed on embeddings
  gathered from every replica (`all_gather`), so each replica holds the global-batch loss. The
  gradient of `all_gather` is the all-reduced SUM of the replicas' upstream gradients, sliced to the
  local rows: each replica's local gradient is R times its share, so dividing by R here too makes
  the summed gradient that of the single-device loss on the global batch.
One rule for both: `replica_share(loss)` before `optimizer.scale_loss`. With one replica (the
default strategy) both helpers return their input unchanged.
"""

from __future__ import annotations

import tensorflow as tf


def num_replicas() -> int:
    context = tf.distribute.get_replica_context()
    return context.num_replicas_in_sync if context is not None else 1


def gather_batch(*tensors: tf.Tensor) -> tuple[tf.Tensor, ...]:
    """Each tensor concatenated over all replicas along the batch axis (replica 0's rows first).

    Gathered in float32: the CPU collectives take no bfloat16, and the losses compute in float32 anyway."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return tensors
    wide = [tf.cast(t, tf.float32) if t.dtype in (tf.bfloat16, tf.float16) else t for t in tensors]
    return tuple(context.all_gather(wide, axis=0))


def replica_share(loss: tf.Tensor) -> tf.Tensor:
    """The loss this replica differentiates, so gradients summed over replicas are the global ones."""
    replicas = num_replicas()
    return loss if replicas == 1 else loss / tf.cast(replicas, loss.dtype)
