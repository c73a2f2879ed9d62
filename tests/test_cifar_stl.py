import io
import logging
import os
import pickle
import tarfile

import numpy as np
import pytest

from sslrun.data.cifar import (
    CIFAR10_CLASSES,
    describe_missing_cifar10,
    find_cifar10,
    load_cifar10,
)
from sslrun.data.stl10 import STL10_CLASSES, describe_missing_stl10, find_stl10, load_stl10
from sslrun.data.writers import write_cifar10_binary, write_cifar10_python, write_stl10_binary
from sslrun.errors import DataError

N_TRAIN, N_TEST, N_UNLABELED = 30, 20, 40


def _images(n, side, seed):
    return np.random.default_rng(seed).integers(0, 256, (n, side, side, 3), dtype=np.uint8)


def _labels(n):
    return np.arange(n) % 10


@pytest.fixture(scope="module")
def cifar():
    return _images(N_TRAIN, 32, 0), _labels(N_TRAIN), _images(N_TEST, 32, 1), _labels(N_TEST)


@pytest.fixture(scope="module")
def stl():
    return (
        _images(N_TRAIN, 96, 2),
        _labels(N_TRAIN),
        _images(N_TEST, 96, 3),
        _labels(N_TEST),
        _images(N_UNLABELED, 96, 4),
    )


# --- CIFAR-10 ----------------------------------------------------------------------------------

CIFAR_FORMS = {
    "python-folder": (write_cifar10_python, False, "cifar-10-batches-py"),
    "python-tar": (write_cifar10_python, True, "cifar-10-python.tar.gz"),
    "binary-folder": (write_cifar10_binary, False, "cifar-10-batches-bin"),
    "binary-tar": (write_cifar10_binary, True, "cifar-10-binary.tar.gz"),
}


@pytest.mark.parametrize("form", CIFAR_FORMS)
def test_cifar_roundtrip_is_pixel_exact(tmp_path, cifar, form):
    writer, archive, name = CIFAR_FORMS[form]
    written = writer(tmp_path, *cifar, archive=archive)
    assert written == tmp_path / name and sorted(p.name for p in tmp_path.iterdir()) == [name]
    assert find_cifar10(tmp_path) == written
    raw = load_cifar10(written)
    for got, want in zip((raw.x_train, raw.y_train, raw.x_test, raw.y_test), cifar, strict=True):
        np.testing.assert_array_equal(got, want)
    assert raw.x_train.dtype == np.uint8 and raw.x_train.shape == (N_TRAIN, 32, 32, 3)
    assert raw.y_train.dtype == np.int64 and raw.x_test.flags.c_contiguous
    assert raw.class_names == CIFAR10_CLASSES and str(written) in raw.source
    assert raw.x_unlabeled is None


def test_cifar_loads_from_the_parent_folder(tmp_path, cifar):
    write_cifar10_binary(tmp_path, *cifar, archive=False)
    raw = load_cifar10(tmp_path)
    np.testing.assert_array_equal(raw.x_test, cifar[2])
    assert "binary" in raw.source


