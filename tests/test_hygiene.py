"""Pool hygiene (sslrun/data/hygiene.py): planted copies in a small image folder are found with the right kinds,
distinct images are not, a drop removes exactly the planted leaks, and one smoke run reports them.

The folder's images are smooth random pictures (independent ones are about 32 of 64 pHash bits apart), saved
as PNG so the decoded pixels are exact; the near copies are JPEG re-encodings, brightened.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.fft
from conftest import run_cli
from omegaconf import OmegaConf
from PIL import Image

from sslrun.data import hygiene
from sslrun.data.base import RawData
from sslrun.data.image_folder import load_image_folder
from sslrun.training.cache import cache_key

SIZE = 32
CLASSES = ("ant", "bee")
PER_CLASS, TEST_PER_CLASS = 24, 8


def _pictures(n: int, seed: int, size: int = SIZE) -> np.ndarray:
    """Smooth random RGB pictures: 4x4 random colours, bilinearly enlarged, a little texture on top."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (n, 4, 4, 3))
    small = [Image.fromarray(c.astype(np.uint8)).resize((size, size), Image.BILINEAR) for c in coarse]
    fine = rng.normal(0, 6, (n, size, size, 3))
    return np.clip(np.stack([np.asarray(s, dtype=float) for s in small]) + fine, 0, 255).astype(np.uint8)


def _near_copy(image: np.ndarray) -> np.ndarray:
    """JPEG at quality 85, then 10 levels brighter: what a re-saved, re-touched copy looks like."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=85)
    return np.clip(np.asarray(Image.open(buf), dtype=int) + 10, 0, 255).astype(np.uint8)


def _save(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return path


def _folder(root: Path) -> dict[str, tuple[str, str]]:
    """train/ and test/ of distinct pictures plus five planted files; kind -> (planted file, its original)."""
    train, test = _pictures(2 * PER_CLASS, 1), _pictures(2 * TEST_PER_CLASS, 2)
    for split, images, per in (("train", train, PER_CLASS), ("test", test, TEST_PER_CLASS)):
        for i, image in enumerate(images):
            _save(root / split / CLASSES[i // per] / f"{i:03d}.png", image)
    t = root / "train"
    planted = {
        "exact": (_save(t / "ant" / "copy_of_003.png", train[3]), t / "ant" / "003.png"),
        "near": (_save(t / "bee" / "near_of_030.png", _near_copy(train[30])), t / "bee" / "030.png"),
        "test_exact": (_save(t / "bee" / "leak_exact.png", test[9]), root / "test" / "bee" / "009.png"),
        "test_near": (_save(t / "ant" / "leak_near.png", _near_copy(test[2])), root / "test" / "ant" / "002.png"),
    }
    return {kind: (str(a), str(b)) for kind, (a, b) in planted.items()}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> tuple[Path, dict[str, tuple[str, str]], RawData]:
    root = tmp_path_factory.mktemp("hygiene") / "data"
    planted = _folder(root)
    return root, planted, load_image_folder(root, SIZE, 3)


def _dataset(**keys) -> OmegaConf:
    return OmegaConf.create({"name": "image_folder", "hygiene": None, "drop_test_duplicates": False, **keys})


# ----------------------------------------------------------------------------- the hash and the search


def test_phash_is_imagehash_phash_bit_for_bit():
    """imagehash's definition (PIL luma, 2-D DCT-II, 8x8 lowest, > median) written the slow way, per image."""
    images = np.concatenate([_pictures(40, 3), np.zeros((1, SIZE, SIZE, 3), np.uint8)])
    ours = hygiene.phash(images)
    for image, value in zip(images, ours, strict=True):
        luma = np.asarray(Image.fromarray(image).convert("L"), dtype=float)
        low = scipy.fft.dct(scipy.fft.dct(luma, axis=0), axis=1)[:8, :8]
        bits = (low > np.median(low)).ravel()
        assert int(value) == int("".join("1" if b else "0" for b in bits), 2)


