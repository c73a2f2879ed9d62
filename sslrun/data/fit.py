"""Defaults that fit the data: for dataset=image_folder, the image size, the channels and the encoder are chosen
from the images unless the command line sets them (dataset.image_size, dataset.channels, encoder=...).

The folder's images are sampled (at most SAMPLE of them, spread over the classes and splits) and only their
headers are read (PIL opens lazily), so this takes well under a second on 50,000 files:

- channels: 1 when every sampled image is grayscale (PIL modes 1, L, LA, I, I;16, F), else 3.
- image_size: the median shorter side when it is at most SMALL_MAX px (28, 32: used as they are); larger images
  are resized to 64 (a median below 80 px) or 96 px (the size of STL-10, which a CPU trains in minutes per epoch).
- encoder=auto (the default): on the standard data sets small_cnn, as always; on an image folder small_cnn for
  images of at most 48 px or folders of fewer than RESNET_MIN_IMAGES images;
  resnet18 (ImageNet stem: a 4x downsampling first) for larger images in larger folders.

The pretext views' augmentation preset (pretext.augment.preset=auto) is chosen by augment.py from the
channels and size this picks. Every choice and its reason is logged, and lands in .hydra/ and metrics.json as
the value used.
"""

from __future__ import annotations

import logging
import statistics
from pathlib import Path

from omegaconf import DictConfig, open_dict

log = logging.getLogger("sslrun")

SAMPLE = 400
SMALL_MAX = 40
RESNET_MIN_IMAGES = 2000
STANDARD_ENCODER = "small_cnn"
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F", "P;L"}


def _sample(files: list[Path], n: int) -> list[Path]:
    step = max(1, len(files) // n)
    return files[::step][:n]


def survey(root: Path) -> dict:
    """Sizes and modes of a sample of the folder's images, and how many images it holds."""
    from PIL import Image

    from sslrun.data.image_folder import is_image, walk_files

    files = [f for f in walk_files(root) if is_image(f)]
    sides, gray, read = [], 0, 0
    for path in _sample(files, SAMPLE):
        try:
            with Image.open(path) as img:  # the header only
                sides.append(min(img.size))
                gray += img.mode in GRAY_MODES
                read += 1
        except (OSError, ValueError):
            continue  # unreadable files are the loader's to count and name
    return {
        "images": len(files),
        "sampled": read,
        "median_side": statistics.median(sides) if sides else None,
        "all_gray": read > 0 and gray == read,
    }


def fit_to_data(cfg: DictConfig) -> None:
    """Fill dataset.image_size, dataset.channels (null) and encoder.name (auto) from the images, in place."""
    d, enc = cfg.dataset, cfg.encoder
    if d.name != "image_folder" or not d.get("path"):
        if enc.name == "auto":  # the standard sets keep the fast default; their presets name their own
            with open_dict(cfg):
                enc.name = STANDARD_ENCODER
        return
    if d.image_size is not None and d.channels is not None and enc.name != "auto":
        return
    if not Path(d.path).expanduser().is_dir():
        return  # the loader names the missing folder
    facts = survey(Path(d.path).expanduser())
    if not facts["sampled"]:
        return  # no readable image: the loader says so, naming the folder
    side, seen = facts["median_side"], f"{facts['sampled']} of {facts['images']:,} images sampled"
    with open_dict(cfg):
        if d.channels is None:
            d.channels = 1 if facts["all_gray"] else 3
            log.info(
                "dataset.channels=%d: %s (%s; set dataset.channels to choose)",
                d.channels,
                "every image is grayscale" if d.channels == 1 else "the images have colour",
                seen,
            )
        if d.image_size is None:
            d.image_size = int(side) if side <= SMALL_MAX else (64 if side < 80 else 96)
            why = "used as it is" if side <= SMALL_MAX else "resized: larger images cost more than they give on a CPU"
            log.info(
                "dataset.image_size=%d: median shorter side %d px, %s (%s; set dataset.image_size to choose)",
                d.image_size,
                side,
                why,
                seen,
            )
        if enc.name == "auto":
            small = d.image_size <= 48 or facts["images"] < RESNET_MIN_IMAGES
            enc.name = "small_cnn" if small else "resnet18"
            why = (
                f"{d.image_size} px images"
                if d.image_size <= 48
                else f"only {facts['images']:,} images"
                if small
                else f"{d.image_size} px images and {facts['images']:,} of them"
            )
            log.info("encoder=%s: %s (set encoder=... to choose)", enc.name, why)
