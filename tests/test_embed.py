"""`sslrun-embed` and downstream.write_pseudo_labels, end to end through the console scripts.

One tiny run (knn and finetune) on an image folder of lossless PNGs of the training size, so the run's splits
are exactly these pixels; then one `sslrun-embed` over its train and test folders and a file that is no image.
The kNN accuracy recomputed from the command's features equals the one the run reported.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from test_export_predict import CLASSES, SIZE, _image_folder, folder_run_args

PNG = b"\x89PNG\r\n\x1a\n"
NAMES = sorted(CLASSES)  # the run's classes: the sorted folder names


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("embed")
    _image_folder(tmp / "data")
    (tmp / "extra").mkdir()
    (tmp / "extra" / "notes.png").write_text("not an image\n")
    run_dir = tmp / "run"
    args = [
        *folder_run_args(tmp / "data"),
        "downstream.unfrozen_epochs=2",
        "downstream.labels_per_class=5",
        "downstream.val_per_class=3",
        "downstream.evals=[knn,finetune]",
        "downstream.feature_flip=true",
        "downstream.write_pseudo_labels=true",
        f"hydra.run.dir={run_dir}",
    ]
    proc = run_cli(args, tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp / "emb"
    embed = run_cli(
        [str(run_dir), str(tmp / "data" / "train"), str(tmp / "data" / "test"), str(tmp / "extra"), "--out", str(out)],
        tmp,
        exe="sslrun-embed",
    )
    assert embed.returncode == 0, embed.stderr[-3000:]
    return {
        "tmp": tmp,
        "run_dir": run_dir,
        "out": out,
        "embed": embed,
        "log": proc.stdout + proc.stderr,
        "info": json.loads((run_dir / "model" / "info.json").read_text()),
    }


def _files(folder: Path) -> list[Path]:
    return sorted(p.resolve() for p in folder.rglob("*.png"))


def test_paths_and_features_line_up_and_the_bad_file_is_named(run):
    features, rows = np.load(run["out"] / "features.npy"), _rows(run["out"] / "paths.csv")
    data = run["tmp"] / "data"
    assert features.dtype == np.float32 and features.ndim == 2 and features.shape[1] > 1
    assert len(rows) == features.shape[0] == len(_files(data)) == 240  # 160 train + 80 test, notes.png skipped
    assert [Path(r["path"]).resolve() for r in rows] == _files(data / "train") + _files(data / "test")
    assert np.isfinite(features).all() and len(np.unique(features, axis=0)) == len(rows)
    assert list(rows[0]) == ["path", "class", "confidence"]  # the run exported a classifier
    assert {r["class"] for r in rows} <= set(NAMES) and all(0 <= float(r["confidence"]) <= 1 for r in rows)
    bad = run["tmp"] / "extra" / "notes.png"
    assert f"sslrun-embed: skipped {bad}: " in run["embed"].stderr and "Traceback" not in run["embed"].stderr
    assert "240 images embedded" in run["embed"].stdout and "1 unreadable skipped" in run["embed"].stdout
    assert "images/s" in run["embed"].stdout and "feature_flip" in run["embed"].stdout


def test_knn_on_the_features_gives_the_runs_knn_accuracy(run):
    """The labeled draw (downstream/labeled_0.csv) as reference, the test images as queries, with the knn
    evaluation's own k and vote: the accuracy in results.csv, to the last digit."""
    from sslrun.downstream.knn import knn_predict

    features, rows = np.load(run["out"] / "features.npy"), _rows(run["out"] / "paths.csv")
    row_of = {Path(r["path"]).resolve(): i for i, r in enumerate(rows)}
    labeled = _rows(run["run_dir"] / "downstream" / "labeled_0.csv")
    assert len(labeled) == 5 * len(CLASSES) and list(labeled[0]) == ["path", "class"]
    assert all(Path(r["path"]).parent.name == r["class"] for r in labeled)  # the class is the file's folder
    test = _files(run["tmp"] / "data" / "test")
    key = json.loads((run["run_dir"] / "run_key.json").read_text())["downstream"]
    pred = knn_predict(
        features[[row_of[Path(r["path"]).resolve()] for r in labeled]],
        np.array([NAMES.index(r["class"]) for r in labeled]),
        features[[row_of[f] for f in test]],
        key["knn_k"],
        len(NAMES),
    )
    accuracy = float(np.mean(pred == np.array([NAMES.index(f.parent.name) for f in test])))
    reported = next(r for r in _rows(run["run_dir"] / "results.csv") if r["eval"] == "knn")
    assert repr(accuracy) == reported["test_accuracy"]
    assert key["feature_flip"] is True and key["knn_k"] == 20