def test_a_larger_image_is_hashed_from_its_32x32_block_means():
    big = np.repeat(np.repeat(_pictures(5, 4), 3, axis=1), 3, axis=2)  # 96x96, each pixel a 3x3 block
    assert np.array_equal(hygiene.phash(big), hygiene.phash(_pictures(5, 4)))


def test_close_pairs_equals_every_pair_compared():
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2**63, 1500, dtype=np.int64).astype(np.uint64) * np.uint64(2) + np.uint64(1)
    for i, bits in enumerate(range(0, 10)):  # plant pairs 0..9 bits apart
        flip = rng.choice(64, bits, replace=False)
        hashes[100 + i] = hashes[i] ^ np.uint64(sum(1 << int(k) for k in flip))
    for j in range(200, 230):  # a cluster (one picture saved 30 times, slightly changed): runs of equal pieces
        hashes[j] = hashes[50] ^ np.uint64(1 << int(rng.integers(64)))
    a, b, dist = hygiene.close_pairs(hashes, max_bits=6)
    diff = hygiene.popcount((hashes[:, None] ^ hashes[None, :]).ravel()).reshape(len(hashes), -1)
    want = {(i, j) for i, j in zip(*np.nonzero(np.triu(diff <= 6, k=1)), strict=True)}
    assert {(int(i), int(j)) for i, j in zip(a, b, strict=True)} == want
    assert {(i, 100 + i) for i in range(7)} <= want and (7, 107) not in want
    assert {(50, j) for j in range(200, 230)} <= want and len(want) > 30 * 29 // 2
    assert np.array_equal(dist, diff[a, b])


# ----------------------------------------------------------------------------- the folder


def test_planted_copies_are_found_with_their_kinds_and_nothing_else(folder):
    root, planted, raw = folder
    found = hygiene.check(raw)
    pairs = {
        (str(k), *sorted((str(found.names[i]), str(found.names[j]))))
        for k, i, j in zip(found.kind, found.a, found.b, strict=True)
    }
    assert pairs == {(kind, *sorted(files)) for kind, files in planted.items()}
    by_kind = dict(zip(found.kind, found.distance, strict=True))
    assert by_kind["exact"] == by_kind["test_exact"] == 0
    assert 0 < by_kind["near"] <= hygiene.NEAR_BITS and 0 < by_kind["test_near"] <= hygiene.NEAR_BITS
    # a, the pool side; b, the test image
    for kind in ("test_exact", "test_near"):
        row = int(np.flatnonzero(found.kind == kind)[0])
        assert (found.names[found.a[row]], found.names[found.b[row]]) == planted[kind]
    assert found.counts() == {
        "exact_pairs": 1,
        "near_pairs": 1,
        "test_exact_pairs": 1,
        "test_near_pairs": 1,
        "images_copying_test": 2,
    }


def test_drop_removes_exactly_the_planted_leaks(folder, tmp_path, caplog):
    root, planted, raw = folder
    kept, info = hygiene.check_pool(raw, _dataset(drop_test_duplicates=True), tmp_path)
    gone = set(raw.train_paths) - set(kept.train_paths)
    assert gone == {planted["test_exact"][0], planted["test_near"][0]}
    assert len(kept.x_train) == len(raw.x_train) - 2 and info["dropped"] == 2
    rows = np.flatnonzero(np.isin(raw.train_paths, kept.train_paths))
    assert np.array_equal(kept.x_train, raw.x_train[rows]) and np.array_equal(kept.y_train, raw.y_train[rows])
    assert np.array_equal(kept.x_test, raw.x_test)
    assert "2 images that copy a test image dropped" in kept.source
    assert hygiene.check(kept).counts()["images_copying_test"] == 0
    _, kept_info = hygiene.check_pool(raw, _dataset(), tmp_path / "keep")
    assert kept_info["dropped"] == 0 and kept_info["images_copying_test"] == 2
    assert "2 train/unlabeled images copy a test image, which inflates the test score" in caplog.text


