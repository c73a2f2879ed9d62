"""Damaged data files through the CLI: the file is named before training starts, and no weights are written.

Unreadable images in an image folder are skipped and counted (dataset.on_bad_image=skip, the default) or
stop the run naming the file (=error). All cases run at once (one process each) to keep the suite short.
"""

import io
import pickle

import numpy as np
import pytest
from conftest import cli_env, sslrun_exe
from PIL import Image

from sslrun.data.idx import write_idx
from sslrun.data.writers import write_cifar10_python, write_stl10_binary

ARGS = [
    "trainer.progress=false",
    "tensorboard=false",
    "pretext.cache=false",
    "stage=pretext",
    "encoder.width=0.25",
    "trainer.epochs=1",
    "trainer.steps_per_epoch=2",
    "trainer.batch_size=8",
    "downstream.labels_per_class=2",
    "downstream.val_per_class=1",
]


def _images(n: int, side: int, channels: int = 3) -> np.ndarray:
    return np.random.default_rng(n).integers(0, 256, (n, side, side, channels), dtype=np.uint8)


def _labels(n: int) -> np.ndarray:
    return np.arange(n) % 10


def _truncated_idx(root):
    folder = root / "idx"
    folder.mkdir()
    x, y = _images(40, 28, 1)[..., 0], _labels(40).astype(np.uint8)
    for prefix, xs, ys in (("train", x, y), ("t10k", x, y)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte", xs)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", ys)
    bad = folder / "train-images-idx3-ubyte"
    bad.write_bytes(bad.read_bytes()[:-5])
    return ["dataset=mnist", f"dataset.path={folder}"], [f"{bad} is truncated"]


def _bad_cifar_pickle(root):
    folder = write_cifar10_python(root, _images(30, 32), _labels(30), _images(20, 32), _labels(20), archive=False)
    bad = folder / "data_batch_1"
    bad.write_bytes(pickle.dumps({b"data": np.zeros((1, 3072), np.uint8)}, protocol=4))  # no b"labels"
    return ["dataset=cifar10", f"dataset.path={root}"], [
        f"{bad} is not a CIFAR-10 batch",
        "needs b'data' and b'labels'",
    ]


def _wrong_size_stl(root):
    folder = write_stl10_binary(root, _images(20, 96), _labels(20), _images(20, 96), _labels(20), None, archive=False)
    bad = folder / "train_X.bin"
    bad.write_bytes(bad.read_bytes()[:-100])
    return ["dataset=stl10", f"dataset.path={root}", "dataset.pool=train"], [
        f"{bad} is {20 * 27648 - 100} bytes, not a multiple of 96*96*3=27648"
    ]


def _image_folder(root, on_bad_image):
    folder = root / "pics"
    for c, name in enumerate(("ant", "bee", "cat")):
        (folder / "train" / name).mkdir(parents=True)
        for i in range(6):
            buf = io.BytesIO()
            Image.fromarray(np.full((12, 12, 3), 40 * c + i, np.uint8)).save(buf, "png")
            (folder / "train" / name / f"{i}.png").write_bytes(buf.getvalue())
    buf = io.BytesIO()
    Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(buf, "jpeg")
    bad = folder / "train" / "bee" / "broken.jpg"
    bad.write_bytes(buf.getvalue()[:20] + b"\0" * 200)
    args = ["dataset=image_folder", f"dataset.path={folder}", f"dataset.on_bad_image={on_bad_image}"]
    if on_bad_image == "skip":
        return args, ["train: skipped 1 unreadable images", "train/bee/broken.jpg"]
    return args, ["train/bee/broken.jpg could not be decoded", "dataset.on_bad_image=skip"]


CASES = {
    "truncated_idx": _truncated_idx,
    "cifar_pickle_without_labels": _bad_cifar_pickle,
    "stl_bin_of_wrong_size": _wrong_size_stl,
    "unreadable_jpeg_error": lambda root: _image_folder(root, "error"),
    "unreadable_jpeg_skip": lambda root: _image_folder(root, "skip"),
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Every case's data written, then every run started at once; {case: (process result, run dir, texts)}."""
    import subprocess

    started = {}
    for case, make in CASES.items():
        tmp = tmp_path_factory.mktemp(case)
        args, texts = make(tmp)
        proc = subprocess.Popen(
            sslrun_exe() + ARGS + args + ["hydra.run.dir=run"],
            cwd=tmp,
            env=cli_env(tmp),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started[case] = (proc, tmp / "run", texts)
    out = {}
    for case, (proc, run, texts) in started.items():
        stdout, stderr = proc.communicate(timeout=300)
        out[case] = (proc.returncode, stdout, stderr, run, texts)
    return out


@pytest.mark.parametrize("case", [c for c in CASES if c != "unreadable_jpeg_skip"])
def test_damaged_file_is_named_before_training(results, case):
    code, stdout, stderr, run, texts = results[case]
    assert code == 2, stderr[-2000:]
    [line] = [line for line in stderr.splitlines() if line.startswith("sslrun: error:")]
    for text in texts:
        assert text in line, line
    assert "Traceback" not in stderr
    assert not (run / "pretext").exists()  # no pretext weights, no checkpoints


def test_unreadable_jpeg_is_skipped_and_counted_before_training(results):
    code, stdout, stderr, run, texts = results["unreadable_jpeg_skip"]
    assert code == 0, stderr[-2000:]
    skipped, training = stdout.find(texts[0]), stdout.find("pretext rotation on ")
    assert 0 <= skipped < training and texts[1] in stdout
    assert (run / "pretext/COMPLETE").is_file()
