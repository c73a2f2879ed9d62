"""The exported model (<run dir>/model/) and `sslrun-predict`, end to end through the console scripts.

One tiny run on an image folder written here (lossless PNGs of the training size, so the test split is
exactly these pixels); its exported model is loaded without sslrun and `sslrun-predict` reads the folders.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import cli_env, run_cli

from sslrun.data.synthetic import CLASS_NAMES, make_synthetic
from sslrun.downstream.evals import EVALS

CLASSES = CLASS_NAMES[:4]  # four classes: enough to mean something, few to stay fast
SIZE = 28


def _write(path: Path, image: np.ndarray, fmt: str = "png") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    encode = tf.io.encode_png if fmt == "png" else tf.io.encode_jpeg
    path.write_bytes(encode(tf.constant(image)).numpy())


def folder_run_args(data: Path) -> list[str]:
    """A smoke run on the PNG folder _image_folder writes: one pretext epoch of 4 steps, no cache, no bars."""
    return [
        "experiment=smoke",
        "dataset=image_folder",
        f"dataset.path={data}",
        f"dataset.image_size={SIZE}",
        "dataset.channels=1",
        "trainer.progress=false",
        "tensorboard=false",
        "pretext.cache=false",
        "trainer.batch_size=16",
        "trainer.steps_per_epoch=4",
        "trainer.epochs=1",
    ]


def _image_folder(root: Path) -> tuple[np.ndarray, np.ndarray]:
    """train/<class>/ and test/<class>/ PNGs of synthetic shapes; returns the test images and labels."""
    raw = make_synthetic(400, 200, noise=0.1, seed=5)
    keep_train, keep_test = raw.y_train < len(CLASSES), raw.y_test < len(CLASSES)
    for split, x, y in (
        ("train", raw.x_train[keep_train], raw.y_train[keep_train]),
        ("test", raw.x_test[keep_test], raw.y_test[keep_test]),
    ):
        for i, (image, label) in enumerate(zip(x, y, strict=True)):
            _write(root / split / CLASSES[label] / f"{i:04d}.png", image)
    by_name = np.array([sorted(CLASSES).index(c) for c in CLASSES])  # the run's labels: sorted folder names
    return raw.x_test[keep_test], by_name[raw.y_test[keep_test]]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("export")
    x_test, y_test = _image_folder(tmp / "data")
    np.savez(tmp / "test.npz", x=x_test, y=y_test)
    run_dir = tmp / "run"
    args = [
        *folder_run_args(tmp / "data"),
        "downstream.frozen_epochs=1",
        "downstream.unfrozen_epochs=2",
        "downstream.labels_per_class=5",
        "downstream.val_per_class=3",
        "downstream.evals=[finetune,linear]",
        "downstream.tta=flip",
        "downstream.feature_flip=true",
        "downstream.saved_model=true",
        f"hydra.run.dir={run_dir}",
    ]
    proc = run_cli(args, tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads((run_dir / "model" / "info.json").read_text())
    return {"tmp": tmp, "run_dir": run_dir, "info": info, "log": proc.stdout + proc.stderr}


def _results_row(run_dir: Path, name: str) -> dict:
    with open(run_dir / "results.csv") as fh:
        return next(r for r in csv.DictReader(fh) if r["eval"] == name and r["repeat"] == "0")


LOAD_WITHOUT_SSLRUN = """
import json, sys
import keras, numpy as np
model = keras.models.load_model(sys.argv[1])
data = np.load(sys.argv[2])
assert data["x"].dtype == np.uint8
logits = model.predict(data["x"], batch_size=256, verbose=0)
print(json.dumps({"accuracy": float(np.mean(np.argmax(logits, axis=1) == data["y"])),
                  "sslrun_imported": any(m.split(".")[0] == "sslrun" for m in sys.modules),
                  "input": [model.input.dtype, list(model.input.shape)]}))