def test_off_for_standard_sets_unless_asked(folder, tmp_path):
    raw = folder[2]
    assert hygiene.check_pool(raw, _dataset(name="cifar10"), tmp_path) == (raw, None)
    assert hygiene.check_pool(raw, _dataset(hygiene=False), tmp_path) == (raw, None)
    assert not (tmp_path / "hygiene").exists()
    _, info = hygiene.check_pool(raw, _dataset(name="cifar10", hygiene=True), tmp_path)
    assert info["images_copying_test"] == 2 and (tmp_path / "hygiene" / "pairs.csv").is_file()


def test_a_set_without_files_names_rows_and_drops_from_its_unlabeled_split(tmp_path):
    """A standard set's shape: no paths, an unlabeled split; a test copy in each of train and unlabeled."""
    train, unlabeled, test = _pictures(20, 5), _pictures(15, 6), _pictures(10, 7)
    train[4], unlabeled[11] = test[1], _near_copy(test[8])
    raw = RawData(train, np.arange(20) % 2, test, np.arange(10) % 2, "arrays", ("a", "b"), unlabeled)
    kept, info = hygiene.check_pool(raw, _dataset(name="stl10", hygiene=True, drop_test_duplicates=True), tmp_path)
    with open(tmp_path / "hygiene" / "pairs.csv") as fh:
        rows = {(r["kind"], r["a"], r["b"]) for r in csv.DictReader(fh)}
    assert rows == {("test_exact", "train:4", "test:1"), ("test_near", "unlabeled:11", "test:8")}
    assert info["dropped"] == 2 and len(kept.x_train) == 19 and len(kept.x_unlabeled) == 14
    assert np.array_equal(kept.x_unlabeled, np.delete(unlabeled, 11, axis=0))
    assert np.array_equal(kept.x_train, np.delete(train, 4, axis=0))


def test_distinct_images_give_no_pairs_and_a_placeholder_figure(tmp_path, caplog):
    raw = RawData(_pictures(60, 8), np.arange(60) % 2, _pictures(20, 9), np.arange(20) % 2, "arrays")
    kept, info = hygiene.check_pool(raw, _dataset(hygiene=True), tmp_path)
    assert kept is raw and info["images_copying_test"] == 0
    assert all(info[f"{k}_pairs"] == 0 for k in hygiene.KINDS)
    assert (tmp_path / "hygiene" / "pairs.csv").read_text() == "kind,a,b,distance\n"
    assert (tmp_path / "hygiene" / "pairs.png").read_bytes()[:4] == b"\x89PNG"
    assert "copy a test image" not in caplog.text


def test_pairs_csv_rows_and_atomic_write(folder, tmp_path, monkeypatch):
    root, planted, raw = folder
    found = hygiene.check(raw)
    out = hygiene.write_pairs_csv(tmp_path / "pairs.csv", found)
    with open(out) as fh:
        rows = list(csv.DictReader(fh))
    assert [r["kind"] for r in rows] == list(found.kind) and set(rows[0]) == {"kind", "a", "b", "distance"}
    assert {(r["kind"], r["a"], r["b"]) for r in rows if r["kind"].startswith("test")} == {
        (k, *planted[k]) for k in ("test_exact", "test_near")
    }
    before = out.read_bytes()

    class Broken:  # a write that fails half way (disk full): the reader keeps the whole old file
        def __init__(self, fh, **kw):
            self.fh = fh

        def writerow(self, row):
            self.fh.write("kind,a,b,distance\n")

        def writerows(self, rows):
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(hygiene.csv, "writer", Broken)
    with pytest.raises(OSError):
        hygiene.write_pairs_csv(out, found)
    assert out.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["pairs.csv"]


# ----------------------------------------------------------------------------- one run


