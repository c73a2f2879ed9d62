"""SimSiam (Chen and He 2021): predict one view's projection from the other's, the target behind a stop-gradient.

No negatives, no momentum network: the stop-gradient in `simsiam_loss` alone keeps the encoder from
collapsing (the paper's section 4.1; the health signals in pretext/history.csv show it if it does).
"""

from __future__ import annotations

from sslrun.config import SimSiamConfig
from sslrun.pretext.losses import simsiam_loss
from sslrun.pretext.registry import PRETEXTS
from sslrun.pretext.twoview import TwoViewTask


@PRETEXTS.register("simsiam")
class SimSiamTask(TwoViewTask):
    schema = SimSiamConfig
    projector_layers = 3  # the paper's ImageNet projector (CIFAR: 2), BN on every layer's output
    projector_out_bn = True

    def __init__(self, encoder, augmenter, projector, num_classes, *, predictor, **kwargs):
        super().__init__(encoder, augmenter, projector, num_classes, **kwargs)
        self.predictor = predictor

    def build(self, input_shape):
        super().build(input_shape)
        self.predictor.build(self.projector.compute_output_shape(self.encoder.compute_output_shape(input_shape)))

    def pair_loss(self, x1, x2, training: bool):
        z1, z2 = self(x1, training=training), self(x2, training=training)
        p1, p2 = self.predictor(z1, training=training), self.predictor(z2, training=training)
        return (simsiam_loss(p1, z2) + simsiam_loss(p2, z1)) / 2.0
