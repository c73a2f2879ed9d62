"""One process at a time in a run dir or cache key: others wait (or give up after lock_timeout); stale locks recover."""

import logging
import os
import signal
import socket

import pytest
from conftest import FAST_PRETEXT, run_cli, start_cli, wait_for

from sslrun.errors import Busy
from sslrun.training.cache import locked
from sslrun.training.rundir import LOCK

PRE = FAST_PRETEXT + ["trainer.epochs=2", "hydra.run.dir=run"]


def test_second_process_on_a_run_dir_waits_then_does_nothing_and_a_third_gives_up(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    log = run / "cli.log"  # every process on the run dir appends to Hydra's job log
    with locked(run / LOCK, "the test"):  # a live holder, as a first process would be
        procs = [start_cli(PRE, tmp_path) for _ in range(2)]
        quick = run_cli(PRE + ["lock_timeout=1"], tmp_path)
        assert quick.returncode == 75, quick.stderr[-2000:]
        [line] = [line for line in quick.stderr.splitlines() if line.startswith("sslrun: error:")]
        assert f"run dir {run} is in use by pid {os.getpid()} on {socket.gethostname()}" in line
        assert "gave up after 1s (lock_timeout=1)" in line and "another hydra.run.dir" in line
        waiting = f"waiting for run dir {run}: in use by pid {os.getpid()}"
        wait_for(lambda: log.read_text().count(waiting) == 3, procs[0])  # the quick one's, and both of procs
        assert not (run / "pretext").exists()  # nobody worked while the lock was held
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert sorted("nothing to do" in out for out in outs) == [False, True]  # one trained, one found it finished
    assert sum(out.count("pretext epoch 1/2") for out in outs) == 1
    assert len((run / "pretext/history.csv").read_text().splitlines()) == 3  # header + 2 epochs, written once


def test_killed_cached_run_leaves_locks_and_a_half_built_cache_then_the_rerun_resumes(tmp_path):
    args = PRE + ["pretext.cache=true", "trainer.epochs=3"]
    cache = tmp_path / "home/.cache/sslrun/pretext"
    proc = start_cli(args, tmp_path)
    wait_for(lambda: list(cache.glob("*/checkpoints/epoch-0001.npz")), proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    [key_dir] = [p for p in cache.iterdir() if p.is_dir()]
    key_lock = key_dir.with_suffix(".lock")
    assert not (key_dir / "COMPLETE").exists()
    assert (
        key_lock.read_text() == (tmp_path / "run" / LOCK).read_text() == f"pid {proc.pid} on {socket.gethostname()}\n"
    )

    again = run_cli(args, tmp_path, timeout=120)  # a hang would time out
    assert again.returncode == 0, again.stderr[-2000:]
    for lock in (tmp_path / "run" / LOCK, key_lock):
        assert (
            f"lock {lock} was left by pid {proc.pid} on {socket.gethostname()}, which died holding it" in again.stdout
        )
        assert lock.read_text() == ""  # released cleanly this time
    assert f"resuming pretext from {key_dir / 'checkpoints/epoch-0001.npz'}" in again.stdout
    assert (key_dir / "COMPLETE").is_file() and (tmp_path / "run/pretext").resolve() == key_dir.resolve()


def test_lock_gives_up_after_the_timeout_naming_the_holder(tmp_path):
    path = tmp_path / "x.lock"
    with locked(path, "the holder"):
        assert path.read_text() == f"pid {os.getpid()} on {socket.gethostname()}\n"
        with (
            pytest.raises(Busy, match=rf"cache key K is in use by pid {os.getpid()} .*gave up after 0s"),
            locked(path, "cache key K", timeout=0.3),
        ):
            pass
    assert path.read_text() == ""


def test_a_lock_file_left_by_a_dead_process_is_taken_over(tmp_path, caplog):
    path = tmp_path / "x.lock"
    path.write_text("pid 999999 on elsewhere\n")  # flock died with its process; the file stayed
    caplog.set_level(logging.INFO, logger="sslrun")
    with locked(path, "run dir R", timeout=0):
        assert path.read_text().startswith(f"pid {os.getpid()} ")
    assert f"lock {path} was left by pid 999999 on elsewhere, which died holding it; taking it over" in caplog.text
