"""SimCLR (Chen et al. 2020; seed 002): contrast two views of each image against the rest of the batch."""

from __future__ import annotations

from typing import Any

import keras

from sslrun.pretext.losses import nt_xent_loss
from sslrun.pretext.registry import PRETEXTS
from sslrun.pretext.twoview import TwoViewTask, make_task, mlp


class SimCLRTask(TwoViewTask):
    def __init__(self, *args, temperature: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.temperature = temperature

    def pair_loss(self, x1, x2, training: bool):
        return nt_xent_loss(*self.embed_pair(x1, x2, training), self.temperature)


@PRETEXTS.register("simclr")
def build_simclr(encoder: keras.Model, augment: dict[str, Any], projection_hidden: int, projection_dim: int,
                 temperature: float, num_classes: int = 0, seed: int = 0) -> SimCLRTask:
    return make_task(
        SimCLRTask, encoder, augment, seed, mlp(projection_hidden, projection_dim, "projector"), num_classes,
        temperature=temperature, name="simclr",
    )
