"""Bad and changed configs: refused before any work, naming the keys, the values and what to do.

Reruns into a stopped run dir with a changed config: test_divergence.py."""

import json
from pathlib import Path

import pytest
from conftest import FAST_PRETEXT, run_cli, start_cli
from hydra import compose, initialize_config_dir

from sslrun.cli import conf_dir
from sslrun.config import register_schemas
from sslrun.errors import RunDirError
from sslrun.help import register_help
from sslrun.training.rundir import check_unchanged, differences, result_parts


def _only_hydra_files(run: Path) -> bool:
    """Nothing but what Hydra writes before the job starts (or not even the run dir)."""
    return not run.exists() or {p.name for p in run.iterdir()} <= {".hydra", "cli.log"}


def _error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr[-2000:]
    [line] = [line for line in stderr.splitlines() if line.startswith("sslrun: error:")]
    return line


def test_typo_and_wrong_type_fail_at_composition(tmp_path):
    typo = run_cli(["trainr.epochs=3", "hydra.run.dir=typo"], tmp_path)
    assert typo.returncode == 1 and "Could not override 'trainr.epochs'" in typo.stderr
    wrong = run_cli(["trainer.epochs=abc", "hydra.run.dir=wrong"], tmp_path)
    assert wrong.returncode == 1 and "trainer.epochs" in wrong.stderr and "'abc'" in wrong.stderr
    assert not (tmp_path / "typo").exists() and not (tmp_path / "wrong").exists()


def _unfinished(tmp):  # an interrupted pretext stage: checkpoints, no COMPLETE
    (tmp / "pre/pretext/checkpoints").mkdir(parents=True)
    (tmp / "pre/pretext/checkpoints/epoch-0001.npz").write_bytes(b"")


FAIL_FAST = {  # case: (setup, overrides); each fails before reading data
    "missing_value": (None, FAST_PRETEXT + ["trainer.learning_rate=???"]),
    "from_missing_dir": (None, ["experiment=smoke", "stage=downstream", "pretext.from=pre"]),
    "from_unfinished_dir": (_unfinished, ["experiment=smoke", "stage=downstream", "pretext.from=pre"]),
}


@pytest.fixture(scope="module")
def fail_fast(tmp_path_factory):
    """Every FAIL_FAST case started at once (one process each); {case: (tmp, stdout, stderr, exit code)}."""
    started = {}
    for case, (setup, args) in FAIL_FAST.items():
        tmp = tmp_path_factory.mktemp(case)
        if setup:
            setup(tmp)
        started[case] = (tmp, start_cli(args + ["hydra.run.dir=run"], tmp))
    return {case: (tmp, *proc.communicate(timeout=300), proc.returncode) for case, (tmp, proc) in started.items()}


def test_missing_value_fails_before_any_work(fail_fast):
    tmp, out, err, code = fail_fast["missing_value"]
    assert code == 2
    assert "no value for trainer.learning_rate" in _error_line(err) and "sslrun trainer.learning_rate=..." in err
    assert _only_hydra_files(tmp / "run")


@pytest.mark.parametrize("case", ["from_missing_dir", "from_unfinished_dir"])
def test_pretext_from_a_missing_or_unfinished_dir(fail_fast, case):
    tmp, out, err, code = fail_fast[case]
    given = tmp / "pre"
    assert code == 2
    line = _error_line(err)
    if case == "from_missing_dir":
        assert f"pretext.from=pre: no such directory ({given})" in line and "give a run directory written by" in line
    else:
        assert f"no COMPLETE marker in {Path('pre/pretext')}" in line
        assert "checkpoints up to epoch-0001.npz: rerun the command that started it (same hydra.run.dir=pre)" in line
    assert "data synthetic" not in out  # before any data is read
    assert _only_hydra_files(tmp / "run")


def _cfg(*overrides: str):
    register_schemas()
    register_help(conf_dir())
    with initialize_config_dir(str(conf_dir()), version_base="1.3"):
        return compose("config", overrides=["experiment=smoke", *overrides])


def test_what_counts_as_a_result_changing_key(tmp_path):
    base = result_parts(_cfg())
    display = [
        "trainer.progress=false",
        "tensorboard=false",
        "lock_timeout=5",
        "pretext.cache=false",
        f"cache_dir={tmp_path}",
        "dataset.download=false",
        "data_dir=/elsewhere",
    ]
    assert differences(base, result_parts(_cfg(*display))) == []
    changed = result_parts(_cfg("seed=1", "pretext.mode=all", "stage=pretext", "downstream.evals=[knn]"))
    assert differences(base, changed) == [
        "downstream.evals: ['finetune', 'scratch'] -> ['knn']",
        "pretext.mode: 'random' -> 'all'",
        "seed: 0 -> 1",
        "stage: 'all' -> 'pretext'",
    ]
    record = tmp_path / "run_key.json"
    check_unchanged(record, base, "run dir X")  # first time: recorded
    assert json.loads(record.read_text()) == json.loads(json.dumps(base))
    newer = {**base, "trainer": {**base["trainer"], "new_option": 1}}  # a key added by a later version
    check_unchanged(record, newer, "run dir X")
    with pytest.raises(RunDirError, match=r"run dir X was run with a different config.*seed: 0 -> 1"):
        check_unchanged(record, changed, "run dir X")
