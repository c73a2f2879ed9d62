"""The image_folder data set on tiny folders written here (PNG/JPEG through TensorFlow)."""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import run_cli

from sslrun.data import image_folder
from sslrun.data.image_folder import describe_image_folder, load_image_folder
from sslrun.errors import DataError

CLASSES = ("ant", "bee", "cat")
COLORS = {"ant": (200, 30, 30), "bee": (30, 200, 30), "cat": (30, 30, 200)}
LOGGER = "sslrun.data.image_folder"


def _write(path: Path, image: np.ndarray, fmt: str = "png") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    encode = tf.io.encode_png if fmt == "png" else tf.io.encode_jpeg
    path.write_bytes(encode(tf.constant(image)).numpy())


def _flat(color: tuple[int, int, int], h: int, w: int) -> np.ndarray:
    return np.broadcast_to(np.array(color, dtype=np.uint8), (h, w, 3)).copy()


def _make_class(folder: Path, name: str, rng: np.random.Generator, count: int = 6) -> dict:
    """count images: random 12x12 PNGs (even i), flat 20x16 PNGs, last a flat JPEG as .JPG."""
    exact = {}
    for i in range(count):
        if i == count - 1:
            _write(folder / name / f"{i}.JPG", _flat(COLORS[name], 12, 12), "jpeg")
        elif i % 2 == 0:
            exact[i] = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
            _write(folder / name / f"{i}.png", exact[i])
        else:
            _write(folder / name / f"{i}.png", _flat(COLORS[name], 20, 16))
    return exact


@pytest.fixture
def folder(tmp_path: Path) -> tuple[Path, dict]:
    """train/{ant,bee,cat}/0..5 with 3 exact 12x12 PNGs per class; no test/, no unlabeled/."""
    rng = np.random.default_rng(1)
    root = tmp_path / "pics"
    exact = {name: _make_class(root / "train", name, rng) for name in CLASSES}
    return root, exact


def _add_test(root: Path, per_class: int = 2) -> None:
    for name in CLASSES:
        for i in range(per_class):
            _write(root / "test" / name / f"t{i}.png", _flat(COLORS[name], 12, 12))


def test_labels_class_names_exact_pixels_and_resize(folder):
    root, exact = folder
    _add_test(root)
    raw = load_image_folder(root, 12, 3)
    assert raw.class_names == CLASSES
    assert raw.x_train.shape == (18, 12, 12, 3) and raw.x_train.dtype == np.uint8
    assert raw.y_train.tolist() == [0] * 6 + [1] * 6 + [2] * 6
    for label, name in enumerate(CLASSES):
        for i in range(6):
            image = raw.x_train[label * 6 + i]
            if i in exact[name]:  # right size: untouched, pixel-exact
                np.testing.assert_array_equal(image, exact[name][i])
            elif i == 5:  # JPEG: lossy but close
                assert np.abs(image.astype(int) - COLORS[name]).max() <= 3
            else:  # 20x16 resized to 12x12; a flat colour stays exactly that colour
                np.testing.assert_array_equal(image, _flat(COLORS[name], 12, 12))
    assert raw.x_unlabeled is None


def test_channels_1_from_rgb(folder):
    root, exact = folder
    raw = load_image_folder(root, 12, 1, test_fraction=0.5)
    assert raw.x_train.shape[1:] == (12, 12, 1) and raw.x_test.shape[1:] == (12, 12, 1)
    both = np.concatenate([raw.x_train, raw.x_test])
    expected = tf.image.rgb_to_grayscale(exact["ant"][0]).numpy().astype(int)
    # the random PNG is in one of the two splits: find it, allow libpng's rounding
    diffs = [np.abs(x.astype(int) - expected).max() for x in both]
    assert min(diffs) <= 1


def test_held_out_test_split_is_stratified_and_fixed(folder, caplog):
    root, _ = folder
    caplog.set_level(logging.INFO, logger=LOGGER)
    first = load_image_folder(root, 12, 3, test_fraction=0.34)  # 6 * 0.34 -> 2 per class
    assert np.bincount(first.y_test).tolist() == [2, 2, 2]
    assert np.bincount(first.y_train).tolist() == [4, 4, 4]
    assert "held out 6 of 18 train images" in caplog.text
    assert "train 12 / held-out test 6 / unlabeled 0)" in first.source
    second = load_image_folder(root, 12, 3, test_fraction=0.34)
    np.testing.assert_array_equal(first.x_test, second.x_test)
    np.testing.assert_array_equal(first.x_train, second.x_train)
    # the held-out random images (flat ones repeat within a class) are not also in train
    train_rows = {x.tobytes() for x in first.x_train}
    textured = [x for x in first.x_test if x.std(axis=(0, 1)).max() > 0]
    assert textured and not any(x.tobytes() in train_rows for x in textured)


