"""Every string-valued option of every schema, given a wrong value on the command line: one line on
stderr naming it, exit 1 (composition) or 2 (a check), no traceback. Enumerated from the schemas, so a
new option is tested without new test code."""

from __future__ import annotations

import dataclasses
import typing
from enum import Enum

import pytest
from conftest import run_cli

from sslrun import config
from sslrun.cli import PLUGINS, check_plugins, one_line
from sslrun.errors import SslrunError
from sslrun.pretext import PRETEXTS

# schema -> the command-line option that selects a YAML extending it (the first one for a shared field)
OPTIONS = {
    config.SyntheticDatasetConfig: "dataset=synthetic",
    config.ImageFolderDatasetConfig: "dataset=image_folder",
    **{PRETEXTS.get(name).schema: f"pretext={name}" for name in PRETEXTS.names()},
    config.EncoderConfig: "encoder=small_cnn",
    config.FinetuneConfig: "downstream=finetune",
    config.TrainerConfig: "trainer=default",
}
GROUPS = {
    "dataset": config.DatasetConfig,
    "pretext": config.PretextConfig,
    "encoder": config.EncoderConfig,
    "downstream": config.DownstreamConfig,
    "trainer": config.TrainerConfig,
}
# Free-form strings: a wrong value is a place that does not exist, tested with the data sources and runs.
PATHS = {"path", "cache_dir", "data_dir", "from"}


def _is_string(kind) -> bool:
    kinds = typing.get_args(kind) or (kind,)
    if typing.get_origin(kind) is list:
        return _is_string(kinds[0])
    return any(k is str or (isinstance(k, type) and issubclass(k, Enum)) for k in kinds)


def _string_fields(schema, prefix: str):
    hints = typing.get_type_hints(schema)  # each field's names looked up in the module that declares it
    for name, kind in hints.items():
        default = getattr(schema, name, None)
        if dataclasses.is_dataclass(kind):
            yield from _string_fields(kind, f"{prefix}{name}.")
        elif name not in PATHS and _is_string(kind):
            yield f"{prefix}{name}", typing.get_origin(kind) is list, default


def _owner(schema, name: str):
    """The schema that declares the field (a field is tested once, where it is declared)."""
    return next(c for c in reversed(schema.__mro__) if name in vars(c).get("__annotations__", {}))


def _cases() -> list[tuple[str, list[str]]]:
    cases = {}
    for schema, option in OPTIONS.items():
        group = option.split("=")[0]
        for key, is_list, _ in _string_fields(schema, f"{group}."):
            top = key.split(".")[1]
            owner = _owner(schema, top)
            value = "[not_a_thing]" if is_list else "not_a_thing"
            colour = group == "pretext" and PRETEXTS.get(option.split("=")[1]).needs_colour
            select = [option] + (["dataset=cifar10"] if colour else [])
            cases.setdefault((owner, key), (key, [*select, f"{key}={value}"]))
    for key, _, _ in _string_fields(config.Config, ""):
        if key.split(".")[0] not in GROUPS:
            cases[(config.Config, key)] = (key, [f"{key}=not_a_thing"])
    return sorted(cases.values())


CASES = _cases()


def test_the_enumeration_finds_the_options_named_in_the_issue():
    keys = {key for key, _ in CASES}
    assert {
        "downstream.optimizer",
        "trainer.optimizer",
        "downstream.tta",
        "pretext.mode",
        "downstream.evals",
        "downstream.patience_monitor",
        "pretext.augment.preset",
        "dataset.name",
        "stage",
    } <= keys
    assert len(CASES) >= 25


@pytest.mark.parametrize(("key", "overrides"), CASES, ids=[" ".join(o) for _, o in CASES])
def test_a_wrong_string_value_is_one_line_and_a_clean_exit(key, overrides, tmp_path):
    res = run_cli(
        ["experiment=smoke", "trainer.progress=false", "tensorboard=false", *overrides, "hydra.run.dir=run"],
        tmp_path,
        timeout=120,
    )
    assert res.returncode in (1, 2), (res.returncode, res.stderr[-2000:])
    lines = res.stderr.strip().splitlines()
    assert "Traceback" not in res.stderr and len(lines) == 1, res.stderr[-2000:]
    assert lines[0].startswith("sslrun: error: ") and "not_a_thing" in lines[0], lines[0]
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_head_conv_on_an_encoder_without_a_feature_map(tmp_path):
    res = run_cli(["experiment=smoke", "pretext.head_conv=16", "hydra.run.dir=run"], tmp_path, timeout=120)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == [
        "sslrun: error: pretext.head_conv=16 needs an encoder that ends by flattening a feature map (such as "
        "seed001_cnn); encoder 'small_cnn' ends in GlobalAveragePooling2D: set pretext.head_conv=0"
    ]


def test_a_misspelt_key_and_a_wrong_type_are_one_line(tmp_path):
    for arg, said in (
        ("trainr.epochs=3", "Key 'trainr' not in 'Config'"),
        ("trainer.epochs=abc", "'abc' of type 'str' could not be converted to Integer"),
        ("dataset=nope", "dataset=nope: no such option; available: cifar10, fashion_mnist"),
    ):
        res = run_cli(["experiment=smoke", arg], tmp_path, timeout=60)
        assert res.returncode == 1 and res.stderr.count("\n") == 1 and said in res.stderr, res.stderr


@pytest.mark.parametrize("override", [f"{group}={name}" for group, names in PLUGINS.items() for name in names])
def test_a_launcher_without_its_plugin_says_how_to_install_it(override):
    with pytest.raises(
        SslrunError,
        match=r"needs Hydra's hydra-\w+-\w+ plugin, which is not installed: "
        r"pip install 'sslrun\[sweep\]'",
    ):
        check_plugins(["seed=1", override], installed=lambda module: False)
    check_plugins([override])  # installed here (the test extra includes the sweep plugins)


def test_one_line_keeps_hydra_s_message_and_omegaconf_s_cause():
    from hydra.errors import ConfigCompositionException
    from omegaconf.errors import ValidationError

    err = ConfigCompositionException("Error merging override x.y=z")
    err.__cause__ = ValidationError("Invalid value 'z', expected one of [a, b]\n    full_key: x.y\n    object_type=X")
    assert one_line(err) == "Error merging override x.y=z: Invalid value 'z', expected one of [a, b]"


def test_the_optimizer_enum_lists_what_make_optimizer_builds():
    from sslrun.training.optim import OPTIMIZERS

    assert [o.value for o in config.Optimizer] == list(OPTIMIZERS)
