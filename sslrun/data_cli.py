"""`sslrun-data`: which data sets are here, and preparing tensorflow-datasets data offline.

sslrun-data list [NAME=DIR ...]      e.g. sslrun-data list image_folder=~/photos
sslrun-data prepare dataset=NAME [path=DIR] [data_dir=DIR] [offline=true]
"""

from __future__ import annotations

import logging
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from sslrun.cli import conf_dir
from sslrun.config import register_schemas
from sslrun.errors import SslrunError
from sslrun.help import register_help

USAGE = __doc__.split("\n\n", 1)[1]


def compose(dataset: str, overrides: list[str]) -> DictConfig:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register_schemas()
    register_help(conf_dir())
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return hydra_compose("config", overrides=[f"dataset={dataset}", *overrides])


def dataset_names() -> list[str]:
    return sorted(p.stem for p in (conf_dir() / "dataset").glob("*.yaml"))


def describe(cfg: DictConfig) -> dict[str, str]:
    """Load one data set without downloading; report where it was found and its split sizes."""
    from sslrun.data.datasets import DATASETS

    params = OmegaConf.to_container(cfg.dataset, resolve=True, enum_to_str=True)
    params.pop("pool")
    params["download"] = False  # listing never downloads
    try:
        raw = DATASETS.build(params.pop("name"), data_dir=cfg.data_dir, cache_dir=cfg.cache_dir, **params)
    except SslrunError as err:
        looked = getattr(err, "looked", None)
        return {"found": "no", "where": "looked in " + "; ".join(looked) if looked else str(err).split("\n")[0]}
    unlabeled = "-" if raw.x_unlabeled is None else f"{len(raw.x_unlabeled):,}"
    return {
        "found": "yes",
        "where": raw.source,
        "train": f"{len(raw.x_train):,}",
        "test": f"{len(raw.x_test):,}",
        "unlabeled": unlabeled,
        "shape": "x".join(map(str, raw.image_shape)),
    }


def cmd_list(args: list[str]) -> int:
    from rich.console import Console
    from rich.table import Table

    names = dataset_names()
    paths = dict(a.split("=", 1) for a in args if "=" in a)
    bad = [a for a in args if "=" not in a or a.split("=", 1)[0] not in names]
    if bad:
        raise SslrunError(
            f"sslrun-data list: expected NAME=DIR with NAME one of {', '.join(names)}; got {' '.join(bad)}"
        )
    table = Table(title="sslrun data sets")
    columns = ("found", "where", "train", "test", "unlabeled", "shape")
    for column in ("dataset", *columns):
        table.add_column(column, overflow="fold")
    for name in names:
        overrides = [f"dataset.path={Path(paths[name]).expanduser()}"] if name in paths else []
        info = describe(compose(name, overrides))
        table.add_row(name, *(info.get(c, "") for c in columns))
    Console(width=200).print(table)
    return 0


def cmd_prepare(args: list[str]) -> int:
    from sslrun.data.prepare import prepare

    opts = dict(a.split("=", 1) for a in args if "=" in a)
    unknown = set(opts) - {"dataset", "path", "data_dir", "offline"} | {a for a in args if "=" not in a}
    if unknown or "dataset" not in opts:
        raise SslrunError(
            f"sslrun-data prepare: expected dataset=NAME [path=DIR] [data_dir=DIR] [offline=true], "
            f"got {' '.join(args) or 'nothing'}"
        )
    path = opts.get("path")
    print(
        prepare(
            opts["dataset"],
            str(Path(path).expanduser()) if path else None,
            opts.get("data_dir"),
            offline=opts.get("offline", "false").lower() in ("1", "true", "yes"),
        )
    )
    return 0


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        sys.exit(0 if argv else 2)
    try:
        if argv[0] == "list":
            code = cmd_list(argv[1:])
        elif argv[0] == "prepare":
            code = cmd_prepare(argv[1:])
        else:
            raise SslrunError(f"sslrun-data: unknown command {argv[0]!r}; use list or prepare\n{USAGE}")
    except SslrunError as err:
        print(f"sslrun-data: error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    sys.exit(code)


if __name__ == "__main__":
    main()
