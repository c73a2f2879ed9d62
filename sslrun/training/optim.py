from __future__ import annotations

import keras

from sslrun.errors import ConfigError

OPTIMIZERS = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSprop", "lamb": "Lamb"}


def learning_rate(peak: float, schedule: str, total_steps: int, warmup_steps: int = 0):
    """A float (constant) or a Keras schedule of optimizer.iterations, so a resumed run continues it."""
    if schedule == "constant":
        return peak
    if schedule != "cosine":
        raise ConfigError(f"learning-rate schedule '{schedule}' unknown: use constant or cosine")
    warmup = min(warmup_steps, total_steps - 1)
    # linear 0 -> peak over the warm-up, then half a cosine from peak to 0 over the remaining steps
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else peak,
        decay_steps=max(total_steps - warmup, 1),
        alpha=0.0,
        warmup_target=peak if warmup else None,
        warmup_steps=warmup,
    )


def make_optimizer(name: str, learning_rate, momentum: float = 0.9) -> keras.optimizers.Optimizer:
    """name: an OPTIMIZERS key (or the schema's Optimizer enum); learning_rate: a float or a
    keras.optimizers.schedules.LearningRateSchedule."""
    name = getattr(name, "value", name)
    if name not in OPTIMIZERS:
        raise ConfigError(f"optimizer '{name}' unknown: use one of {', '.join(OPTIMIZERS)}")
    extra = {"momentum": momentum} if name == "sgd" else {}
    return getattr(keras.optimizers, OPTIMIZERS[name])(learning_rate=learning_rate, **extra)
