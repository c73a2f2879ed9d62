from __future__ import annotations

import keras

OPTIMIZERS = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSprop", "lamb": "Lamb"}


def make_optimizer(name: str, learning_rate: float, momentum: float = 0.9) -> keras.optimizers.Optimizer:
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer '{name}' unknown: use one of {', '.join(OPTIMIZERS)}")
    config = {"learning_rate": learning_rate}
    if name == "sgd":
        config["momentum"] = momentum
    return keras.optimizers.get({"class_name": OPTIMIZERS[name], "config": config})
