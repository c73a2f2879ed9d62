"""The fair default protocol: both arms give every layer the same number of updates at the same rates.

Asserted from the histories the runs write (each epoch's optimizer updates, read from the optimizer, and how
many encoder and head parameters trained in that phase), not from the config."""

import numpy as np
import pytest

from sslrun.data.splits import make_splits
from sslrun.data.synthetic import make_synthetic
from sslrun.downstream.evals import EVALS, EvalInputs
from sslrun.encoders import build_encoder
from tests.test_evals import _downstream


def _updates(history: list[dict]) -> dict[str, int]:
    """Updates that reached the encoder and the head, and the encoder parameters that trained."""
    enc = [r for r in history if r["encoder_trainable_params"] > 0]
    return {
        "encoder": sum(r["updates"] for r in enc),
        "head": sum(r["updates"] for r in history if r["head_trainable_params"] > 0),
        "encoder_params": max((r["encoder_trainable_params"] for r in enc), default=0),
        "rates": sorted({(r["phase"], r["peak_lr"]) for r in history}),
    }


def _arms(**overrides) -> tuple[dict, dict]:
    raw = make_synthetic(300, 100, 0.1)
    splits = make_splits(raw, 5, 2, seed=0, num_classes=10)  # 50 labels, batch 16: 4 updates per epoch
    d = _downstream(batch_size=16, frozen_epochs=2, unfrozen_epochs=3, cache="false", **overrides)
    encoder = lambda: build_encoder("small_cnn", (28, 28, 1), 0.25)  # noqa: E731
    out = {}
    for name in ("finetune", "scratch"):
        out[name] = EVALS.get(name)(EvalInputs(encoder, encoder, splits, d, seed=0))["history"]
    return out["finetune"], out["scratch"]


def test_the_default_gives_both_arms_the_same_updates_per_layer():
    ft, sc = _arms()
    a, b = _updates(ft), _updates(sc)
    assert a == b
    assert a["encoder"] == 3 * 4 and a["head"] == 5 * 4  # only phase 2 reaches the encoder; the head trains in both
    assert a["encoder_params"] > 0


def test_the_documents_baseline_gives_scratch_more_encoder_updates():
    """scratch_phases=all_layers (the seed presets): the check above would catch it."""
    ft, sc = _arms(scratch_phases="all_layers")
    assert _updates(sc)["encoder"] == 5 * 4 > _updates(ft)["encoder"] == 3 * 4


@pytest.mark.parametrize("budget", [3, 7])
def test_updates_per_epoch_are_the_batches_of_the_labeled_set(budget):
    raw = make_synthetic(300, 100, 0.1)
    splits = make_splits(raw, budget, 2, seed=0, num_classes=10)
    d = _downstream(batch_size=16, frozen_epochs=0, unfrozen_epochs=2, cache="false")
    encoder = lambda: build_encoder("small_cnn", (28, 28, 1), 0.25)  # noqa: E731
    history = EVALS.get("scratch")(EvalInputs(encoder, encoder, splits, d, seed=0))["history"]
    assert [r["updates"] for r in history] == [int(np.ceil(10 * budget / 16))] * 2