def test_features_are_the_knn_evaluations_bit_for_bit(run):
    """The evaluation's own function on the test images, under the run's dtype policy and feature_flip; the
    other policy or no flip gives other features, so the match is not an accident of the settings."""
    import tensorflow as tf

    from sslrun.downstream.features import features
    from sslrun.downstream.pretrained import load_pretrained_encoder
    from sslrun.precision import dtype_policy

    rows = _rows(run["out"] / "paths.csv")
    test = [i for i, r in enumerate(rows) if Path(r["path"]).parent.parent.name == "test"]
    x = np.stack([tf.io.decode_png(tf.io.read_file(rows[i]["path"]), 1).numpy() for i in test])
    embedded = np.load(run["out"] / "features.npy")[test]
    policy = json.loads((run["run_dir"] / "metrics.json").read_text())["precision"]
    for other_policy, flip in (
        (policy, True),
        (policy, False),
        ("float32" if policy != "float32" else "mixed_bfloat16", True),
    ):
        with dtype_policy(other_policy):
            encoder, _ = load_pretrained_encoder(run["run_dir"] / "pretext", (SIZE, SIZE, 1))
        same = np.array_equal(features(encoder, x, flip=flip), embedded)
        assert same is (other_policy == policy and flip), (other_policy, flip)