"""


def test_exported_model_reproduces_the_test_accuracy_without_sslrun(run):
    run_dir, info = run["run_dir"], run["info"]
    assert info["eval"] in ("finetune", "linear") and "validation accuracy" in info["reason"]
    assert info["eval"] in run["log"] and "exported" in run["log"]
    assert info["class_names"] == sorted(CLASSES) and info["input_size"] == [SIZE, SIZE] and info["channels"] == 1
    assert (run_dir / "model" / "saved_model" / "saved_model.pb").is_file() and info["saved_model"] == "saved_model"
    assert [p.name for p in run_dir.iterdir() if p.name.startswith(".model")] == []  # the temp folder renamed
    assert json.loads((run_dir / "metrics.json").read_text())["model"]["eval"] == info["eval"]
    # cwd and PYTHONPATH away from the checkout: an import of sslrun would have to come from site-packages
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            LOAD_WITHOUT_SSLRUN,
            str(run_dir / "model" / "model.keras"),
            str(run["tmp"] / "test.npz"),
        ],
        cwd=run["tmp"],
        env=cli_env(run["tmp"]),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["sslrun_imported"] is False
    assert out["input"] == ["uint8", [None, SIZE, SIZE, 1]]
    row = _results_row(run_dir, info["eval"])
    assert repr(out["accuracy"]) == row["test_accuracy"] == repr(info["test_accuracy"])  # to the last digit


def test_predict_on_class_folders_prints_the_runs_accuracy(run):
    out = run["tmp"] / "pred.csv"
    proc = run_cli(
        [str(run["run_dir"]), str(run["tmp"] / "data" / "test"), "--out", str(out), "--top-k", "2"],
        run["tmp"],
        exe="sslrun-predict",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 80 and list(rows[0]) == ["path", "class", "confidence", "top_k"]
    top = rows[0]["top_k"].split(";")
    assert len(top) == 2 and top[0] == f"{rows[0]['class']}:{rows[0]['confidence']}"
    assert f"accuracy {run['info']['test_accuracy']:.4f}" in proc.stdout
    assert (run["tmp"] / "pred_confusion.png").stat().st_size > 1000


def _awkward_folder(root: Path) -> None:
    """Three images a camera or an editor may write, and two files no decoder reads."""
    rng = np.random.default_rng(0)
    _write(root / "rgba.png", rng.integers(0, 256, (40, 30, 4), dtype=np.uint8))
    _write(root / "sixteen_bit.png", rng.integers(0, 65536, (20, 20, 1)).astype(np.uint16))
    _write(root / "photo.jpg", rng.integers(0, 256, (3000, 4000, 3), dtype=np.uint8), "jpeg")
    good = tf.io.encode_jpeg(tf.constant(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))).numpy()
    (root / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (root / "notes.png").write_text("not an image\n")


@pytest.mark.parametrize("strict", [False, True])
def test_predict_skips_and_names_unreadable_files(run, strict):
    folder = run["tmp"] / "awkward"
    if not folder.is_dir():
        _awkward_folder(folder)
    out = run["tmp"] / f"awkward-{strict}.csv"
    proc = run_cli(
        [str(run["run_dir"]), str(folder), "--out", str(out), *(["--strict"] if strict else [])],
        run["tmp"],
        exe="sslrun-predict",
    )
    assert proc.returncode == (2 if strict else 0), proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    for bad in ("truncated.jpg", "notes.png"):
        assert f"skipped {folder / bad}: " in proc.stderr
    with open(out) as fh:
        assert sorted(Path(r["path"]).name for r in csv.DictReader(fh)) == ["photo.jpg", "rgba.png", "sixteen_bit.png"]
    assert "2 unreadable skipped" in proc.stdout
    assert ("sslrun-predict: error: 2 unreadable file(s)" in proc.stderr) is strict


def test_predict_without_a_model_is_one_error_line(tmp_path):
    (tmp_path / "run").mkdir()
    proc = run_cli([str(tmp_path / "run"), str(tmp_path)], tmp_path, exe="sslrun-predict")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sslrun-predict: error: ")
    assert "holds no exported model" in lines[0] and "`sslrun`" in lines[0]


NO_CLASSIFIER = ("knn", "propagate")  # they vote or spread labels: nothing to export


@pytest.mark.parametrize("name", EVALS.names())
def test_every_evals_classifier_exports_with_its_accuracy(name):
    """In process, every registered evaluation: its classifier on uint8 images (with the flips it was scored
    with) gives the test accuracy it reported, or it is one that trains none."""
    from test_evals import _downstream

    from sslrun.data.splits import make_splits
    from sslrun.downstream.evals import EvalInputs
    from sslrun.downstream.export import uint8_model
    from sslrun.encoders import build_encoder

    # a label augmenter of sslrun layers in training: the exported model must leave it out
    d = _downstream(
        frozen_epochs=1,
        unfrozen_epochs=1,
        linear_epochs=5,
        tta="flip",
        feature_flip="true",
        **{"augment.preset": "mnist"},
    )
    splits = make_splits(make_synthetic(100, 60, 0.1), 3, 1, seed=0, num_classes=10)
    encoder = lambda: build_encoder("small_cnn", (28, 28, 1), 0.25)  # noqa: E731
    out = EVALS.get(name)(EvalInputs(encoder, encoder, splits, d, seed=0))
    assert ("classifier" in out) is (name not in NO_CLASSIFIER)
    if name in NO_CLASSIFIER:
        return
    model = uint8_model(out["classifier"], splits.image_shape)
    assert {type(layer).__module__.split(".")[0] for layer in model._flatten_layers()} == {"keras"}
    logits = model.predict(splits.test_x, batch_size=256, verbose=0)
    assert float(np.mean(np.argmax(logits, axis=1) == splits.test_y)) == out["test_accuracy"]
