"""A NaN loss stops pretext training at that step: exit 3, epoch and step named, the last good checkpoint kept."""

import numpy as np
from conftest import FAST_PRETEXT, run_cli


def test_nan_loss_exits_3_naming_epoch_and_step_and_keeps_the_last_good_checkpoint(tmp_path):
    # 4 steps per epoch: global step 7 is epoch 2, step 3
    res = run_cli(FAST_PRETEXT + ["trainer.epochs=3", "hydra.run.dir=run"], tmp_path,
                  env={"SSLRUN_FAULT": "nan-at-step:7"})
    assert res.returncode == 3, res.stderr[-2000:]
    pre = tmp_path / "run/pretext"
    kept = pre / "checkpoints/epoch-0001.npz"
    [line] = [line for line in res.stderr.splitlines() if line.startswith("sslrun: error:")]
    assert "pretext training diverged: the loss is nan at epoch 2, step 3 of 4" in line
    assert f"the last good checkpoint {kept} is kept" in line and "Lower trainer.learning_rate" in line
    assert "Traceback" not in res.stderr
    assert [p.name for p in (pre / "checkpoints").iterdir()] == ["epoch-0001.npz"]
    with np.load(kept) as ckpt:
        assert all(np.isfinite(ckpt[k]).all() for k in ckpt.files if ckpt[k].dtype.kind == "f")
    assert len((pre / "history.csv").read_text().splitlines()) == 2  # header + epoch 1: the NaN epoch never ended
    for name in ("encoder.weights.h5", "COMPLETE"):
        assert not (pre / name).exists(), name
    assert not (tmp_path / "run/metrics.json").exists()
