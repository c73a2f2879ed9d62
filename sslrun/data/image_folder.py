"""A user's own folder of images.

Layout of the folder:

    train/<class>/*      required, two classes or more; class names are the sorted subfolder
                         names, label = index
    test/<class>/*       optional; class folders must be a subset of train's
    unlabeled/**         optional; every image at any depth, labels never read

Without test/, a stratified fraction of each class is held out as the test split with a fixed
generator, so runs with different seeds are compared on the same test images.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sslrun.atomic import atomic_open
from sslrun.data.base import RawData
from sslrun.errors import DataError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")  # what tf.io.decode_image reads
ON_BAD_IMAGE = ("skip", "error")
CHANNELS = (1, 3)
HOLDOUT_SEED = 0  # fixed, never the run's seed: every run sees the same held-out test images
_BATCH = 512
_CACHE_VERSION = 3  # bump when the decoding or the cached arrays change, so old caches are not reused
_EXAMPLES = 3


@dataclass
class _Split:
    """The image files of one split in a fixed order, their labels (-1: none), what was skipped."""

    name: str
    paths: list[Path] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    non_images: list[Path] = field(default_factory=list)
    loose: list[Path] = field(default_factory=list)  # images outside any class folder


@dataclass
class _Decoded:
    x: np.ndarray
    y: np.ndarray
    bad: list[Path]
    paths: np.ndarray  # str, the file of each row of x


# ----------------------------------------------------------------------------- listing


def _check_root(path: str | Path) -> Path:
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise DataError(
            f"image folder {root} {what}; set dataset.path to a folder laid out as "
            "train/<class>/*.jpg (optionally test/<class>/* and unlabeled/**)"
        )
    if not (root / "train").is_dir():
        found = sorted(p.name for p in root.iterdir() if not p.name.startswith("."))[:10]
        raise DataError(
            f"image folder {root} has no train/ folder: expected {root}/train/<class>/*.jpg "
            f"(one subfolder per class), optionally test/<class>/* and unlabeled/**; "
            f"found {', '.join(found) or 'nothing'}; move the class folders into train/"
        )
    return root


def _subfolders(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _class_names(root: Path) -> tuple[str, ...]:
    names = _subfolders(root / "train")
    if not names:
        raise DataError(
            f"{root / 'train'} has no class subfolders: put the images of each class in "
            f"{root / 'train'}/<class name>/ (e.g. train/cat/1.jpg, train/dog/2.jpg)"
        )
    return tuple(names)


def _check_two_classes(root: Path, class_names: tuple[str, ...]) -> None:
    """A classifier needs two classes; one class folder is most often unlabeled images in train/."""
    if len(class_names) == 1:
        raise DataError(
            f"{root / 'train'} has one class folder, {class_names[0]!r}; a classifier needs at "
            "least two: put each class in its own folder under train/ (e.g. train/cat/*.png and "
            f"train/dog/*.png), and images without labels in {root / 'unlabeled'}/"
        )


def _check_test_classes(root: Path, class_names: tuple[str, ...]) -> None:
    extra = [name for name in _subfolders(root / "test") if name not in class_names]
    if extra:
        raise DataError(
            f"test class folder {root / 'test' / extra[0]} has no counterpart in {root / 'train'} "
            f"(classes come from train/: {', '.join(class_names)}); rename it to a train class "
            "or remove it"
        )


def walk_files(folder: Path) -> list[Path]:
    """Every file below `folder` at any depth, hidden files and folders left out, sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found.extend(Path(dirpath, f) for f in filenames if not f.startswith("."))
    return sorted(found)


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _add_files(split: _Split, files: list[Path], label: int) -> None:
    for file in files:
        if is_image(file):
            split.paths.append(file)
            split.labels.append(label)
        else:
            split.non_images.append(file)


def _list_labeled(root: Path, name: str, class_names: tuple[str, ...]) -> _Split:
    split = _Split(name)
    for label, class_name in enumerate(class_names):
        folder = root / name / class_name
        if folder.is_dir():  # test/ may lack some classes
            _add_files(split, walk_files(folder), label)
    for file in sorted((root / name).iterdir()):
        if file.is_file() and not file.name.startswith("."):
            (split.loose if is_image(file) else split.non_images).append(file)
    return split


def _list_splits(root: Path, class_names: tuple[str, ...]) -> dict[str, _Split]:
    splits = {"train": _list_labeled(root, "train", class_names)}
    if (root / "test").is_dir():
        splits["test"] = _list_labeled(root, "test", class_names)
    if (root / "unlabeled").is_dir():
        splits["unlabeled"] = _Split("unlabeled")
        _add_files(splits["unlabeled"], walk_files(root / "unlabeled"), -1)
    return splits


