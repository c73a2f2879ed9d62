"""Bad and changed configs: refused before any work, naming the keys, the values and what to do."""

import json
from pathlib import Path

import pytest
from conftest import FAST_PRETEXT, run_cli
from hydra import compose, initialize_config_dir

from sslrun.cli import conf_dir
from sslrun.config import register_schemas
from sslrun.errors import RunDirError
from sslrun.help import register_help
from sslrun.training.rundir import check_unchanged, differences, result_parts

PRE = FAST_PRETEXT + ["trainer.epochs=2", "hydra.run.dir=run"]


def _only_hydra_files(run: Path) -> bool:
    """Nothing but what Hydra writes before the job starts (or not even the run dir)."""
    return not run.exists() or {p.name for p in run.iterdir()} <= {".hydra", "cli.log"}


def _error_line(res) -> str:
    assert "Traceback" not in res.stderr, res.stderr[-2000:]
    return next(line for line in res.stderr.splitlines() if line.startswith("sslrun: error:"))


def test_resuming_with_a_result_changing_config_is_refused(tmp_path):
    run = tmp_path / "run"
    cut = run_cli(PRE, tmp_path, env={"SSLRUN_FAULT": "crash-writing:epoch-0002.npz"})
    assert cut.returncode == -9 and (run / "pretext/checkpoints/epoch-0001.npz").is_file()
    before = sorted(p.relative_to(run) for p in run.rglob("*") if ".hydra" not in p.parts and p.name != "cli.log")

    changed = run_cli(PRE + ["trainer.learning_rate=0.01", "encoder.width=0.5"], tmp_path)
    assert changed.returncode == 2
    line = _error_line(changed)
    assert f"run dir {run} was run with a different config" in line
    assert "encoder.width: 0.25 -> 0.5; trainer.learning_rate: 0.001 -> 0.01" in line and "new hydra.run.dir" in line
    after = sorted(p.relative_to(run) for p in run.rglob("*") if ".hydra" not in p.parts and p.name != "cli.log")
    assert after == before  # refused before touching anything, the interrupted write's temp file included

    display = run_cli(PRE + ["trainer.progress=true", "tensorboard=true", "lock_timeout=60"], tmp_path)
    assert display.returncode == 0, display.stderr[-2000:]  # keys that cannot change the result
    assert f"resuming pretext from {run / 'pretext/checkpoints/epoch-0001.npz'}" in display.stdout

    finished = run_cli(PRE + ["downstream.labels_per_class=10"], tmp_path)
    assert finished.returncode == 2 and "downstream.labels_per_class: 50 -> 10" in _error_line(finished)
    assert "nothing to do" not in finished.stdout


def test_typo_and_wrong_type_fail_at_composition(tmp_path):
    typo = run_cli(["trainr.epochs=3", "hydra.run.dir=typo"], tmp_path)
    assert typo.returncode == 1 and "Could not override 'trainr.epochs'" in typo.stderr
    wrong = run_cli(["trainer.epochs=abc", "hydra.run.dir=wrong"], tmp_path)
    assert wrong.returncode == 1 and "trainer.epochs" in wrong.stderr and "'abc'" in wrong.stderr
    assert not (tmp_path / "typo").exists() and not (tmp_path / "wrong").exists()


def test_missing_value_fails_before_any_work(tmp_path):
    res = run_cli(PRE[:-1] + ["trainer.learning_rate=???", "hydra.run.dir=run"], tmp_path)
    assert res.returncode == 2
    assert "no value for trainer.learning_rate" in _error_line(res) and "sslrun trainer.learning_rate=..." in res.stderr
    assert _only_hydra_files(tmp_path / "run")


@pytest.mark.parametrize("case", ["missing", "unfinished"])
def test_pretext_from_a_missing_or_unfinished_dir(tmp_path, case):
    given = tmp_path / "pre"
    if case == "unfinished":  # an interrupted pretext stage: checkpoints, no COMPLETE
        (given / "pretext/checkpoints").mkdir(parents=True)
        (given / "pretext/checkpoints/epoch-0001.npz").write_bytes(b"")
    res = run_cli(["experiment=smoke", "stage=downstream", f"pretext.from={given}", "hydra.run.dir=run"], tmp_path)
    assert res.returncode == 2
    line = _error_line(res)
    if case == "missing":
        assert f"pretext.from={given}: no such directory" in line and "give a run directory written by" in line
    else:
        assert f"no COMPLETE marker in {given / 'pretext'}" in line
        assert f"checkpoints up to epoch-0001.npz: rerun the command that started it (same hydra.run.dir={given})" in line
    assert "data synthetic" not in res.stdout  # before any data is read
    assert _only_hydra_files(tmp_path / "run")


def _cfg(*overrides: str):
    register_schemas()
    register_help(conf_dir())
    with initialize_config_dir(str(conf_dir()), version_base="1.3"):
        return compose("config", overrides=["experiment=smoke", *overrides])


def test_what_counts_as_a_result_changing_key(tmp_path):
    base = result_parts(_cfg())
    display = ["trainer.progress=false", "tensorboard=false", "lock_timeout=5", "pretext.cache=false",
               f"cache_dir={tmp_path}", "dataset.download=false", "data_dir=/elsewhere"]
    assert differences(base, result_parts(_cfg(*display))) == []
    changed = result_parts(_cfg("seed=1", "pretext.mode=all", "stage=pretext", "downstream.evals=[knn]"))
    assert differences(base, changed) == [
        "downstream.evals: ['finetune', 'scratch'] -> ['knn']", "pretext.mode: 'random' -> 'all'",
        "seed: 0 -> 1", "stage: 'all' -> 'pretext'",
    ]
    record = tmp_path / "run_key.json"
    check_unchanged(record, base, "run dir X")  # first time: recorded
    assert json.loads(record.read_text()) == json.loads(json.dumps(base))
    newer = {**base, "trainer": {**base["trainer"], "new_option": 1}}  # a key added by a later version
    check_unchanged(record, newer, "run dir X")
    with pytest.raises(RunDirError, match=r"run dir X was run with a different config.*seed: 0 -> 1"):
        check_unchanged(record, changed, "run dir X")
