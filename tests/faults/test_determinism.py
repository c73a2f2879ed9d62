"""trainer.deterministic=true: one seed gives one encoder and one set of accuracies; another seed, another encoder."""

import hashlib
import json

from conftest import h5_arrays, start_cli

RUN = [
    "experiment=smoke",
    "trainer.progress=false",
    "tensorboard=false",
    "pretext.cache=false",
    "trainer.deterministic=true",
    "trainer.epochs=2",
    "trainer.batch_size=16",
    "trainer.steps_per_epoch=4",
    "dataset.train_size=300",
    "dataset.test_size=100",
    "downstream.labels_per_class=10",
    "downstream.frozen_epochs=1",
    "downstream.unfrozen_epochs=1",
    "downstream.evals=[finetune]",
]


def _weights_hash(path) -> str:
    digest = hashlib.sha256()
    for array in h5_arrays(path):
        digest.update(array.tobytes())
    return digest.hexdigest()


def _accuracies(metrics: dict) -> dict:
    finetune = metrics["downstream"]["finetune"]
    return {"test": metrics["ssl_test_accuracy"], "mean": finetune["mean"], "loss": finetune["test_loss"]}


def test_same_seed_same_weights_and_accuracies_another_seed_differs(tmp_path):
    runs = {"a": ["seed=0"], "b": ["seed=0"], "c": ["seed=1", "stage=pretext"]}  # at once, one run dir each
    procs = {name: start_cli(RUN + extra + [f"hydra.run.dir={name}"], tmp_path) for name, extra in runs.items()}
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, (name, err[-2000:])
    hashes = {name: _weights_hash(tmp_path / name / "pretext/encoder.weights.h5") for name in runs}
    metrics = {name: json.loads((tmp_path / name / "metrics.json").read_text()) for name in runs}
    assert hashes["a"] == hashes["b"]
    assert _accuracies(metrics["a"]) == _accuracies(metrics["b"])
    assert metrics["a"]["pretext"]["loss"] == metrics["b"]["pretext"]["loss"]
    assert hashes["c"] != hashes["a"]
    assert metrics["c"]["pretext"]["loss"] != metrics["a"]["pretext"]["loss"]