def _examples(files: list[Path], root: Path) -> str:
    return ", ".join(str(f.relative_to(root)) for f in files[:_EXAMPLES])


def _log_skipped_files(split: _Split, root: Path) -> None:
    if split.non_images:
        log.info(
            "%s: ignored %d non-image files, e.g. %s (images are %s)",
            split.name,
            len(split.non_images),
            _examples(split.non_images, root),
            " ".join(IMAGE_SUFFIXES),
        )
    if split.loose:
        log.warning(
            "%s: ignored %d images outside the class folders, e.g. %s; move them into %s/<class>/",
            split.name,
            len(split.loose),
            _examples(split.loose, root),
            split.name,
        )


def _check_every_class(labels: np.ndarray, class_names: tuple[str, ...], root: Path, what: str) -> None:
    counts = np.bincount(labels, minlength=len(class_names))
    empty = np.flatnonzero(counts == 0)
    if len(empty):
        folder = root / "train" / class_names[empty[0]]
        raise DataError(f"class folder {folder} has {what}; add images or remove the folder")


# ----------------------------------------------------------------------------- decoding


def decode_fn(image_size: int, channels: int) -> Callable:
    """Graph function: encoded bytes -> uint8 (image_size, image_size, channels)."""
    import tensorflow as tf

    def decode(data):
        if channels == 1:  # BMP and GIF decode only to RGB: convert those afterwards
            rgb_only = tf.logical_or(
                tf.equal(tf.strings.substr(data, 0, 2), "BM"),
                tf.equal(tf.strings.substr(data, 0, 3), "GIF"),
            )
            image = tf.cond(
                rgb_only,
                lambda: tf.image.rgb_to_grayscale(tf.io.decode_image(data, 3, expand_animations=False)),
                lambda: tf.io.decode_image(data, 1, expand_animations=False),
            )
        else:
            image = tf.io.decode_image(data, channels, expand_animations=False)
        shape = tf.shape(image)
        right_size = tf.logical_and(tf.equal(shape[0], image_size), tf.equal(shape[1], image_size))
        # Images already the right size pass through untouched: pixel-exact.
        image = tf.cond(right_size, lambda: image, lambda: _resize(image, image_size))
        return tf.ensure_shape(image, [image_size, image_size, channels])

    return decode


def _resize(image, image_size: int):
    import tensorflow as tf

    # antialias: large photos shrunk to 32 px alias badly without it
    resized = tf.image.resize(image, [image_size, image_size], antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)