def test_a_run_reports_and_drops_and_its_pretext_key_follows_the_pool(folder, tmp_path):
    root, planted, raw = folder
    run_dir = tmp_path / "run"
    args = [
        "experiment=smoke",
        "dataset=image_folder",
        f"dataset.path={root}",
        f"dataset.image_size={SIZE}",
        "dataset.channels=3",
        "dataset.drop_test_duplicates=true",
        "stage=pretext",
        "trainer.progress=false",
        "tensorboard=false",
        "trainer.precision=float32",
        "trainer.batch_size=16",
        "trainer.steps_per_epoch=2",
        "trainer.epochs=1",
        f"cache_dir={tmp_path / 'cache'}",
        f"hydra.run.dir={run_dir}",
    ]
    proc = run_cli(args, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = (run_dir / "cli.log").read_text()
    assert (
        "1 exact and 1 near pairs in the pool, 1 exact and 1 near pairs with a test image" in log
        and "dropped the 2 train/unlabeled images that copy a test image" in log
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["hygiene"]["dropped"] == 2 and metrics["hygiene"]["checked"]["train"] == 2 * PER_CLASS + 4
    report = (run_dir / "report.md").read_text()
    assert "## Pool hygiene" in report and "![pool hygiene](hygiene/pairs.png)" in report
    assert "**1 exact and 1 near pairs with a test image**" in report
    assert (run_dir / "hygiene" / "pairs.png").read_bytes()[:4] == b"\x89PNG"
    with open(run_dir / "hygiene" / "pairs.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 4
    parts = json.loads((run_dir / "pretext" / "key.json").read_text())
    assert parts["pool_size"] == 2 * PER_CLASS + 2  # smoke's pool: the train split, less the two leaks
    assert "2 images that copy a test image dropped" in parts["data_source"]
    undropped = {**parts, "pool_size": 2 * PER_CLASS + 4, "data_source": raw.source}
    assert cache_key(undropped) != cache_key(parts) == metrics["pretext"]["cache_key"]


def test_drop_with_the_check_off_is_refused_before_any_work():
    """check_config's SslrunError: the CLI prints it as one `sslrun: error:` line, exit 2 (test_user_errors)."""
    from hydra import compose, initialize_config_dir

    from sslrun.cli import conf_dir
    from sslrun.config import register_schemas
    from sslrun.errors import SslrunError
    from sslrun.help import register_help
    from sslrun.pipeline import check_config

    register_schemas()
    register_help(conf_dir())
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose(
            "config", overrides=["experiment=smoke", "dataset.hygiene=false", "dataset.drop_test_duplicates=true"]
        )
    with pytest.raises(SslrunError) as err:
        check_config(cfg)
    assert str(err.value) == (
        "dataset.drop_test_duplicates=true drops what the hygiene check finds, but "
        "dataset.hygiene=false turns the check off; drop one of them"
    )
    cfg.dataset.hygiene = None  # null: the drop turns the check on
    check_config(cfg)


def test_where_random_images_match_by_hash_only_exact_copies_count(tmp_path, caplog):
    """Images alike at low frequencies (one picture, a little noise each: MNIST's centred digits are such):
    the near search is skipped, and an exact copy of a test image is still found and dropped."""
    base = _pictures(1, 10)[0].astype(int)
    rng = np.random.default_rng(11)
    alike = np.clip(base + rng.normal(0, 4, (70, SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
    train, test = alike[:50].copy(), alike[50:]
    train[7] = test[3]
    raw = RawData(train, np.arange(50) % 2, test, np.arange(20) % 2, "arrays")
    found = hygiene.check(raw)
    assert found.chance > hygiene.CHANCE_LIMIT and not found.near_checked
    assert list(zip(found.kind, found.a, found.b, strict=True)) == [("test_exact", 7, 50 + 3)]
    kept, info = hygiene.check_pool(raw, _dataset(hygiene=True, drop_test_duplicates=True), tmp_path)
    assert len(kept.x_train) == 49 and info["dropped"] == 1 and not info["near_checked"]
    assert "exact copies only" in kept.source and "near copies not looked for" in caplog.text


def test_natural_pictures_rarely_match_by_chance():
    assert hygiene.chance_neighbours(hygiene.phash(_pictures(400, 12))) < 0.1
