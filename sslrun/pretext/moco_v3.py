"""MoCo v3 (Chen, Xie and He 2021): contrast each view's prediction with a momentum network's keys of the other.

The online network (encoder, projector, predictor) is BYOL's, and so is the momentum (EMA) copy of the
encoder and projector, updated after each step and checkpointed with the task's variables; what differs
is the loss: a symmetric InfoNCE over the batch at a temperature (`moco_v3_loss`), not a regression.
"""

from __future__ import annotations

from sslrun.config import MoCoV3Config
from sslrun.pretext.byol import BYOLTask
from sslrun.pretext.losses import moco_v3_loss
from sslrun.pretext.registry import PRETEXTS
from sslrun.pretext.replicas import gather_batch


@PRETEXTS.register("moco_v3")
class MoCoV3Task(BYOLTask):
    schema = MoCoV3Config
    projector_layers = 3  # the paper's 3-layer projector, BN on every layer's output
    projector_out_bn = True

    def __init__(self, *args, temperature: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.temperature = temperature

    def pair_loss(self, x1, x2, training: bool):
        q1 = self.predictor(self(x1, training=training), training=training)
        q2 = self.predictor(self(x2, training=training), training=training)
        # every replica's queries and keys: the keys of the whole batch are each query's candidates
        q1, q2, k1, k2 = gather_batch(q1, q2, self._target(x1), self._target(x2))  # keys: no gradient
        return moco_v3_loss(q1, k2, self.temperature) + moco_v3_loss(q2, k1, self.temperature)