def test_test_folder_is_used_and_fraction_ignored(folder):
    root, _ = folder
    _add_test(root, per_class=2)
    raw = load_image_folder(root, 12, 3, test_fraction=7.0)  # ignored: test/ exists
    assert raw.y_test.tolist() == [0, 0, 1, 1, 2, 2]
    np.testing.assert_array_equal(raw.x_test[2], _flat(COLORS["bee"], 12, 12))
    assert len(raw.y_train) == 18
    assert "/ test 6 /" in raw.source


def test_test_folder_with_unknown_class(folder):
    root, _ = folder
    _add_test(root)
    _write(root / "test" / "wolf" / "w.png", _flat((1, 2, 3), 12, 12))
    with pytest.raises(DataError, match=r"test/wolf .*rename it to a train class or remove it"):
        load_image_folder(root, 12, 3)


def test_unlabeled_at_any_depth(folder):
    root, _ = folder
    _write(root / "unlabeled" / "a" / "b" / "deep.png", _flat((9, 9, 9), 12, 12))
    _write(root / "unlabeled" / "top.png", _flat((7, 7, 7), 12, 12))
    (root / "unlabeled" / "a" / "notes.txt").write_text("not an image")
    raw = load_image_folder(root, 12, 3)
    assert raw.x_unlabeled.shape == (2, 12, 12, 3)
    # sorted paths: unlabeled/a/b/deep.png before unlabeled/top.png
    assert raw.x_unlabeled[0, 0, 0].tolist() == [9, 9, 9]
    assert raw.x_unlabeled[1, 0, 0].tolist() == [7, 7, 7]
    assert "unlabeled 2" in raw.source


def _add_bad(root: Path) -> None:
    good = tf.io.encode_jpeg(tf.constant(_flat((5, 5, 5), 12, 12))).numpy()
    (root / "train" / "bee" / "2a_corrupt.jpg").write_bytes(good[:20] + b"\0" * 200)
    (root / "train" / "bee" / "2b_empty.png").write_bytes(b"")


def test_bad_images_skipped_counted_and_labels_aligned(folder, caplog):
    root, exact = folder
    _add_test(root)
    _add_bad(root)
    caplog.set_level(logging.INFO, logger=LOGGER)
    raw = load_image_folder(root, 12, 3)
    assert raw.y_train.tolist() == [0] * 6 + [1] * 6 + [2] * 6
    np.testing.assert_array_equal(raw.x_train[6 + 4], exact["bee"][4])  # after the dropped files
    np.testing.assert_array_equal(raw.x_train[12], exact["cat"][0])
    assert "train: skipped 2 unreadable images" in caplog.text
    assert "train/bee/2a_corrupt.jpg" in caplog.text and "train/bee/2b_empty.png" in caplog.text
    assert raw.source.endswith("; 2 bad images skipped)")


def test_bad_image_error_names_the_file(folder):
    root, _ = folder
    _add_test(root)
    _add_bad(root)
    with pytest.raises(DataError, match=r"train/bee/2a_corrupt\.jpg could not be decoded") as err:
        load_image_folder(root, 12, 3, on_bad_image="error")
    assert "dataset.on_bad_image=skip" in str(err.value)
    assert "2 unreadable in train/" in str(err.value)


def test_non_image_and_hidden_files_ignored(folder, caplog):
    root, _ = folder
    _add_test(root)
    (root / "train" / "ant" / "README.txt").write_text("about ants")
    (root / "train" / "ant" / "Thumbs.db").write_bytes(b"\0\1")
    (root / "train" / "ant" / ".DS_Store").write_bytes(b"\0")
    _write(root / "train" / "ant" / ".hidden.png", _flat((1, 1, 1), 12, 12))
    caplog.set_level(logging.INFO, logger=LOGGER)
    raw = load_image_folder(root, 12, 3)
    assert np.bincount(raw.y_train).tolist() == [6, 6, 6]
    assert "train: ignored 2 non-image files, e.g. train/ant/README.txt" in caplog.text
    assert "bad images" not in raw.source


def test_png_content_with_jpg_name_is_decoded(folder):
    root, _ = folder
    _add_test(root)
    _write(root / "train" / "cat" / "9.jpg", _flat((1, 2, 3), 12, 12), "png")
    raw = load_image_folder(root, 12, 3)
    assert np.bincount(raw.y_train).tolist() == [6, 6, 7]
    assert raw.x_train[-1, 0, 0].tolist() == [1, 2, 3]


def test_empty_class_folder(folder):
    root, _ = folder
    (root / "train" / "dog").mkdir()
    (root / "train" / "dog" / "notes.txt").write_text("todo")
    with pytest.raises(DataError, match=r"train/dog has no image files .*add images or remove"):
        load_image_folder(root, 12, 3)


