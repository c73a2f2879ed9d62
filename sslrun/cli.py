"""Console entry point. Thin: compose the config, hand it to the pipeline."""

from __future__ import annotations

import logging
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: keep its C++ chatter out
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from sslrun.config import register_schemas
from sslrun.errors import Interrupted, SslrunError, output_error
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
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        from sslrun.pipeline import run  # imported late: TensorFlow is slow to import

        return run(cfg, run_dir)
    except KeyboardInterrupt:
        _fail(Interrupted("interrupted (Ctrl-C); finished pretext epochs are checkpointed: rerun the same "
                          "command to resume"), stop_sweep=True)
    except OSError as err:
        user_error = output_error(err)
        if user_error is None:
            raise
        _fail(user_error)
    except SslrunError as err:
        _fail(err)
    return None


def _fail(err: SslrunError, stop_sweep: bool = False) -> None:
    """One line on stderr and the error's exit code; in a sweep, raise so Hydra runs the other jobs."""
    log.error("%s", err)
    print(f"sslrun: error: {err}", file=sys.stderr)
    if HydraConfig.get().mode == RunMode.MULTIRUN and not stop_sweep:
        raise err  # a failed job must not end the sweep: Hydra runs the rest, then exits non-zero
    sys.exit(err.exit_code)


class OutputDirCheck(Callback):
    """Create the run dir before Hydra does (conf/config.yaml hydra.callbacks), so a run dir that cannot be
    written (read-only, no permission, disk full) is one clear line and exit 74, not Hydra's traceback."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        path = Path(str(config.hydra.run.dir))  # the same ${now:} value Hydra uses: the resolver caches it
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            user_error = output_error(err)
            if user_error is None:
                raise
            print(f"sslrun: error: {user_error} (hydra.run.dir={path})", file=sys.stderr)
            sys.exit(user_error.exit_code)


def main() -> None:
    path = conf_dir()
    register_schemas()
    register_help(path)
    hydra.main(version_base="1.3", config_path=str(path), config_name="config")(_task)()


if __name__ == "__main__":
    main()
