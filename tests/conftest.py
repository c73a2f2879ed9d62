from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

def sslrun_exe(name: str = "sslrun") -> list[str]:
    exe = Path(sys.executable).with_name(name)
    return [str(exe)] if exe.exists() else [shutil.which(name) or name]


def run_cli(
    args: list[str], tmp: Path, env: dict | None = None, timeout: int = 300, exe: str = "sslrun"
) -> subprocess.CompletedProcess:
    """The installed console script, offline-style: empty HOME, no data dir unless given."""
    full_env = {**os.environ, "HOME": str(tmp / "home"), "TF_CPP_MIN_LOG_LEVEL": "2",
                "SSLRUN_SYSTEM_DATASETS": str(tmp / "system-datasets")}
    full_env.pop("SSLRUN_DATA_DIR", None)
    full_env.pop("SSLRUN_CACHE_DIR", None)  # the cache lives under the test's HOME
    full_env.update(env or {})
    return subprocess.run(
        sslrun_exe(exe) + args, cwd=tmp, env=full_env, capture_output=True, text=True, timeout=timeout
    )


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
