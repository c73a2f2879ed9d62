"""Every option of every config group composes against the schemas; bad overrides fail."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError

from sslrun.cli import conf_dir
from sslrun.config import PRETEXT_SCHEMAS, register_schemas
from sslrun.help import GROUPS, groups_text, register_help

CONF = conf_dir()
register_schemas()
register_help(CONF)

OPTIONS = [(g, f.stem) for g in GROUPS for f in sorted((CONF / g).glob("*.yaml"))]


def _compose(overrides):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


@pytest.mark.parametrize("group,option", OPTIONS)
def test_every_option_composes(group, option):
    cfg = _compose([f"{group}={option}"])
    if group != "experiment":
        assert cfg[group].get("name", option) == option or group == "trainer"
    assert cfg.seed == 0 and cfg.stage.value == "all"


def _restated(yaml: dict, schema: DictConfig, prefix: str = "") -> list[str]:
    """The keys of a YAML option whose value its schema already gives (one source for each default)."""
    defaults = OmegaConf.to_container(schema, enum_to_str=True)
    same = []
    for key, value in yaml.items():
        if key not in schema or OmegaConf.is_missing(schema, key):
            continue
        if isinstance(value, dict) and isinstance(schema[key], DictConfig):
            same += _restated(value, schema[key], f"{prefix}{key}.")
        elif defaults[key] == value:
            same.append(f"{prefix}{key}")
    return same


@pytest.mark.parametrize("name", PRETEXT_SCHEMAS.names())
def test_a_pretext_yaml_carries_only_what_differs_from_its_schema(name):
    yaml = OmegaConf.to_container(OmegaConf.load(CONF / "pretext" / f"{name}.yaml"))
    assert yaml.pop("defaults")[0].startswith(f"/schema/pretext/{name}@_here_")
    assert _restated(yaml, OmegaConf.structured(PRETEXT_SCHEMAS.get(name))) == []


def test_defaults():
    from sslrun.data.fit import fit_to_data

    cfg = _compose([])
    assert (cfg.dataset.name, cfg.pretext.name, cfg.encoder.name, cfg.downstream.name) == (
        "fashion_mnist",
        "rotation",
        "auto",
        "finetune",
    )
    fit_to_data(cfg)  # what the run uses: chosen before any work
    assert cfg.encoder.name == "small_cnn"
    assert cfg.pretext["from"] is None and cfg.downstream.labels_per_class == 100
    assert list(cfg.downstream.evals) == ["finetune", "scratch"]


def test_every_option_has_a_description():
    for group, option in OPTIONS:
        line = next(
            t for t in groups_text(CONF).splitlines() if t.strip().startswith(option + " ") or t.strip() == option
        )
        assert len(line.split(None, 1)) == 2, f"{group}/{option}.yaml lacks a first-line description"


@pytest.mark.parametrize(
    "override,error",
    [
        ("trainer.epochs=abc", ValidationError),
        ("trainr.epochs=3", ConfigCompositionException),
        ("pretext.mdoe=all", ConfigCompositionException),
        ("pretext.mode=sideways", ValidationError),
        ("pretext.head_init=he_normal", ValidationError),
        ("downstream.head_init=zeros", ValidationError),
        ("stage=everything", ValidationError),
        ("dataset=fashoin_mnist", ConfigCompositionException),
    ],
)
def test_bad_overrides_fail_at_composition(override, error):
    with pytest.raises((error, ConfigCompositionException, ConfigKeyError)):
        _compose([override])


def test_conf_ships_in_package_data():
    text = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert '"sslrun.conf" = "conf"' in text and '"**/*.yaml"' in text