def test_class_folder_with_only_bad_images(folder):
    root, _ = folder
    (root / "train" / "dog").mkdir()
    (root / "train" / "dog" / "x.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"train/dog has only unreadable or non-image files"):
        load_image_folder(root, 12, 3)


def test_structure_errors(tmp_path):
    with pytest.raises(DataError, match=r"nowhere does not exist; set dataset.path"):
        load_image_folder(tmp_path / "nowhere", 12, 3)
    (tmp_path / "flat" / "cat").mkdir(parents=True)
    with pytest.raises(DataError, match=r"has no train/ folder: expected .*/train/<class>/.*found cat"):
        load_image_folder(tmp_path / "flat", 12, 3)
    (tmp_path / "noclass" / "train").mkdir(parents=True)
    with pytest.raises(DataError, match=r"train has no class subfolders"):
        load_image_folder(tmp_path / "noclass", 12, 3)


def test_single_class_folder_is_refused_before_any_work(tmp_path):
    """One class folder under train/ (often unlabeled images put there) cannot train a classifier: exit 2
    through the console script, one line naming the folder, the class and the fix, no run artifacts."""
    root = tmp_path / "pics"
    _make_class(root / "train", "cat", np.random.default_rng(0))
    res = run_cli(
        ["dataset=image_folder", f"dataset.path={root}", "trainer.progress=false", "hydra.run.dir=run"], tmp_path
    )
    assert res.returncode == 2, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    [line] = [line for line in res.stderr.splitlines() if line.startswith("sslrun: error:")]
    for text in (
        f"{root / 'train'} has one class folder, 'cat'",
        "at least two",
        "train/cat/*.png and train/dog/*.png",
        f"{root / 'unlabeled'}/",
    ):
        assert text in line, text
    run = tmp_path / "run"
    for artifact in ("pretext", "downstream", "metrics.json", "report.md", "results.csv", "figures"):
        assert not (run / artifact).exists(), artifact
    assert "pretext rotation on " not in res.stdout  # no training started


def test_option_errors(folder):
    root, _ = folder
    with pytest.raises(DataError, match=r"on_bad_image='ignore' is not one of skip, error"):
        load_image_folder(root, 12, 3, on_bad_image="ignore")
    with pytest.raises(DataError, match=r"test_fraction=1.0 must be between 0 and 1"):
        load_image_folder(root, 12, 3, test_fraction=1.0)
    with pytest.raises(DataError, match=r"channels=2"):
        load_image_folder(root, 12, 2)


def test_cache_hit_then_miss_after_touch(folder, monkeypatch, caplog, tmp_path):
    root, _ = folder
    cache = tmp_path / "cache"
    real = image_folder._decode_paths
    calls = []

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(image_folder, "_decode_paths", counting)
    first = load_image_folder(root, 12, 3, cache_dir=cache)
    files = list((cache / "image_folder").iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz" and len(calls) == 1

    caplog.set_level(logging.INFO, logger=LOGGER)
    again = load_image_folder(root, 12, 3, cache_dir=cache)
    assert len(calls) == 1 and "reusing decoded images from" in caplog.text
    np.testing.assert_array_equal(again.x_train, first.x_train)
    np.testing.assert_array_equal(again.y_test, first.y_test)
    assert again.class_names == CLASSES and again.source == first.source

    load_image_folder(root, 16, 3, cache_dir=cache)  # another image size: another key
    assert len(calls) == 2
    touched = root / "train" / "bee" / "0.png"
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))
    load_image_folder(root, 12, 3, cache_dir=cache)
    assert len(calls) == 3
    assert len(list((cache / "image_folder").glob("*.npz"))) == 3
    assert not list((cache / "image_folder").glob("*.tmp"))


def test_gif_and_bmp_also_grayscale(tmp_path):
    image_mod = pytest.importorskip("PIL.Image")
    root = tmp_path / "pics"
    for name, fmt in (("g", "GIF"), ("b", "BMP")):
        (root / "train" / name).mkdir(parents=True)
        buffer = io.BytesIO()
        image_mod.fromarray(_flat((90, 90, 90), 12, 12)).save(buffer, fmt)
        for i in range(2):
            (root / "train" / name / f"{i}.{fmt.lower()}").write_bytes(buffer.getvalue())
    for channels in (1, 3):
        raw = load_image_folder(root, 12, channels, test_fraction=0.5)
        assert raw.x_train.shape == (2, 12, 12, channels)
        assert np.abs(raw.x_train.astype(int) - 90).max() <= 1


def test_describe_counts_without_decoding(folder, monkeypatch):
    root, _ = folder
    _add_test(root, per_class=1)
    _write(root / "unlabeled" / "x" / "u.png", _flat((1, 1, 1), 12, 12))
    (root / "train" / "ant" / "README.txt").write_text("x")
    monkeypatch.setattr(image_folder, "_decode_paths", lambda *a, **k: pytest.fail("decoded"))
    info = describe_image_folder(root)
    assert info["class_names"] == list(CLASSES)
    assert info["train"] == {"ant": 6, "bee": 6, "cat": 6}
    assert info["test"] == {"ant": 1, "bee": 1, "cat": 1}
    assert info["unlabeled"] == 1
    assert info["non_image_files"] == {"train": 1, "test": 0, "unlabeled": 0}
