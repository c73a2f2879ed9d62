"""bench/run.py plans every protocol's rows at full and --quick scale: each sslrun row composes with the
bench's overrides (a preset change that breaks `make bench` fails here, not an hour into the run), and the
quick overrides give the pretext stage the scale its faithful script runs at. Nothing is run."""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROTOCOLS = ["seed000", "seed001", "seed002", "seed003", "seed004"]


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    spec = importlib.util.spec_from_file_location("sslrun_bench_run", ROOT / "bench" / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    folder = tmp_path_factory.mktemp("cifar10-jpg")
    (folder / "train").mkdir()
    module.CIFAR_JPG = folder  # cifar_folder() finds train/ and unpacks nothing from ../shared
    return module


def overrides(command: list[str]) -> dict[str, str]:
    return dict(arg.split("=", 1) for arg in command[1:] if "=" in arg)


def test_every_seed_protocol_is_planned(bench):
    assert list(bench.PROTOCOLS) == PROTOCOLS
    for protocol in bench.PROTOCOLS.values():
        assert (bench.FAITHFUL / f"{protocol.name}.py").is_file()
        assert protocol.preset in bench.QUICK


@pytest.mark.parametrize("quick", [False, True], ids=["full", "quick"])
@pytest.mark.parametrize("name", PROTOCOLS)
def test_every_row_composes_with_the_bench_overrides(bench, name, quick, tmp_path):
    args = argparse.Namespace(quick=quick, stl10=tmp_path / "stl10")
    runs = bench.plan(bench.PROTOCOLS[name], args, tmp_path / "work")
    short = name == "seed000" and not quick
    assert [run.pipeline for run, _ in runs] == ["faithful", "preset", "plus"] + (["plus-short"] if short else [])
    for run, result in runs:
        assert run.status == "ok", f"{name} {run.pipeline}: {run.status}"
        assert run.notes == [], run.notes  # e.g. seed003 on other test images than the faithful script's
        assert ("--quick" in run.command) == (quick and run.pipeline == "faithful")
        if run.pipeline != "faithful":
            assert result == tmp_path / "work" / name / run.pipeline / "run" / "metrics.json"
            assert overrides(run.command)["hydra.run.dir"] == str(result.parent)


@pytest.mark.parametrize("name", PROTOCOLS)
def test_quick_rows_train_the_pretext_on_the_faithful_scale(bench, name, tmp_path):
    protocol = bench.PROTOCOLS[name]
    args = argparse.Namespace(quick=True, stl10=tmp_path / "stl10")
    for run, _ in bench.plan(protocol, args, tmp_path / "work"):
        if run.pipeline == "faithful":
            continue
        preset = protocol.preset + ("_plus" if run.pipeline == "plus" else "")
        plan = bench.QUICK.get(preset, bench.QUICK[protocol.preset])
        given = overrides(run.command)
        cfg = bench.compose(preset, [])
        per_step = int(cfg.trainer.batch_size) * bench.examples_per_image(cfg)
        epochs, steps = int(given["trainer.epochs"]), int(given["trainer.steps_per_epoch"])
        assert epochs == plan["epochs"]
        assert plan["pretext_images"] <= epochs * steps * per_step < plan["pretext_images"] + epochs * per_step
        assert int(given["downstream.repeats"]) == min(cfg.downstream.repeats, plan["repeats"])
        for phase in bench.DOWNSTREAM_PHASES:
            if plan["downstream_epochs"] is not None and f"downstream.{phase}" in given:
                assert int(given[f"downstream.{phase}"]) == plan["downstream_epochs"]


def test_quick_seed003_rows_share_the_faithful_scripts_test_split(bench, tmp_path):
    text = (bench.FAITHFUL / "seed003.py").read_text()
    faithful = float(re.search(r"^QUICK_TEST_FRACTION = ([0-9.]+)", text, re.M).group(1))
    assert faithful == bench.QUICK_TEST_FRACTION
    args = argparse.Namespace(quick=True, stl10=None)
    for run, _ in bench.plan(bench.PROTOCOLS["seed003"], args, tmp_path / "work"):
        if run.pipeline != "faithful":
            assert overrides(run.command)["dataset.test_fraction"] == str(bench.QUICK_TEST_FRACTION)
