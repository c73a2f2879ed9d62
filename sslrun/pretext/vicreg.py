"""VICReg (Bardes et al. 2022): invariance between views, variance kept up, covariance pushed down."""

from __future__ import annotations

from sslrun.config import VICRegConfig
from sslrun.pretext.losses import vicreg_loss
from sslrun.pretext.registry import PRETEXTS
from sslrun.pretext.twoview import TwoViewTask


@PRETEXTS.register("vicreg")
class VICRegTask(TwoViewTask):
    schema = VICRegConfig
    projector_layers = 3

    def __init__(self, *args, sim_weight: float, var_weight: float, cov_weight: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.coefficients = (sim_weight, var_weight, cov_weight)

    def pair_loss(self, x1, x2, training: bool):
        sim, var, cov = self.coefficients
        return vicreg_loss(*self.embed_pair(x1, x2, training), sim, var, cov)
