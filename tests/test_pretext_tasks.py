"""Every registered pretext task: a one-epoch run on synthetic data through the real config and artifacts."""

import numpy as np
import pytest
from conftest import run_cli
from hydra import compose, initialize_config_dir

from sslrun.cli import conf_dir
from sslrun.config import PRETEXT_SCHEMAS, register_schemas
from sslrun.downstream.pretrained import load_pretrained_encoder
from sslrun.help import register_help
from sslrun.pipeline import load_splits
from sslrun.pretext import PRETEXTS
from sslrun.pretext.base import PretextTask
from sslrun.pretext.colorization import fold_first_conv_to_luma
from sslrun.pretext.colour import gray3
from sslrun.pretext.rotation import RotationTask
from sslrun.pretext.twoview import TwoViewTask
from sslrun.training.pretext import run_pretext

register_schemas()
register_help(conf_dir())

COLOUR_ONLY = [name for name in PRETEXTS.names() if PRETEXTS.get(name).needs_colour]
TWO_VIEW = [name for name in PRETEXTS.names() if issubclass(PRETEXTS.get(name), TwoViewTask)]


def _cfg(name: str, tmp_path, channels: int, extra=()):
    overrides = [
        f"pretext={name}",
        "dataset=synthetic",
        f"dataset.channels={channels}",
        "dataset.train_size=200",
        "dataset.test_size=50",
        "encoder.width=0.25",
        "trainer.epochs=1",
        "trainer.batch_size=32",
        "trainer.progress=false",
        "downstream.labels_per_class=3",
        "downstream.val_per_class=2",
        f"cache_dir={tmp_path}",
        *extra,
    ]
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return compose("config", overrides=overrides)


@pytest.mark.parametrize("name", PRETEXTS.names())
def test_one_epoch_on_synthetic_writes_loadable_encoder(name, tmp_path):
    channels = 3 if name in COLOUR_ONLY else 1
    cfg = _cfg(name, tmp_path, channels)
    splits, _ = load_splits(cfg)
    info = run_pretext(cfg, splits, tmp_path / "pretext")
    assert (tmp_path / "pretext/COMPLETE").is_file() and info["task"] == name
    assert np.isfinite(info["loss"]) and info["epochs"] == 1
    history = (tmp_path / "pretext/history.csv").read_text().splitlines()
    assert len(history) == 2 and "val_loss" in history[0]
    health = {"rankme", "embedding_std"} | ({"alignment", "uniformity"} if name in TWO_VIEW else set())
    assert health <= set(history[0].split(",")) and 1 <= info["rankme"] <= info["embedding_dim"]
    assert 0 <= info["embedding_std"] and info["collapsed_epochs"] == []
    if name in TWO_VIEW:  # two-view tasks report the online linear probe, and their views' alignment
        assert "probe_accuracy" in history[0] and 0 <= info["val_probe_accuracy"] <= 1
        assert 0 <= info["alignment"] <= 4 and -4 <= info["uniformity"] <= 0
    encoder, meta = load_pretrained_encoder(tmp_path / "pretext", splits.image_shape)
    assert meta["task"] == name and encoder(splits.test_x[:2].astype("float32") / 255).shape[0] == 2


@pytest.mark.parametrize("name", PRETEXTS.names())
def test_every_task_is_a_pretext_task_with_the_schema_its_yaml_extends(name):
    task = PRETEXTS.get(name)
    assert issubclass(task, PretextTask) and task.task_name == name and task.schema is PRETEXT_SCHEMAS.get(name)
    assert (
        sorted(p.stem for p in (conf_dir() / "pretext").glob("*.yaml")) == PRETEXTS.names() == PRETEXT_SCHEMAS.names()
    )