def test_cifar_python_batches_are_the_original_layout(tmp_path, cifar):
    folder = write_cifar10_python(tmp_path, *cifar, archive=False)
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["batches.meta"] + [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    with open(folder / "data_batch_2", "rb") as fh:
        batch = pickle.load(fh, encoding="bytes")
    assert {b"data", b"labels", b"batch_label", b"filenames"} <= set(batch)
    assert batch[b"data"].shape == (6, 3072) and batch[b"labels"] == [6, 7, 8, 9, 0, 1]
    image = cifar[0][6]  # first image of batch 2: 30 images split 6 per batch
    np.testing.assert_array_equal(batch[b"data"][0, :1024], image[..., 0].ravel())  # red plane, row-major
    np.testing.assert_array_equal(batch[b"data"][0, 2048:], image[..., 2].ravel())
    with open(folder / "batches.meta", "rb") as fh:
        assert pickle.load(fh, encoding="bytes")[b"label_names"][0] == b"airplane"


def test_cifar_binary_records_are_the_original_layout(tmp_path, cifar):
    folder = write_cifar10_binary(tmp_path, *cifar, archive=False)
    content = (folder / "test_batch.bin").read_bytes()
    assert len(content) == N_TEST * 3073
    second = content[3073 : 2 * 3073]
    assert second[0] == 1 and second[1:1025] == cifar[2][1][..., 0].tobytes()
    with tarfile.open(write_cifar10_binary(tmp_path / "t", *cifar, archive=True)) as tar:
        assert "cifar-10-batches-bin/data_batch_5.bin" in tar.getnames()


def test_find_cifar10_order_and_batches_folder_itself(tmp_path, cifar):
    assert find_cifar10(tmp_path) is None
    binary = write_cifar10_binary(tmp_path, *cifar, archive=True)
    assert find_cifar10(tmp_path) == binary
    python = write_cifar10_python(tmp_path, *cifar, archive=False)
    assert find_cifar10(tmp_path) == python  # the pickles folder comes first
    assert find_cifar10(python) == python
    assert describe_missing_cifar10(tmp_path) == (
        "no cifar-10-batches-py/, cifar-10-python.tar.gz, cifar-10-batches-bin/ or cifar-10-binary.tar.gz"
    )


def test_cifar_empty_folder_names_what_was_looked_for(tmp_path):
    with pytest.raises(DataError, match=r"holds no CIFAR-10 files: no cifar-10-batches-py/"):
        load_cifar10(tmp_path)
    with pytest.raises(DataError, match=r"CIFAR-10 path .*nowhere.tar.gz does not exist"):
        load_cifar10(tmp_path / "nowhere.tar.gz")


@pytest.mark.parametrize("form", ["python-folder", "binary-folder"])
def test_cifar_missing_batch(tmp_path, cifar, form):
    writer, _, _ = CIFAR_FORMS[form]
    folder = writer(tmp_path, *cifar, archive=False)
    missing = "data_batch_1" + (".bin" if "binary" in form else "")
    (folder / missing).unlink()
    with pytest.raises(DataError, match=rf"{folder} lacks {missing}: the download is incomplete; download"):
        load_cifar10(folder)


def test_cifar_missing_batch_in_archive(tmp_path, cifar):
    folder = write_cifar10_python(tmp_path, *cifar, archive=False)
    (folder / "test_batch").unlink()
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    with pytest.raises(
        DataError,
        match=r"archive .*cifar-10-python.tar.gz lacks test_batch: the download is incomplete",
    ):
        load_cifar10(archive)


def test_cifar_missing_meta_uses_standard_names(tmp_path, cifar, caplog):
    folder = write_cifar10_python(tmp_path, *cifar, archive=False, class_names=[f"c{i}" for i in range(10)])
    assert load_cifar10(folder).class_names[3] == "c3"
    (folder / "batches.meta").unlink()
    with caplog.at_level(logging.WARNING):
        assert load_cifar10(folder).class_names == CIFAR10_CLASSES
    assert "batches.meta is missing" in caplog.text


def _replace_batch(folder, obj):
    (folder / "data_batch_1").write_bytes(pickle.dumps(obj, protocol=4))


def test_cifar_pickle_without_keys(tmp_path, cifar):
    folder = write_cifar10_python(tmp_path, *cifar, archive=False)
    _replace_batch(folder, {b"fine_labels": [1], b"data": np.zeros((1, 3072), np.uint8)})
    with pytest.raises(DataError) as err:
        load_cifar10(folder)
    assert f"{folder / 'data_batch_1'} is not a CIFAR-10 batch" in str(err.value)
    assert "it has keys [b'data', b'fine_labels'] but needs b'data' and b'labels'" in str(err.value)


def test_cifar_truncated_pickle(tmp_path, cifar):
    folder = write_cifar10_python(tmp_path, *cifar, archive=False)
    path = folder / "data_batch_4"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(DataError, match=r"data_batch_4 could not be unpickled .*truncated or not a CIFAR-10"):
        load_cifar10(folder)


def test_cifar_pickle_may_not_run_code(tmp_path, cifar):
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch pwned",))

    folder = write_cifar10_python(tmp_path, *cifar, archive=False)
    _replace_batch(folder, {b"data": Evil()})
    with pytest.raises(DataError, match=r"data_batch_1 could not be unpickled .*refusing to load"):
        load_cifar10(folder)


def test_cifar_rows_of_wrong_length(tmp_path, cifar):
    folder = write_cifar10_python(tmp_path, *cifar, archive=False)
    _replace_batch(folder, {b"data": np.zeros((2, 3071), np.uint8), b"labels": [0, 1]})
    with pytest.raises(DataError, match=r"data_batch_1 has data of shape \(2, 3071\): rows must be 3072"):
        load_cifar10(folder)


@pytest.mark.parametrize("form", ["python-folder", "binary-folder"])
def test_cifar_labels_out_of_range(tmp_path, cifar, form):
    writer, _, _ = CIFAR_FORMS[form]
    folder = writer(tmp_path, *cifar, archive=False)
    if "python" in form:
        _replace_batch(folder, {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 12]})
    else:
        content = bytearray((folder / "data_batch_1.bin").read_bytes())
        content[3073] = 12  # label byte of the second record
        (folder / "data_batch_1.bin").write_bytes(bytes(content))
    with pytest.raises(DataError, match=r"data_batch_1(\.bin)? has labels outside 0..9 \(e.g. 12\)"):
        load_cifar10(folder)


