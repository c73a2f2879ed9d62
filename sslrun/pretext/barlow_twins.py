"""Barlow Twins (Zbontar et al. 2021): make the cross-correlation of the two views' embeddings the identity."""

from __future__ import annotations

from typing import Any

import keras

from sslrun.pretext.losses import barlow_twins_loss
from sslrun.pretext.registry import PRETEXTS
from sslrun.pretext.twoview import TwoViewTask, make_task, mlp


class BarlowTwinsTask(TwoViewTask):
    def __init__(self, *args, lambda_offdiag: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.lambda_offdiag = lambda_offdiag

    def pair_loss(self, x1, x2, training: bool):
        return barlow_twins_loss(*self.embed_pair(x1, x2, training), self.lambda_offdiag)


@PRETEXTS.register("barlow_twins")
def build_barlow_twins(encoder: keras.Model, augment: dict[str, Any], projection_hidden: int, projection_dim: int,
                       lambda_offdiag: float, num_classes: int = 0, seed: int = 0) -> BarlowTwinsTask:
    return make_task(
        BarlowTwinsTask, encoder, augment, seed, mlp(projection_hidden, projection_dim, "projector", layers=3), num_classes,
        lambda_offdiag=lambda_offdiag, name="barlow_twins",
    )
