"""The compare sweep's one bar: jobs write progress.json, the sweep's process sums them (no TensorFlow here)."""

from __future__ import annotations

import json

from sslrun.training import sweep_progress as sp


def _job(sweep, num, state):
    (sweep / str(num)).mkdir(parents=True)
    (sweep / str(num) / sp.PROGRESS_FILE).write_text(json.dumps(state))


def test_reported_jobs_count_what_they_did_and_the_rest_count_the_estimate(tmp_path):
    _job(tmp_path, 0, {"method": "rotation", "pretext": [3, 3], "downstream": [6, 6]})
    _job(tmp_path, 1, {"method": "simclr", "pretext": [1, 3]})  # downstream not reached: the estimate's 6
    (tmp_path / "2").mkdir()
    (tmp_path / "2" / sp.PROGRESS_FILE).write_text("{not json")  # half a file: as if it had not reported
    state = sp.read_sweep(tmp_path, jobs=4, per_job=(3, 6))
    assert (state.done, state.total) == (3 + 6 + 1, 9 + 9 + 2 * 9)  # job 1: 3 epochs + the 6 rows estimated
    assert state.doing in ("rotation downstream 6/6", "simclr pretext epoch 1/3")


def test_a_job_with_its_own_totals_replaces_the_estimate(tmp_path):
    _job(tmp_path, 0, {"method": "vicreg", "pretext": [5, 5], "downstream": [2, 8]})  # cached pretext, 8 rows
    state = sp.read_sweep(tmp_path, jobs=1, per_job=(3, 6))
    assert (state.done, state.total, state.doing) == (7, 13, "vicreg downstream 2/8")


def test_tick_writes_only_inside_a_sweep(tmp_path, monkeypatch):
    monkeypatch.delenv(sp.SWEEP_ENV, raising=False)
    sp.report_to(tmp_path, "rotation")
    sp.tick("pretext", 1, 2)
    assert not (tmp_path / sp.PROGRESS_FILE).exists()
    monkeypatch.setenv(sp.SWEEP_ENV, "1")
    sp.report_to(tmp_path, "rotation")
    sp.tick("pretext", 2, 2)
    sp.tick("downstream", 1, 4)
    assert json.loads((tmp_path / sp.PROGRESS_FILE).read_text()) == {
        "method": "rotation",
        "pretext": [2, 2],
        "downstream": [1, 4],
    }
    assert [p.name for p in tmp_path.iterdir()] == [sp.PROGRESS_FILE]  # no temp file left beside it
    sp.report_to(tmp_path, "rotation")  # back to nothing for the other tests in this process
    monkeypatch.delenv(sp.SWEEP_ENV)
    sp.report_to(tmp_path, "rotation")


def test_plain_line_has_counts_elapsed_and_eta_from_this_process_work_only():
    state = sp.SweepState(done=30, total=40, doing="simclr downstream 2/6")
    assert sp.plain_line(state, elapsed=600, done_here=10) == (
        "compare sweep: 30 of 40 (pretext epochs and downstream rows), 10:00 elapsed, about 10 min left "
        "(simclr downstream 2/6)"
    )
    assert "left" not in sp.plain_line(state, elapsed=5, done_here=0)  # resumed, nothing new yet: no guess
    assert sp._clock(3725) == "1:02:05"


def test_sweep_bar_prints_a_final_line_when_not_a_terminal(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sp, "POLL_SECONDS", 0.01)
    with sp.SweepBar(tmp_path, jobs=2, per_job=(1, 2), bars=True) as bar:
        assert bar.progress is None  # pytest's stderr is not a terminal
        assert sp.in_sweep()
        _job(tmp_path, 0, {"method": "rotation", "pretext": [1, 1], "downstream": [2, 2]})
    assert not sp.in_sweep()
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("compare sweep: 3 of 6 (pretext epochs and downstream rows)"), last
