"""Console entry point. Thin: compose the config, hand it to the pipeline."""

from __future__ import annotations

import logging
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: keep its C++ chatter out
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from sslrun.config import register_schemas
from sslrun.errors import SslrunError
from sslrun.help import register_help

log = logging.getLogger("sslrun")


def conf_dir() -> Path:
    """The YAML configs: sslrun/conf when installed, ../conf in a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise SystemExit(f"sslrun: config folder not found next to {here}; reinstall sslrun")


def _task(cfg: DictConfig) -> float | None:
    from sslrun.pipeline import run  # imported late: TensorFlow is slow to import

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        return run(cfg, run_dir)
    except SslrunError as err:
        log.error("%s", err)
        print(f"sslrun: error: {err}", file=sys.stderr)
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # a failed job must not end the sweep: Hydra runs the rest, then exits non-zero
        sys.exit(err.exit_code)


def main() -> None:
    path = conf_dir()
    register_schemas()
    register_help(path)
    hydra.main(version_base="1.3", config_path=str(path), config_name="config")(_task)()


if __name__ == "__main__":
    main()
