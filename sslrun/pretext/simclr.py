"""SimCLR (Chen et al. 2020; seed 002): contrast two views of each image against the rest of the batch."""

from __future__ import annotations

from sslrun.config import SimCLRConfig
from sslrun.pretext.losses import nt_xent_loss
from sslrun.pretext.registry import PRETEXTS
from sslrun.pretext.twoview import TwoViewTask


@PRETEXTS.register("simclr")
class SimCLRTask(TwoViewTask):
    schema = SimCLRConfig

    def __init__(self, *args, temperature: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.temperature = temperature

    def pair_loss(self, x1, x2, training: bool):
        return nt_xent_loss(*self.embed_pair(x1, x2, training), self.temperature)
