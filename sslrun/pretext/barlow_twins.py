"""Barlow Twins (Zbontar et al. 2021): make the cross-correlation of the two views' embeddings the identity."""

from __future__ import annotations

from sslrun.config import BarlowTwinsConfig
from sslrun.pretext.losses import barlow_twins_loss
from sslrun.pretext.registry import PRETEXTS
from sslrun.pretext.twoview import TwoViewTask


@PRETEXTS.register("barlow_twins")
class BarlowTwinsTask(TwoViewTask):
    schema = BarlowTwinsConfig
    projector_layers = 3

    def __init__(self, *args, lambda_offdiag: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.lambda_offdiag = lambda_offdiag

    def pair_loss(self, x1, x2, training: bool):
        return barlow_twins_loss(*self.embed_pair(x1, x2, training), self.lambda_offdiag)
