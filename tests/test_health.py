"""Label-free health signals: against loop references and known values, and a collapse warned about or stopped."""

import json

import numpy as np
import pytest
from conftest import FAST_PRETEXT, run_cli

from sslrun.training.health import alignment, collapsed, embedding_std, rankme, uniformity

RNG = np.random.default_rng(3)
Z = RNG.normal(size=(40, 6)).astype(np.float32)


def _unit(row):
    return row / np.linalg.norm(row)


def test_rankme_is_the_entropy_of_the_normalised_singular_values():
    s = np.linalg.svd(Z.astype(np.float64), compute_uv=False)
    p = [v / sum(s) + 1e-7 for v in s]
    assert rankme(Z) == pytest.approx(np.exp(-sum(q * np.log(q) for q in p)))
    assert rankme(np.eye(8)[:, :5] * 3.0) == pytest.approx(5.0, rel=1e-5)  # 5 equal singular values
    assert rankme(np.outer(RNG.normal(size=30), RNG.normal(size=6))) == pytest.approx(1.0, abs=1e-4)  # rank 1
    assert rankme(np.zeros((30, 6))) == pytest.approx(1.0, abs=1e-4)  # a point: no direction at all


def test_std_alignment_and_uniformity_against_loops():
    units = np.array([_unit(r) for r in Z.astype(np.float64)])
    std = np.mean([np.sqrt(np.mean((units[:, j] - units[:, j].mean()) ** 2)) for j in range(6)])
    assert embedding_std(Z) == pytest.approx(std)
    z2 = Z + 0.3 * RNG.normal(size=Z.shape)
    pairs = [np.sum((_unit(a) - _unit(b)) ** 2) for a, b in zip(Z.astype(np.float64), z2, strict=True)]
    assert alignment(Z, z2) == pytest.approx(np.mean(pairs))
    dists = [np.sum((units[i] - units[j]) ** 2) for i in range(40) for j in range(i + 1, 40)]
    assert uniformity(Z) == pytest.approx(np.log(np.mean(np.exp(-2 * np.array(dists)))))
    # two antipodal points: one pair, squared distance 4
    assert uniformity(np.array([[1.0, 0.0], [-1.0, 0.0]])) == pytest.approx(-8.0)
    assert embedding_std(np.tile(Z[:1], (10, 1))) == pytest.approx(0, abs=1e-12) and alignment(
        Z, 2 * Z
    ) == pytest.approx(0, abs=1e-12)


def test_collapse_thresholds():
    assert collapsed(1.05, 0.1, 64) and collapsed(5.0, 1e-6, 64)
    assert not collapsed(1.6, 0.018 / 8, 64)  # a freshly initialised encoder after one smoke epoch


def _run(tmp_path, extra, fault="collapse-at-epoch:2"):
    return run_cli(
        FAST_PRETEXT + ["trainer.epochs=3", "trainer.deterministic=true", "hydra.run.dir=run", *extra],
        tmp_path,
        env={"SSLRUN_FAULT": fault},
    )


def test_a_collapse_is_a_warning_naming_the_epoch(tmp_path):
    res = _run(tmp_path, [])
    assert res.returncode == 0, res.stderr[-2000:]
    assert "pretext epoch 2: the embedding collapsed (RankMe 1.00 of 32 dimensions" in res.stdout
    assert "pretext epoch 1: the embedding collapsed" not in res.stdout
    done = json.loads((tmp_path / "run/pretext/COMPLETE").read_text())
    assert done["collapsed_epochs"][0] == 2 and done["embedding_std"] < 1e-6


def test_stop_on_collapse_exits_3_before_the_epochs_checkpoint(tmp_path):
    res = _run(tmp_path, ["trainer.stop_on_collapse=true"])
    assert res.returncode == 3, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    [line] = [line for line in res.stderr.splitlines() if line.startswith("sslrun: error:")]
    pre = tmp_path / "run/pretext"
    assert line.startswith("sslrun: error: pretext training collapsed at epoch 2: RankMe 1.00")
    assert f"the checkpoint {pre / 'checkpoints/epoch-0001.npz'} is kept; no encoder was exported" in line
    assert [p.name for p in (pre / "checkpoints").iterdir()] == ["epoch-0001.npz"]
    assert len((pre / "history.csv").read_text().splitlines()) == 3  # header, epoch 1, the collapsed epoch 2
    assert not (pre / "encoder.weights.h5").exists() and not (pre / "COMPLETE").exists()