def _decode_paths(paths: list[Path], image_size: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Decoded images of `paths` in order, and the indices of the files that could be decoded."""
    import tensorflow as tf

    out = np.empty((len(paths), image_size, image_size, channels), dtype=np.uint8)
    if not paths:
        return out, np.empty(0, dtype=np.int64)
    decode = decode_fn(image_size, channels)
    names = tf.constant([os.fsencode(p) for p in paths])
    ds = tf.data.Dataset.from_tensor_slices((tf.range(len(paths), dtype=tf.int64), names))
    # The index rides along so files dropped by ignore_errors() can be named and labels stay aligned.
    ds = ds.map(lambda i, p: (i, decode(tf.io.read_file(p))), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.ignore_errors().batch(_BATCH).prefetch(tf.data.AUTOTUNE)
    kept, filled = [], 0
    for index, images in ds.as_numpy_iterator():
        out[filled : filled + len(index)] = images
        kept.append(index)
        filled += len(index)
    return out[:filled], (np.concatenate(kept) if kept else np.empty(0, dtype=np.int64))


def why_unreadable(path: Path, image_size: int, channels: int) -> str:
    """TensorFlow's reason for one file, for the error message (one file, eager: cheap)."""
    import tensorflow as tf

    try:
        decode_fn(image_size, channels)(tf.io.read_file(str(path)))
    except (tf.errors.OpError, ValueError) as err:
        message = getattr(err, "message", str(err))
        # TensorFlow's bookkeeping ({{node ...}}, [Op:DecodeImage], a trailing "name: ") is not the reason
        return re.sub(r"\{\{[^}]*\}\}|\[Op:\w+\]|\s*name:[ \t]*$", "", message, flags=re.M).strip().splitlines()[0]
    return "decoded when retried alone"


def _decode_split(split: _Split, root: Path, image_size: int, channels: int, on_bad_image: str) -> _Decoded:
    _log_skipped_files(split, root)
    x, kept = _decode_paths(split.paths, image_size, channels)
    dropped = np.setdiff1d(np.arange(len(split.paths)), kept)
    bad = [split.paths[i] for i in dropped]
    if bad and on_bad_image == "error":
        raise DataError(
            f"image {bad[0]} could not be decoded ({why_unreadable(bad[0], image_size, channels)}); "
            f"{len(bad)} unreadable in {split.name}/: fix or remove them, or set "
            "dataset.on_bad_image=skip to skip unreadable images"
        )
    if bad:
        log.warning("%s: skipped %d unreadable images, e.g. %s", split.name, len(bad), _examples(bad, root))
    paths = np.array([str(p) for p in split.paths], dtype=str)[kept]
    return _Decoded(x, np.asarray(split.labels, dtype=np.int64)[kept], bad, paths)


# ----------------------------------------------------------------------------- splits


def _check_options(image_size: int, channels: int, on_bad_image: str) -> None:
    if on_bad_image not in ON_BAD_IMAGE:
        raise DataError(f"dataset.on_bad_image={on_bad_image!r} is not one of {', '.join(ON_BAD_IMAGE)}")
    if channels not in CHANNELS:
        raise DataError(f"dataset.channels={channels!r} is not supported: use 1 (grayscale) or 3 (RGB)")
    if not isinstance(image_size, int) or image_size < 1:
        raise DataError(f"dataset.image_size={image_size!r} must be a positive whole number of pixels, e.g. 32")


def _check_fraction(test_fraction: float, root: Path) -> None:
    if not 0 < test_fraction < 1:
        raise DataError(
            f"dataset.test_fraction={test_fraction!r} must be between 0 and 1 (exclusive): {root} has "
            "no test/ folder, so that fraction of each class is held out as the test split; "
            "set e.g. dataset.test_fraction=0.2 or add a test/<class>/ folder"
        )


def _held_out(y: np.ndarray, test_fraction: float) -> np.ndarray:
    """Sorted indices of a stratified `test_fraction` of each class; depends only on y."""
    chosen = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        count = int(np.floor(len(members) * test_fraction + 0.5))
        count = min(max(count, 1), len(members) - 1)  # keep at least one image on each side
        rng = np.random.default_rng([HOLDOUT_SEED, int(label)])
        chosen.append(rng.permutation(members)[:count])
    return np.sort(np.concatenate(chosen))


def _train_test(
    splits: dict[str, _Decoded], root: Path, test_fraction: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str, np.ndarray, np.ndarray]:
    """x_train, y_train, x_test, y_test, the test split's name, the train and the test images' files."""
    train = splits["train"]
    if "test" in splits:
        return train.x, train.y, splits["test"].x, splits["test"].y, "test", train.paths, splits["test"].paths
    test = _held_out(train.y, test_fraction)
    keep = np.ones(len(train.y), dtype=bool)
    keep[test] = False
    log.info(
        "%s has no test/ folder: held out %d of %d train images (%g of each class, the same for every "
        "seed) as the test split",
        root,
        len(test),
        len(train.y),
        test_fraction,
    )
    return (
        train.x[keep],
        train.y[keep],
        train.x[test],
        train.y[test],
        "held-out test",
        train.paths[keep],
        train.paths[test],
    )


def _decode_all(root: Path, listing: dict[str, _Split], class_names: tuple[str, ...], settings: dict) -> RawData:
    started = time.perf_counter()
    decode = {k: settings[k] for k in ("image_size", "channels", "on_bad_image")}
    decoded = {name: _decode_split(split, root, **decode) for name, split in listing.items()}
    _check_every_class(decoded["train"].y, class_names, root, "only unreadable or non-image files")
    x_train, y_train, x_test, y_test, test_name, train_paths, test_paths = _train_test(
        decoded, root, settings["test_fraction"]
    )
    unlabeled = decoded["unlabeled"].x if "unlabeled" in decoded else None
    unlabeled_paths = decoded["unlabeled"].paths if "unlabeled" in decoded else None
    if unlabeled is not None and not len(unlabeled):
        log.warning("%s has no readable images; going on without unlabeled images", root / "unlabeled")
        unlabeled = unlabeled_paths = None
    bad = sum(len(d.bad) for d in decoded.values())
    source = (
        f"image folder {root} (train {len(y_train):,} / {test_name} {len(y_test):,} / "
        f"unlabeled {0 if unlabeled is None else len(unlabeled):,}" + (f"; {bad:,} bad images skipped)" if bad else ")")
    )
    log.info("decoded %s in %.1fs", source, time.perf_counter() - started)
    return RawData(
        x_train, y_train, x_test, y_test, source, class_names, unlabeled, train_paths, unlabeled_paths, test_paths
    )


# ----------------------------------------------------------------------------- cache


def _cache_key(root: Path, listing: dict[str, _Split], class_names: tuple[str, ...], settings: dict) -> str:
    digest = hashlib.sha256(json.dumps([_CACHE_VERSION, str(root), class_names, settings], sort_keys=True).encode())
    for split in listing.values():
        for path in split.paths:
            stat = path.stat()
            line = f"{path.relative_to(root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n"
            digest.update(line.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:32]


def _load_cache(file: Path) -> RawData | None:
    if not file.is_file():
        return None
    try:
        with np.load(file) as z:
            unlabeled = z["x_unlabeled"] if "x_unlabeled" in z.files else None
            raw = RawData(
                z["x_train"],
                z["y_train"],
                z["x_test"],
                z["y_test"],
                str(z["source"]),
                tuple(str(c) for c in z["class_names"]),
                unlabeled,
                z["train_paths"],
                z["unlabeled_paths"] if "unlabeled_paths" in z.files else None,
                z["test_paths"],
            )
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        log.warning("decoded-image cache %s is unreadable (%s); decoding the images again", file, err)
        return None
    log.info("reusing decoded images from %s: %s", file, raw.source)
    return raw


def _save_cache(file: Path, raw: RawData) -> None:
    arrays = {
        "x_train": raw.x_train,
        "y_train": raw.y_train,
        "x_test": raw.x_test,
        "y_test": raw.y_test,
        "source": np.array(raw.source),
        "class_names": np.array(raw.class_names),
        "train_paths": raw.train_paths,
        "test_paths": raw.test_paths,
    }
    if raw.x_unlabeled is not None:
        arrays["x_unlabeled"] = raw.x_unlabeled
        arrays["unlabeled_paths"] = raw.unlabeled_paths
    try:
        with atomic_open(file, "wb", perms=0o644) as fh:  # a reader never sees half a file
            np.savez(fh, **arrays)
    except OSError as err:  # the cache only saves time: a run goes on without it
        log.warning("could not write the decoded-image cache %s (%s); the next run decodes again", file, err)
        return
    log.info("saved decoded images to %s", file)


# ----------------------------------------------------------------------------- public


def load_image_folder(
    path: str | Path,
    image_size: int,
    channels: int,
    *,
    on_bad_image: str = "skip",
    test_fraction: float = 0.2,
    cache_dir: Path | None = None,
) -> RawData:
    """Decode a folder of images (layout in the module docstring) to uint8 NHWC arrays.

    Every image is resized to image_size x image_size (not resized when it already is).
    Unreadable images are skipped and counted, or with on_bad_image="error" raise DataError.
    With `cache_dir`, decoded arrays are kept in cache_dir/image_folder/<key>.npz, the key
    covering the file list with sizes and mtimes and every argument.
    """
    root = _check_root(path)  # first: a missing folder is the problem to name, not the sizes chosen from it
    _check_options(image_size, channels, on_bad_image)
    class_names = _class_names(root)
    _check_two_classes(root, class_names)  # not in describe_image_folder: it reports such a folder
    if (root / "test").is_dir():
        _check_test_classes(root, class_names)
    else:
        _check_fraction(test_fraction, root)
    listing = _list_splits(root, class_names)
    _check_every_class(
        np.asarray(listing["train"].labels, dtype=np.int64),
        class_names,
        root,
        f"no image files ({' '.join(IMAGE_SUFFIXES)})",
    )
    if "test" in listing and not listing["test"].paths:
        raise DataError(
            f"{root / 'test'} has no images; add test/<class>/ images, or remove test/ to hold out "
            "dataset.test_fraction of train/ instead"
        )
    settings = {
        "image_size": image_size,
        "channels": channels,
        "on_bad_image": on_bad_image,
        "test_fraction": test_fraction,
    }
    cache_file = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / "image_folder" / f"{_cache_key(root, listing, class_names, settings)}.npz"
        cached = _load_cache(cache_file)
        if cached is not None:
            return cached
    raw = _decode_all(root, listing, class_names, settings)
    if cache_file is not None:
        _save_cache(cache_file, raw)
    return raw


def describe_image_folder(path: str | Path) -> dict:
    """Class names and image-file counts per split, without decoding anything.

    {"path", "class_names", "train": {class: n}, "test": {class: n} or None,
     "unlabeled": n or None, "non_image_files": {split: n}}
    """
    root = _check_root(path)
    class_names = _class_names(root)
    if (root / "test").is_dir():
        _check_test_classes(root, class_names)
    listing = _list_splits(root, class_names)

    def per_class(split: _Split) -> dict[str, int]:
        counts = np.bincount(np.asarray(split.labels, dtype=np.int64), minlength=len(class_names))
        return {name: int(n) for name, n in zip(class_names, counts, strict=True)}

    return {
        "path": str(root),
        "class_names": list(class_names),
        "train": per_class(listing["train"]),
        "test": per_class(listing["test"]) if "test" in listing else None,
        "unlabeled": len(listing["unlabeled"].paths) if "unlabeled" in listing else None,
        "non_image_files": {name: len(split.non_images) for name, split in listing.items()},
    }
