"""VICReg (Bardes et al. 2022): invariance between views, variance kept up, covariance pushed down."""

from __future__ import annotations

from typing import Any

import keras

from sslrun.pretext.losses import vicreg_loss
from sslrun.pretext.registry import PRETEXTS
from sslrun.pretext.twoview import TwoViewTask, make_task, mlp


class VICRegTask(TwoViewTask):
    def __init__(self, *args, sim_weight: float, var_weight: float, cov_weight: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.coefficients = (sim_weight, var_weight, cov_weight)

    def pair_loss(self, x1, x2, training: bool):
        sim, var, cov = self.coefficients
        return vicreg_loss(*self.embed_pair(x1, x2, training), sim, var, cov)


@PRETEXTS.register("vicreg")
def build_vicreg(encoder: keras.Model, augment: dict[str, Any], projection_hidden: int, projection_dim: int,
                 sim_weight: float, var_weight: float, cov_weight: float, num_classes: int = 0,
                 seed: int = 0) -> VICRegTask:
    return make_task(
        VICRegTask, encoder, augment, seed, mlp(projection_hidden, projection_dim, "projector", layers=3), num_classes,
        sim_weight=sim_weight, var_weight=var_weight, cov_weight=cov_weight, name="vicreg",
    )
