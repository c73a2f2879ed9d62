from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One TF thread pool thread per process: the suite runs two workers at once on 2 cores, each often waiting on an
# `sslrun` child, so larger pools only oversubscribe the cores. Set before TF is imported, inherited by every child
# (tests/test_cli.py + test_study.py + test_cache.py with -n 2: 212 s with the default pools, 181 s with these).
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

# A pretext stage of seconds in the run dir: synthetic data, width 0.25, 4 steps per epoch, nothing drawn live.
FAST_PRETEXT = [
    "experiment=smoke",
    "trainer.progress=false",
    "tensorboard=false",
    "pretext.cache=false",
    "stage=pretext",
    "trainer.batch_size=16",
    "trainer.steps_per_epoch=4",
]


def pretext_node(name: str, **replace):
    """The pretext node of `pretext=name` as the CLI composes it (its YAML over its schema), with each key of
    `replace` set where the node has it: a test's per-method parameters, for every registered method."""
    from hydra import compose, initialize_config_dir

    from sslrun.cli import conf_dir
    from sslrun.config import register_schemas
    from sslrun.help import register_help

    register_schemas()
    register_help(conf_dir())
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        node = compose("config", overrides=[f"pretext={name}"]).pretext
    for key, value in replace.items():
        if key in node:
            node[key] = value
    return node


def sslrun_exe(name: str = "sslrun") -> list[str]:
    exe = Path(sys.executable).with_name(name)
    return [str(exe)] if exe.exists() else [shutil.which(name) or name]


# matplotlib's font cache, built once per test session instead of in every empty HOME (seconds each)
MPL_CACHE = str(Path(tempfile.gettempdir()) / f"sslrun-tests-matplotlib-{os.getuid()}")


def cli_env(tmp: Path, env: dict | None = None) -> dict:
    """Offline-style: empty HOME (the cache lives under it), no data dir unless given."""
    full_env = {
        **os.environ,
        "HOME": str(tmp / "home"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "SSLRUN_SYSTEM_DATASETS": str(tmp / "system-datasets"),
        "MPLCONFIGDIR": MPL_CACHE,
    }
    for name in ("SSLRUN_DATA_DIR", "SSLRUN_CACHE_DIR", "SSLRUN_FAULT"):
        full_env.pop(name, None)
    full_env.update(env or {})
    return full_env


def run_cli(
    args: list[str], tmp: Path, env: dict | None = None, timeout: int = 300, exe: str = "sslrun"
) -> subprocess.CompletedProcess:
    """The installed console script, offline-style (cli_env)."""
    return subprocess.run(
        sslrun_exe(exe) + args, cwd=tmp, env=cli_env(tmp, env), capture_output=True, text=True, timeout=timeout
    )


def start_cli(args: list[str], tmp: Path, env: dict | None = None) -> subprocess.Popen:
    """run_cli without waiting: for signals, kills and concurrent runs.

    The child gets SIGINT's default disposition, as a command started at a terminal has: a shell that runs
    the test suite in the background would otherwise hand down SIGINT ignored, and Ctrl-C could not arrive.
    """
    return subprocess.Popen(
        sslrun_exe() + args,
        cwd=tmp,
        env=cli_env(tmp, env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for(ready, proc: subprocess.Popen, timeout: float = 240) -> None:
    """Poll until ready() (or a path) holds; fail if proc exits first."""
    check = ready if callable(ready) else Path(ready).exists
    end = time.monotonic() + timeout
    while not check():
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.monotonic() < end, f"{ready} never happened"
        time.sleep(0.02)


@pytest.fixture
def idx_dir(tmp_path: Path) -> Path:
    """A small MNIST-format data set in the original IDX files (gzip), 40 train / 20 test per class."""
    from sslrun.data.idx import write_idx
    from sslrun.data.synthetic import make_synthetic

    raw = make_synthetic(400, 200, noise=0.1, seed=7)
    folder = tmp_path / "idx"
    folder.mkdir()
    write_idx(folder / "train-images-idx3-ubyte.gz", raw.x_train[..., 0])
    write_idx(folder / "train-labels-idx1-ubyte.gz", raw.y_train.astype(np.uint8))
    write_idx(folder / "t10k-images-idx3-ubyte.gz", raw.x_test[..., 0])
    write_idx(folder / "t10k-labels-idx1-ubyte", raw.y_test.astype(np.uint8))  # raw, not gzipped
    return folder


def h5_arrays(path: Path) -> list[np.ndarray]:
    """Every dataset in an .h5 weights file, in file order."""
    import h5py

    out: list[np.ndarray] = []
    with h5py.File(path) as f:
        f.visititems(lambda name, obj: out.append(np.array(obj)) if isinstance(obj, h5py.Dataset) else None)
    return out
