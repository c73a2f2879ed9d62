"""One formatter and one line length in CI too: `make lint`'s two checks, as `make test` runs them."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ["sslrun", "tests", "bench", "docs"]


def _ruff() -> list[str]:
    beside = Path(sys.executable).with_name("ruff")  # the venv's pinned ruff (requirements-ci.txt)
    found = str(beside) if beside.is_file() else shutil.which("ruff")
    if found is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    return [found]


@pytest.mark.parametrize("check", [["format", "--check"], ["check"]], ids=["format", "rules"])
def test_ruff(check):
    res = subprocess.run([*_ruff(), *check, *FOLDERS], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