def test_a_task_that_names_another_schema_than_the_stored_one_is_refused(monkeypatch):
    from sslrun.config import SimCLRConfig

    monkeypatch.setattr(PRETEXTS, "_entries", dict(PRETEXTS._entries))
    monkeypatch.setattr(PRETEXT_SCHEMAS, "_entries", dict(PRETEXT_SCHEMAS._entries))
    PRETEXT_SCHEMAS.register("unpaired")(SimCLRConfig)

    class Unpaired(TwoViewTask):
        pass  # TwoViewConfig

    with pytest.raises(
        ValueError, match="'unpaired' names TwoViewConfig as its schema, but /schema/pretext/unpaired is SimCLRConfig"
    ):
        PRETEXTS.register("unpaired")(Unpaired)
    assert "unpaired" not in PRETEXTS


@pytest.mark.parametrize("name", COLOUR_ONLY)
def test_colour_only_task_refuses_grayscale_data(name, tmp_path):
    res = run_cli([f"pretext={name}", "dataset=mnist", "hydra.run.dir=r"], tmp_path)
    assert res.returncode == 2
    assert f"pretext={name} needs colour images, but dataset=mnist has 1 channel" in res.stderr
    assert not (tmp_path / "r/pretext").exists()


def test_folded_first_conv_computes_on_colour_what_it_learned_on_gray():
    from sslrun.encoders import build_encoder

    enc = build_encoder("small_cnn", (16, 16, 3), 0.25)
    x = np.random.default_rng(0).random((4, 16, 16, 3)).astype("float32")
    before = enc(gray3(x), training=False).numpy()  # what the pretext task trained on
    fold_first_conv_to_luma(enc)
    np.testing.assert_allclose(enc(x, training=False).numpy(), before, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(enc(gray3(x), training=False).numpy(), before, rtol=1e-4, atol=1e-5)


def test_rgb_to_lab_matches_known_values():
    from sslrun.pretext.colour import rgb_to_lab

    rgb = np.array([[[[1, 1, 1], [0, 0, 0], [1, 0, 0], [0, 0, 1]]]], "float32")
    lab = rgb_to_lab(rgb).numpy()[0, 0]
    # reference values (sRGB D65, e.g. colormine / skimage.color.rgb2lab)
    np.testing.assert_allclose(lab[0], [100, 0, 0], atol=0.05)
    np.testing.assert_allclose(lab[1], [0, 0, 0], atol=0.05)
    np.testing.assert_allclose(lab[2], [53.24, 80.09, 67.20], atol=0.1)
    np.testing.assert_allclose(lab[3], [32.30, 79.19, -107.86], atol=0.1)


def test_byol_target_moves_by_ema_only(tmp_path):
    cfg = _cfg("byol", tmp_path, 1, ["trainer.epochs=1"])
    splits, _ = load_splits(cfg)
    from sslrun.encoders import build_encoder
    from sslrun.training.pretext import build_task

    task = build_task(cfg.pretext, build_encoder("small_cnn", splits.image_shape, 0.25), 0, 10)
    pairs = task._pairs()
    assert all(np.array_equal(t.numpy(), o.numpy()) for t, o in pairs)  # starts as a copy
    online_ids = {id(v) for v in task.ssl_variables()}
    assert not any(id(t) in online_ids for t, _ in pairs)  # the optimizer never touches the target


def test_rotation_conv_head_folds_flat_features_back_into_the_map():
    from sslrun.encoders import build_encoder

    enc = build_encoder("seed001_cnn", (28, 28, 1))  # 14x14x64 -> 7x7 -> 7x7x32 -> 3x3x32 -> 288
    task = RotationTask.create(enc, mode="all", head_conv=16)
    logits = task(np.zeros((2, 28, 28, 1), "float32"))
    # seed 001's model_pre: Conv(16, stride 2) on 3x3x32 -> 2x2x16 -> 64 -> Dense(4)
    assert logits.shape == (2, 4) and [tuple(layer.output.shape[1:]) for layer in task.head.layers] == [
        (3, 3, 32),
        (2, 2, 16),
        (64,),
        (4,),
    ]
    with pytest.raises(ValueError, match="pretext.head_conv=16 needs an encoder that ends by flattening"):
        RotationTask.create(build_encoder("small_cnn", (28, 28, 1), 0.25), head_conv=16)


@pytest.mark.parametrize("init, std", [("random_normal", 0.05), ("glorot_uniform", None)])
def test_head_init_sets_the_rotation_heads_and_the_classifiers_kernels(init, std):
    """seed 001's document draws its heads from N(0, 0.05); Keras' default is Glorot uniform."""
    from sslrun.downstream.finetune import classifier
    from sslrun.encoders import build_encoder

    enc = build_encoder("seed001_cnn", (28, 28, 1))
    task = RotationTask.create(enc, mode="all", head_conv=16, head_init=init)
    task(np.zeros((1, 28, 28, 1), "float32"))
    model = classifier(enc, 10, 0.0, head_init=init)
    kernels = [layer.kernel for layer in task.head.layers if hasattr(layer, "kernel")]
    kernels.append(model.get_layer("classifier").kernel)
    assert len(kernels) == 3  # conv, Dense(4), Dense(10)
    for kernel in kernels:
        values = np.asarray(kernel).ravel()
        fan_in, fan_out = np.prod(kernel.shape[:-1]), kernel.shape[-1] * np.prod(kernel.shape[:-2])
        if std is not None:
            assert values.std() == pytest.approx(std, rel=0.25)
        else:  # U(-l, l), l = sqrt(6 / (fan_in + fan_out)): nothing beyond l
            limit = np.sqrt(6 / (fan_in + fan_out))
            assert np.abs(values).max() <= limit and values.std() == pytest.approx(limit / np.sqrt(3), rel=0.25)


def test_smaller_views_train_an_encoder_for_the_full_images(tmp_path):
    cfg = _cfg("simclr", tmp_path, 1, ["pretext.augment.size=12", "dataset.image_size=16"])
    splits, _ = load_splits(cfg)
    info = run_pretext(cfg, splits, tmp_path / "pretext")
    assert np.isfinite(info["loss"])
    encoder, _ = load_pretrained_encoder(tmp_path / "pretext", splits.image_shape)
    assert encoder.input_shape[1:] == splits.image_shape == (16, 16, 1)


def test_view_size_with_a_flattening_encoder_is_refused(tmp_path):
    res = run_cli(
        [
            "pretext=simclr",
            "encoder=seed004_cnn",
            "dataset=synthetic",
            "dataset.train_size=200",
            "downstream.labels_per_class=3",
            "downstream.val_per_class=2",
            "pretext.augment.size=20",
            "hydra.run.dir=r",
            "trainer.progress=false",
        ],
        tmp_path,
    )
    assert res.returncode == 2, res.stderr
    assert "pretext.augment.size: encoder 'seed004_cnn' flattens a fixed grid" in res.stderr
    assert not (tmp_path / "r/pretext/COMPLETE").exists()


def test_downstream_view_size_is_refused_before_any_work(tmp_path):
    res = run_cli(["experiment=smoke", "downstream.augment.size=16", "hydra.run.dir=r"], tmp_path)
    assert res.returncode == 2 and "downstream.augment.size=16: the classifier trains" in res.stderr


@pytest.mark.parametrize("name", TWO_VIEW)
def test_online_probe_off_trains_on_unlabeled_batches_alone(name, tmp_path):
    """pretext.online_probe=false: no probe, no labeled batches in the stream, no probe columns."""
    from sslrun.training.pretext import build_task, task_data

    cfg = _cfg(name, tmp_path, 1, ["pretext.online_probe=false", "trainer.steps_per_epoch=2"])
    splits, _ = load_splits(cfg)
    task = build_task(cfg.pretext, _encoder(splits), cfg.seed, splits.num_classes)
    assert task.probe is None and not task.uses_labels
    train, val = task_data(task, splits, cfg.trainer, cfg.seed, 0, 2)
    assert train.element_spec.shape[1:] == splits.image_shape and val.element_spec.shape[1:] == splits.image_shape
    info = run_pretext(cfg, splits, tmp_path / "pretext")
    header = (tmp_path / "pretext/history.csv").read_text().splitlines()[0]
    assert "loss" in header and "probe" not in header and "val_probe_accuracy" not in info and info["epochs"] == 1


def _encoder(splits):
    from sslrun.encoders import build_encoder

    return build_encoder("small_cnn", splits.image_shape, 0.25)
