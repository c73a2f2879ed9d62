"""Optimizers and learning-rate schedules of the pretext stage."""

import keras
import numpy as np
import pytest
from test_config import _compose

from sslrun.errors import SslrunError
from sslrun.pipeline import check_config
from sslrun.training.optim import OPTIMIZERS, learning_rate, make_optimizer


def test_constant_schedule_is_the_number():
    assert learning_rate(3e-3, "constant", total_steps=100, warmup_steps=10) == 3e-3


def test_cosine_warms_up_linearly_then_decays_to_zero():
    lr = learning_rate(1e-2, "cosine", total_steps=110, warmup_steps=10)
    at = {s: float(lr(s)) for s in (0, 5, 10, 60, 110)}
    assert at[0] == pytest.approx(0.0, abs=1e-9) and at[5] == pytest.approx(5e-3)
    assert at[10] == pytest.approx(1e-2) and at[60] == pytest.approx(5e-3) and at[110] == pytest.approx(0.0, abs=1e-9)
    values = [float(lr(s)) for s in range(10, 111)]
    assert (np.diff(values) <= 0).all()
    no_warmup = learning_rate(1e-2, "cosine", total_steps=100)
    assert float(no_warmup(0)) == pytest.approx(1e-2) and float(no_warmup(50)) == pytest.approx(5e-3)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_optimizer_follows_the_schedule_by_its_iteration_count(name):
    schedule = learning_rate(1e-2, "cosine", total_steps=110, warmup_steps=10)
    opt = make_optimizer(name, schedule)
    v = keras.Variable(np.ones(3, "float32"))
    opt.build([v])
    opt.iterations.assign(60)  # as a resumed run restores it from its checkpoint
    assert float(keras.ops.convert_to_numpy(opt.learning_rate)) == pytest.approx(5e-3)


def test_unknown_schedule_and_optimizer_are_named():
    with pytest.raises(ValueError, match="'step' unknown: use constant or cosine"):
        learning_rate(1e-3, "step", 10)
    with pytest.raises(ValueError, match="'adagrad' unknown"):
        make_optimizer("adagrad", 1e-3)


@pytest.mark.parametrize("warmup", [-1, 2, 5])
def test_warmup_must_be_shorter_than_the_run(warmup):
    cfg = _compose(
        ["experiment=smoke", "trainer.epochs=2", "trainer.lr_schedule=cosine", f"trainer.warmup_epochs={warmup}"]
    )
    with pytest.raises(
        SslrunError, match=f"trainer.warmup_epochs={warmup}: must be at least 0 and less than trainer.epochs=2"
    ):
        check_config(cfg)


@pytest.mark.parametrize("schedule,end", [("constant", 5e-3), ("cosine", 0.0)])
def test_downstream_phase_follows_its_schedule_to_the_last_step(schedule, end):
    from test_evals import _downstream

    from sslrun.data.splits import make_splits
    from sslrun.data.synthetic import make_synthetic
    from sslrun.downstream.finetune import _fit_phase, classifier

    splits = make_splits(make_synthetic(60, 30, 0.05), 4, 2, seed=0, num_classes=10)  # 40 labels: 3 steps of 16
    d = _downstream(batch_size=16, lr_schedule=schedule)
    model = classifier(keras.Sequential([keras.Input(splits.image_shape), keras.layers.Flatten()]), 10, 0.0)
    rows = _fit_phase(model, splits, "test", 2, 5e-3, d, seed=0)
    assert len(rows) == 2 and int(model.optimizer.iterations) == 6
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(end, abs=1e-9)