def _exported_predictions(run_dir: Path, files: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """model/model.keras on the decoded files, here in the test: (class indices, their probabilities)."""
    import keras
    import tensorflow as tf

    model = keras.models.load_model(run_dir / "model" / "model.keras")
    x = np.stack([tf.io.decode_png(tf.io.read_file(str(f)), 1).numpy() for f in files])
    probs = tf.nn.softmax(model.predict(x, batch_size=256, verbose=0)).numpy()
    return probs.argmax(axis=1), probs.max(axis=1)


def test_pseudo_labels_are_the_exported_models_classes_for_every_pool_image(run):
    rows = _rows(run["run_dir"] / "pseudo_labels.csv")
    train = _files(run["tmp"] / "data" / "train")
    assert list(rows[0]) == ["path", "class", "confidence", "eval"]
    assert sorted(Path(r["path"]).resolve() for r in rows) == train  # pool=train (experiment=smoke): 160 images
    assert {r["eval"] for r in rows} == {run["info"]["eval"]} and run["info"]["eval"] == "finetune"
    assert {r["class"] for r in rows} <= set(NAMES)
    confidence = np.array([float(r["confidence"]) for r in rows])
    assert ((confidence >= 1 / len(NAMES) - 1e-4) & (confidence <= 1)).all()  # a softmax maximum
    files = [Path(r["path"]) for r in rows]
    classes, probs = _exported_predictions(run["run_dir"], files)
    assert [r["class"] for r in rows] == [NAMES[k] for k in classes]
    assert np.abs(confidence - probs).max() <= 5e-5 + 1e-6
    assert "pseudo-labels: 160 pool images labeled by finetune" in run["log"]
    # sslrun-embed's class column is the same model's
    embedded = {Path(r["path"]).resolve(): r["class"] for r in _rows(run["out"] / "paths.csv")}
    assert [embedded[f.resolve()] for f in files] == [r["class"] for r in rows]


def test_map_and_neighbours_are_pngs(run):
    for name in ("map.png", "neighbours.png"):
        data = (run["out"] / name).read_bytes()
        assert data[:8] == PNG and len(data) > 5000, name
    import matplotlib.image

    height, width = matplotlib.image.imread(run["out"] / "neighbours.png").shape[:2]
    assert width > height  # 9 images a row, 6 rows
    assert not list(run["out"].glob(".*.tmp"))  # every file renamed into place


def test_colours_come_from_the_classifier_else_the_class_folders_else_none():
    from sslrun.embed_cli import Embedded, point_labels
    from sslrun.image_files import Inputs

    inputs = Inputs([Path("a/cat/1.png"), Path("a/dog/2.png"), Path("b.png")], ["cat", "dog", None])
    probs = np.array([[0.2, 0.8], [0.9, 0.1]])
    with_model = Embedded(np.array([0, 2]), np.zeros((2, 3), np.float32), probs, 1.0)
    assert point_labels(inputs, with_model, ["cat", "dog"])[0] == ["dog", "cat"]
    folders = Embedded(np.array([0, 1]), np.zeros((2, 3), np.float32), None, 1.0)
    assert point_labels(inputs, folders, None)[0] == ["cat", "dog"]
    loose = Embedded(np.array([0, 2]), np.zeros((2, 3), np.float32), None, 1.0)
    labels, why = point_labels(inputs, loose, None)
    assert labels is None and "one colour" in why


def test_folder_labels_without_class_names():
    from sslrun.image_files import _label_of

    root = Path("photos")
    assert _label_of(root / "cat" / "x" / "1.png", root, None) == "cat"
    assert _label_of(root / "1.png", root, None) is None
    assert _label_of(root / "cat" / "1.png", root, {"dog"}) is None
    assert _label_of(Path("cat") / "1.png", Path("cat"), {"cat"}) == "cat"


def _one_error_line(proc) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("sslrun-embed: error: "), proc.stderr
    return lines[0]


def test_a_folder_that_is_not_a_run_is_one_error_line(tmp_path):
    (tmp_path / "run").mkdir()
    line = _one_error_line(run_cli([str(tmp_path / "run"), str(tmp_path), "--out", "x"], tmp_path, exe="sslrun-embed"))
    assert "is not a run directory written by `sslrun`" in line and "run_key.json" in line


def test_a_run_without_a_finished_pretext_stage_is_one_error_line(run, tmp_path):
    from sslrun import embed_cli
    from sslrun.training.artifacts import COMPLETE

    assert embed_cli.COMPLETE == COMPLETE
    unfinished = tmp_path / "unfinished"
    (unfinished / "pretext").mkdir(parents=True)
    (unfinished / "run_key.json").write_text((run["run_dir"] / "run_key.json").read_text())
    line = _one_error_line(run_cli([str(unfinished), str(tmp_path), "--out", "x"], tmp_path, exe="sslrun-embed"))
    assert f"{unfinished / 'pretext'} holds no finished pretext stage (no COMPLETE)" in line


def test_umap_without_umap_learn_names_the_package(run):
    import importlib.util

    out = run["tmp"] / "emb-umap"
    proc = run_cli(
        [str(run["run_dir"]), str(run["tmp"] / "data" / "test"), "--out", str(out), "--map", "umap"],
        run["tmp"],
        exe="sslrun-embed",
    )
    if importlib.util.find_spec("umap") is None:
        line = _one_error_line(proc)
        assert "`pip install umap-learn`" in line and "--map pca" in line and not out.exists()
    else:
        assert proc.returncode == 0 and (out / "map.png").read_bytes()[:8] == PNG and "UMAP" in proc.stdout


def test_pseudo_labels_without_a_classifier_fail_before_any_work():
    from test_config import _compose

    from sslrun.errors import SslrunError
    from sslrun.pipeline import check_config

    with pytest.raises(SslrunError, match="write_pseudo_labels=true .* trains none; add one of finetune"):
        check_config(_compose(["experiment=smoke", "downstream.evals=[knn]", "downstream.write_pseudo_labels=true"]))
    check_config(_compose(["experiment=smoke", "downstream.evals=[knn,linear]", "downstream.write_pseudo_labels=true"]))


def test_neighbours_are_the_most_similar_other_images():
    from sslrun.embed_cli import NEIGHBOURS, neighbours_of

    rng = np.random.default_rng(0)
    f = rng.normal(size=(30, 5)).astype(np.float32)
    f[7] = f[3] * 2  # the same direction: cosine similarity 1
    idx, sim = neighbours_of(f, np.array([3, 20]))
    assert idx.shape == sim.shape == (2, NEIGHBOURS)
    u = f / np.linalg.norm(f, axis=1, keepdims=True)
    for row, q in enumerate((3, 20)):
        s = u @ u[q]
        s[q] = -np.inf
        assert list(idx[row]) == list(np.argsort(-s)[:NEIGHBOURS]) and np.allclose(
            sim[row], np.sort(s)[::-1][:NEIGHBOURS]
        )
    assert idx[0, 0] == 7 and abs(sim[0, 0] - 1) < 1e-5
    few, _ = neighbours_of(f[:4], np.array([0, 3]))
    assert few.shape == (2, 3) and 0 not in few[0] and 3 not in few[1]
