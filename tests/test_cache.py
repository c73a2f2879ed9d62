"""The pretext cache: hit, miss on a changed key, opt-out, and two racing processes training once."""

import json
import os
import subprocess

from conftest import run_cli, sslrun_exe

PRE = [
    "experiment=smoke",
    "trainer.progress=false",
    "trainer.epochs=1",
    "trainer.steps_per_epoch=4",
    "tensorboard=false",
    "stage=pretext",
]


def _metrics(run):
    return json.loads((run / "metrics.json").read_text())


def test_second_identical_run_reuses_and_a_changed_one_trains(tmp_path):
    first = run_cli(PRE + ["hydra.run.dir=a"], tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    second = run_cli(PRE + ["hydra.run.dir=b"], tmp_path)
    assert second.returncode == 0, second.stderr[-2000:]
    a, b = _metrics(tmp_path / "a")["pretext"], _metrics(tmp_path / "b")["pretext"]
    assert a["cache_key"] == b["cache_key"] and not a["reused"] and b["reused"]
    assert (tmp_path / "b/pretext").is_symlink() and (tmp_path / "b/pretext/encoder.weights.h5").is_file()
    assert "reusing cache key" in second.stdout
    key_json = json.loads((tmp_path / "b/pretext/key.json").read_text())
    assert key_json["trainer"]["epochs"] == 1 and "progress" not in key_json["trainer"]

    changed = run_cli(PRE + ["trainer.learning_rate=0.01", "hydra.run.dir=c"], tmp_path)
    c = _metrics(tmp_path / "c")["pretext"]
    assert changed.returncode == 0 and c["cache_key"] != a["cache_key"] and not c["reused"]

    off = run_cli(PRE + ["pretext.cache=false", "hydra.run.dir=d"], tmp_path)
    assert off.returncode == 0 and not (tmp_path / "d/pretext").is_symlink()
    assert "cache_key" not in _metrics(tmp_path / "d")["pretext"]


def test_two_racing_processes_train_once(tmp_path):
    env = {**os.environ, "HOME": str(tmp_path / "home"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("SSLRUN_CACHE_DIR", None)
    procs = [
        subprocess.Popen(
            sslrun_exe() + PRE + [f"hydra.run.dir=r{i}"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    infos = [_metrics(tmp_path / f"r{i}")["pretext"] for i in range(2)]
    assert infos[0]["cache_key"] == infos[1]["cache_key"]
    assert sorted(i["reused"] for i in infos) == [False, True]  # one trained, the other waited and reused
    history = (tmp_path / "r0/pretext/history.csv").read_text().splitlines()
    assert len(history) == 2  # header + the one epoch: trained once, not twice into the same folder
