"""Defaults that fit the data (sslrun/data/fit.py): image size, channels and encoder from an image folder."""

import logging

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from sslrun.data import fit


def _folder(tmp_path, size: tuple[int, int], mode: str, per_class: int = 3):
    for name in ("a", "b"):
        (tmp_path / "train" / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.random.default_rng(i).integers(
                0, 255, (size[1], size[0], 3 if mode == "RGB" else 1), dtype=np.uint8
            )
            Image.fromarray(pixels.squeeze(), mode).save(tmp_path / "train" / name / f"{i}.png")
    return tmp_path


def _cfg(path, **dataset):
    return OmegaConf.create(
        {
            "dataset": {"name": "image_folder", "path": str(path), "image_size": None, "channels": None, **dataset},
            "encoder": {"name": "auto"},
        }
    )


@pytest.mark.parametrize(
    ("size", "mode", "want"),
    [((28, 28), "L", (28, 1)), ((32, 40), "RGB", (32, 3)), ((70, 60), "RGB", (64, 3)), ((500, 375), "L", (96, 1))],
)
def test_size_and_channels_from_the_images(tmp_path, size, mode, want, caplog):
    cfg = _cfg(_folder(tmp_path, size, mode))
    with caplog.at_level(logging.INFO, "sslrun"):
        fit.fit_to_data(cfg)
    assert (cfg.dataset.image_size, cfg.dataset.channels, cfg.encoder.name) == (*want, "small_cnn")
    assert "median shorter side" in caplog.text and "set dataset.image_size to choose" in caplog.text


def test_large_images_in_a_large_folder_get_resnet18(tmp_path, monkeypatch):
    monkeypatch.setattr(fit, "RESNET_MIN_IMAGES", 6)
    cfg = _cfg(_folder(tmp_path, (120, 100), "RGB"))
    fit.fit_to_data(cfg)
    assert (cfg.dataset.image_size, cfg.encoder.name) == (96, "resnet18")


def test_what_the_command_line_sets_is_kept(tmp_path):
    cfg = _cfg(_folder(tmp_path, (120, 100), "RGB"), image_size=48, channels=1)
    cfg.encoder.name = "wide_cnn"
    fit.fit_to_data(cfg)
    assert (cfg.dataset.image_size, cfg.dataset.channels, cfg.encoder.name) == (48, 1, "wide_cnn")


def test_standard_sets_keep_the_fast_default():
    cfg = OmegaConf.create({"dataset": {"name": "stl10", "image_size": 96, "channels": 3}, "encoder": {"name": "auto"}})
    fit.fit_to_data(cfg)
    assert cfg.encoder.name == "small_cnn"
