"""A plain, non-editable `pip install .` ships conf/ inside the package and finds it."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_non_editable_install_finds_configs(tmp_path):
    target = tmp_path / "site"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    assert (target / "sslrun/conf/config.yaml").is_file() and (target / "sslrun/conf/dataset/mnist.yaml").is_file()
    env = {**os.environ, "PYTHONPATH": str(target), "TF_CPP_MIN_LOG_LEVEL": "2"}
    code = "import sslrun.cli as c; print(c.__file__); print(c.conf_dir())"
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == [str(target / "sslrun/cli.py"), str(target / "sslrun/conf")]
    res = subprocess.run(
        [sys.executable, "-m", "sslrun", "--cfg", "job", "experiment=smoke"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0 and "name: synthetic" in res.stdout, res.stderr[-2000:]
