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
from hydra.errors import HydraException, MissingConfigException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from sslrun.config import register_schemas
from sslrun.errors import Interrupted, SslrunError, output_error
from sslrun.help import register_help
from sslrun.plugins import plugin_names
from sslrun.tfboot import configure_onednn

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
        _check_mode(cfg)
        from sslrun.tfboot import import_tensorflow

        import_tensorflow()  # first, with its start-up notices held back
        from sslrun.pipeline import run  # imported late: TensorFlow is slow to import

        return run(cfg, run_dir)
    except KeyboardInterrupt:
        _fail(
            Interrupted(
                "interrupted (Ctrl-C); finished pretext epochs are checkpointed: rerun the same command to resume"
            ),
            stop_sweep=True,
        )
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


class CompareReport(Callback):
    """experiment=compare's hydra.callbacks: when the sweep ends, compare.md ranks its methods."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from sslrun.report.compare import CompareError, write_compare

        sweep = Path(str(config.hydra.sweep.dir))
        try:
            path, said = write_compare(sweep)
        except CompareError as err:
            print(f"sslrun: error: compare report: {err}", file=sys.stderr)
            sys.exit(1)
        print(f"compare report: {path}", flush=True)
        for line in said:
            print(line, flush=True)


class SweepProgress(Callback):
    """experiment=compare's hydra.callbacks: one bar (or plain lines) for the whole sweep, from the jobs'
    progress.json files (sslrun.training.sweep_progress), whichever launcher runs them."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from sslrun.data.splits import Budget
        from sslrun.training.sweep_progress import SweepBar

        d, stage = config.downstream, str(getattr(config.stage, "value", config.stage))
        try:
            budgets = len(
                Budget.study(
                    d.labels_per_class,
                    d.num_labels,
                    d.label_fraction,
                    OmegaConf.to_container(d.label_budgets) if d.label_budgets else None,
                )
            )
        except SslrunError:
            budgets = 1  # each job says what is wrong with it; the bar only needs an estimate
        rows = 0 if stage == "pretext" else budgets * d.repeats * len(d.evals)
        per_job = (0 if stage == "downstream" else config.trainer.epochs, rows)
        self.bar = SweepBar(
            Path(str(config.hydra.sweep.dir)), len(config.compare.methods), per_job, bars=config.trainer.progress
        )
        self.bar.__enter__()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if getattr(self, "bar", None) is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _check_mode(cfg: DictConfig) -> None:
    """experiment=compare is a sweep: one job per method; each job says where the sweep stands."""
    hc = HydraConfig.get()
    if hc.runtime.choices.get("experiment") != "compare":
        return
    if hc.mode != RunMode.MULTIRUN:
        raise SslrunError(
            "experiment=compare runs one job per pretext method: add -m, e.g. `sslrun -m experiment=compare`"
        )
    from sslrun.report.compare import sweep_status

    log.info("%s", sweep_status(Path(str(hc.sweep.dir)), list(cfg.compare.methods), cfg.pretext.name))


# Hydra's launchers and sweepers that come with `pip install 'sslrun[sweep]'`, by the option that needs them
# (conf/hydra/launcher/local.yaml and slurm.yaml are sslrun's own, on submitit's plugin).
PLUGINS = {
    "hydra/launcher": {
        "joblib": "hydra_joblib_launcher",
        "submitit_local": "hydra_submitit_launcher",
        "submitit_slurm": "hydra_submitit_launcher",
        "local": "hydra_submitit_launcher",
        "slurm": "hydra_submitit_launcher",
    },
    "hydra/sweeper": {"optuna": "hydra_optuna_sweeper"},
}


def _plugin_installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(f"hydra_plugins.{module}") is not None


def missing_plugin(group: str, name: str, installed=_plugin_installed) -> str | None:
    """What to say when option group=name needs a Hydra plugin that is not installed (None: nothing)."""
    module = PLUGINS.get(group.lstrip("/"), {}).get(name)
    if module and not installed(module):
        return (
            f"{group.lstrip('/')}={name} needs Hydra's {module.replace('_', '-')} plugin, which is not installed: "
            "pip install 'sslrun[sweep]' (joblib, submitit and Optuna plugins)"
        )
    return None


def check_plugins(overrides: list[str], installed=_plugin_installed) -> None:
    """A launcher or sweeper named on the command line whose Hydra plugin is not installed: say how to get it."""
    for override in overrides:
        group, _, name = override.lstrip("~+").partition("=")
        said = missing_plugin(group, name, installed)
        if said:
            raise SslrunError(said)


def one_line(err: Exception) -> str:
    """Hydra's and OmegaConf's multi-line composition errors as one line (their indented detail lines dropped)."""
    if isinstance(err, MissingConfigException) and err.missing_cfg_file:
        group, _, name = err.missing_cfg_file.rpartition("/")
        said = missing_plugin(group, name)
        if said:
            return said
        options = ", ".join(err.options or [])
        return f"{group}={name}: no such option; available: {options}" if options else str(err).splitlines()[0]
    said = []
    for part in (err, err.__cause__):
        lines = [line.strip() for line in str(part or "").splitlines() if line.strip() and line[0] not in " \t"]
        text = " ".join(line for line in lines if not line.startswith(("Set the environment", "Config search path")))
        if text and text not in said:
            said.append(text)
    return ": ".join(said) or type(err).__name__


def main() -> None:
    path = conf_dir()
    register_help(path)
    configure_onednn()  # before TensorFlow loads, here and in every launcher job (they inherit the environment)
    tracebacks = os.environ.get("HYDRA_FULL_ERROR") == "1"  # the user asked for Hydra's full stack traces
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises instead of printing; composition errors are said below
    try:
        check_plugins(sys.argv[1:])
        if plugin_names():  # their tasks load TensorFlow: first, with its start-up notices held back
            from sslrun.tfboot import import_tensorflow

            import_tensorflow()
        register_schemas()  # imports SSLRUN_PLUGINS: an unimportable one is one line
        hydra.main(version_base="1.3", config_path=str(path), config_name="config")(_task)()
    except SslrunError as err:  # a failed job of a sweep (the others have run), or check_plugins
        print(f"sslrun: error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    except (HydraException, OmegaConfBaseException) as err:
        if tracebacks:
            raise
        print(f"sslrun: error: {one_line(err)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
