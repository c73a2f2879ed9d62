"""What the pretext stage asks of a task, declared once with its defaults.

A task is a `keras.Model` that owns its heads and augmentations, wraps an encoder and overrides
`train_step`. `run_pretext` builds it with `create`, feeds it image batches (each zipped with a
labeled batch if `uses_labels`), measures its health each epoch (`health_views`),
calls `plot_examples` and `finalize_encoder` after training, then
saves the encoder. `check_config` reads `needs_colour` before any work. Override only what differs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import keras
import numpy as np

from sslrun.config import PretextConfig


class PretextTask(keras.Model):
    """The base of every pretext task; `PRETEXTS.register(name)` on a subclass makes it `pretext=name`."""

    schema: ClassVar[type] = PretextConfig  # the dataclass its YAML option extends (/schema/pretext/<name>)
    task_name: ClassVar[str] = ""  # its registry name, set by PRETEXTS.register
    needs_colour: ClassVar[bool] = False  # check_config refuses 1-channel data sets before any work
    uses_labels: bool = False  # fed (unlabeled batch, labeled batch) pairs: for an online probe

    def __init__(self, encoder: keras.Model, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder

    @classmethod
    def create(cls, encoder: keras.Model, *, seed: int = 0, num_classes: int = 0, **params: Any) -> PretextTask:
        """The task from its config parameters (the schema's fields but name, from, cache), ready to compile.

        seed seeds its own random ops; num_classes is the labeled data's, for tasks that use labels."""
        return cls(encoder, **params, name=cls.task_name or None)

    def ssl_variables(self) -> list:
        """What the pretext loss's optimizer updates (the checkpoint builds its slots over these): every
        trainable variable; a two-view task leaves out its probe and momentum networks."""
        return self.trainable_variables

    def plot_examples(self, path: Path, images: np.ndarray) -> bool:
        """Draw what the task learned on a few images (float in [0, 1]) to path; False: nothing drawn."""
        return False

    def health_views(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """A fixed pair of views of images for the alignment and uniformity health signals; None: not a
        two-view method (sslrun/training/health.py)."""
        return None

    def finalize_encoder(self) -> None:
        """Last changes to the encoder before its weights are saved (colorization folds its first conv)."""