def test_cifar_binary_size_not_a_record_multiple(tmp_path, cifar):
    folder = write_cifar10_binary(tmp_path, *cifar, archive=False)
    path = folder / "data_batch_2.bin"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match=rf"{path} is {6 * 3073 - 10} bytes, not a multiple of 3073"):
        load_cifar10(folder)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_cifar_invalid_archive(tmp_path, cifar, damage):
    archive = write_cifar10_python(tmp_path, *cifar, archive=True)
    content = archive.read_bytes()
    archive.write_bytes(b"this is not gzip" * 100 if damage == "garbage" else content[: len(content) // 2])
    with pytest.raises(DataError, match=r"cifar-10-python.tar.gz is not a valid .tar.gz .*download"):
        load_cifar10(archive)


# --- STL-10 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("archive", [False, True], ids=["folder", "tar"])
def test_stl_roundtrip_is_pixel_exact(tmp_path, stl, archive):
    written = write_stl10_binary(tmp_path / "data", *stl, archive=archive)
    assert find_stl10(tmp_path / "data") == written
    raw = load_stl10(written, cache_dir=tmp_path / "cache")
    for got, want in zip((raw.x_train, raw.y_train, raw.x_test, raw.y_test, raw.x_unlabeled), stl, strict=True):
        np.testing.assert_array_equal(got, want)
    assert type(raw.x_train) is np.ndarray and raw.x_train.flags.c_contiguous
    assert raw.x_train.dtype == np.uint8 and raw.y_train.dtype == np.int64
    assert raw.class_names == STL10_CLASSES and raw.image_shape == (96, 96, 3)


def _base_chain_has_memmap(x):
    while x is not None:
        if isinstance(x, np.memmap):
            return True
        x = x.base
    return False


def test_stl_unlabeled_is_a_read_only_memmap_view(tmp_path, stl):
    folder = write_stl10_binary(tmp_path, *stl, archive=False)
    raw = load_stl10(folder, cache_dir=tmp_path / "cache")
    x = raw.x_unlabeled
    assert _base_chain_has_memmap(x) and not _base_chain_has_memmap(raw.x_train)
    assert x.dtype == np.uint8 and x.shape == (N_UNLABELED, 96, 96, 3) and not x.flags.writeable
    assert not x.flags.owndata


def test_stl_layout_is_channel_by_channel_column_major(tmp_path, stl):
    # Pixel (row, col, channel) holds (row + 2 * col + 50 * channel) % 256, written by hand.
    row, col, ch = np.meshgrid(np.arange(96), np.arange(96), np.arange(3), indexing="ij")
    image = ((row + 2 * col + 50 * ch) % 256).astype(np.uint8)
    byte_list = [image[r, c, k] for k in range(3) for c in range(96) for r in range(96)]
    folder = write_stl10_binary(tmp_path, *stl, archive=False)
    (folder / "test_X.bin").write_bytes(bytes(byte_list))
    (folder / "test_y.bin").write_bytes(bytes([10]))
    raw = load_stl10(folder, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(raw.x_test[0], image)
    assert raw.y_test.tolist() == [9]
    assert raw.x_test[0, 5, 7, 1] == 5 + 14 + 50
    # and the writer agrees with the hand-made bytes
    write_stl10_binary(tmp_path / "w", *stl[:2], image[None], np.array([9]), None, archive=False)
    assert (tmp_path / "w" / "stl10_binary" / "test_X.bin").read_bytes() == bytes(byte_list)


def test_stl_archive_is_extracted_once(tmp_path, stl, caplog):
    archive = write_stl10_binary(tmp_path, *stl, archive=True)
    cache = tmp_path / "cache"
    with caplog.at_level(logging.INFO, logger="sslrun.data.stl10"):
        load_stl10(archive, cache)
        first = sorted((cache / "stl10").iterdir())
        assert len(first) == 1 and not first[0].name.startswith(".")
        assert "extracting" in caplog.text and "reusing" not in caplog.text
        caplog.clear()
        raw = load_stl10(tmp_path, cache)  # the parent folder finds the archive too
    assert "reusing" in caplog.text and "extracting" not in caplog.text
    assert sorted((cache / "stl10").iterdir()) == first
    assert str(first[0]) in raw.source
    np.testing.assert_array_equal(raw.x_unlabeled, stl[4])


def test_stl_replaced_archive_is_extracted_afresh(tmp_path, stl):
    archive = write_stl10_binary(tmp_path, *stl, archive=True)
    cache = tmp_path / "cache"
    load_stl10(archive, cache)
    x_test = stl[2].copy()
    x_test[0] = 0
    write_stl10_binary(tmp_path, stl[0], stl[1], x_test, stl[3], None, archive=True)
    os.utime(archive, ns=(0, 10**18))  # a different mtime even on a coarse-clock file system
    raw = load_stl10(archive, cache)
    assert len(list((cache / "stl10").iterdir())) == 2
    np.testing.assert_array_equal(raw.x_test, x_test)


def test_stl_without_unlabeled(tmp_path, stl, caplog):
    folder = write_stl10_binary(tmp_path, *stl[:4], None, archive=False)
    with caplog.at_level(logging.WARNING):
        raw = load_stl10(folder, cache_dir=tmp_path / "cache")
    assert raw.x_unlabeled is None
    assert "no unlabeled_X.bin" in caplog.text


def test_stl_class_names_file(tmp_path, stl):
    folder = write_stl10_binary(tmp_path, *stl, archive=False, class_names=[f"k{i}" for i in range(10)])
    assert load_stl10(folder, tmp_path / "cache").class_names[9] == "k9"
    (folder / "class_names.txt").unlink()
    assert load_stl10(folder, tmp_path / "cache").class_names == STL10_CLASSES
    (folder / "class_names.txt").write_text("a\nb\n")
    with pytest.raises(DataError, match=r"class_names.txt lists 2 class names, not 10"):
        load_stl10(folder, tmp_path / "cache")


def test_find_stl10(tmp_path, stl):
    assert find_stl10(tmp_path) is None
    assert describe_missing_stl10(tmp_path) == "no stl10_binary/, stl10_binary.tar.gz or train_X.bin"
    folder = write_stl10_binary(tmp_path, *stl[:4], None, archive=False)
    assert find_stl10(tmp_path) == folder and find_stl10(folder) == folder
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"folder .*empty holds no STL-10 files: no stl10_binary/"):
        load_stl10(tmp_path / "empty", tmp_path / "cache")


@pytest.mark.parametrize("name", ["train_X.bin", "unlabeled_X.bin"])
def test_stl_x_size_not_a_multiple(tmp_path, stl, name):
    folder = write_stl10_binary(tmp_path, *stl, archive=False)
    path = folder / name
    path.write_bytes(path.read_bytes()[:-100])
    size = (N_TRAIN if name == "train_X.bin" else N_UNLABELED) * 27648 - 100
    with pytest.raises(DataError) as err:
        load_stl10(folder, tmp_path / "cache")
    assert f"{path} is {size} bytes, not a multiple of 96*96*3=27648" in str(err.value)
    assert "truncated or not STL-10; download stl10_binary.tar.gz again" in str(err.value)


def test_stl_count_mismatch(tmp_path, stl):
    folder = write_stl10_binary(tmp_path, *stl, archive=False)
    (folder / "test_y.bin").write_bytes(bytes([1] * 7))
    with pytest.raises(
        DataError,
        match=rf"test images \({N_TEST} in .*test_X.bin\) and labels \(7 in .*test_y.bin\)",
    ):
        load_stl10(folder, tmp_path / "cache")


@pytest.mark.parametrize("bad", [0, 11])
def test_stl_labels_out_of_range(tmp_path, stl, bad):
    folder = write_stl10_binary(tmp_path, *stl, archive=False)
    (folder / "train_y.bin").write_bytes(bytes([1] * (N_TRAIN - 1) + [bad]))
    with pytest.raises(DataError, match=rf"train_y.bin has labels outside 1..10 \(e.g. {bad}\)"):
        load_stl10(folder, tmp_path / "cache")


@pytest.mark.parametrize("name", ["train_X.bin", "test_y.bin"])
def test_stl_missing_file(tmp_path, stl, name):
    folder = write_stl10_binary(tmp_path, *stl[:4], None, archive=False)
    (folder / name).unlink()
    with pytest.raises(DataError, match=rf"{folder} lacks {name}: the download or extraction is incomplete"):
        load_stl10(folder, tmp_path / "cache")


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_stl_invalid_archive_leaves_no_temp_dir(tmp_path, stl, damage):
    archive = write_stl10_binary(tmp_path, *stl, archive=True)
    content = archive.read_bytes()
    archive.write_bytes(b"not an archive" * 100 if damage == "garbage" else content[: len(content) // 2])
    with pytest.raises(
        DataError,
        match=r"stl10_binary.tar.gz could not be extracted .*download stl10_binary.tar.gz",
    ):
        load_stl10(archive, tmp_path / "cache")
    assert list((tmp_path / "cache" / "stl10").iterdir()) == []


def test_stl_archive_without_stl_files(tmp_path):
    archive = tmp_path / "stl10_binary.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("readme.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(DataError, match=r"holds no stl10_binary/train_X.bin"):
        load_stl10(archive, tmp_path / "cache")


def test_cifar_old_numpy_protocol2_pickles_load(tmp_path, cifar):
    # The originals are Python 2 / numpy 1.x pickles naming numpy.core.multiarray._reconstruct.
    folder = write_cifar10_python(tmp_path, *cifar, archive=False)
    data = np.zeros((2, 3072), np.uint8)
    data[1, 1024] = 77  # green plane, pixel (0, 0)
    old = pickle.dumps({b"data": data, b"labels": [3, 4]}, protocol=2)
    old = old.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray\n_reconstruct" in old
    (folder / "test_batch").write_bytes(old)
    raw = load_cifar10(folder)
    assert raw.y_test.tolist() == [3, 4] and raw.x_test[1, 0, 0].tolist() == [0, 77, 0]
