"""End to end through the installed console script, and each bad input."""

import json

import numpy as np
import pytest
from conftest import run_cli

from sslrun.data.idx import write_idx

SMOKE = ["experiment=smoke", "trainer.progress=false"]
# one epoch per phase, no TensorBoard: for runs whose subject is not what the network learns
SHORT = ["trainer.epochs=1", "downstream.frozen_epochs=1", "downstream.unfrozen_epochs=1", "tensorboard=false"]
TINY = [
    "encoder.width=0.25",
    "trainer.epochs=1",
    "trainer.progress=false",
    "downstream.val_per_class=5",
    "downstream.frozen_epochs=1",
    "downstream.unfrozen_epochs=1",
]


def test_smoke_run_writes_every_artifact(tmp_path):
    res = run_cli(SMOKE + ["hydra.run.dir=run", "trainer.lr_schedule=cosine", "trainer.warmup_epochs=1"], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["splits"] == {"pretext": 1200, "labeled": 500, "val": 50, "test": 300}
    assert metrics["baseline_test_accuracy"] > 0.5  # the synthetic classes are learnable
    for key in ("ssl_test_accuracy", "baseline_test_accuracy", "gain"):
        assert 0.0 <= abs(metrics[key]) <= 1.0
    assert metrics["pretext"]["epochs"] == 2 and metrics["pretext"]["seconds"] > 0
    for name in (
        "pretext/encoder.weights.h5",
        "pretext/COMPLETE",
        "pretext/history.csv",
        "pretext/config.yaml",
        "downstream/history.csv",
        "report.md",
        ".hydra/config.yaml",
        "model/model.keras",
        "model/info.json",
    ):
        assert (run / name).is_file(), name
    assert not (run / "model" / "saved_model").exists()  # the smoke preset writes no SavedModel (seconds)
    history = (run / "pretext/history.csv").read_text().splitlines()
    assert len(history) == 3  # header + 2 epochs
    # the schedule's learning rate at each epoch's end: the peak after the 1-epoch warm-up, 0 at the end
    rate = [float(r.split(",")[history[0].split(",").index("learning_rate")]) for r in history[1:]]
    assert rate == [pytest.approx(1e-3), pytest.approx(0.0, abs=1e-9)]
    assert "from scratch, same schedule (baseline)" in res.stdout and "fine-tuned from pretext" in res.stdout
    assert set(metrics["downstream"]) == {"finetune", "scratch"}
    # the terminal ends with the answer, and report.md opens with it
    last = res.stdout.strip().splitlines()[-1]
    assert last.startswith(f"{metrics['pretext_task']} pretext: ") and " points over the same network" in last
    assert metrics["answer"] == [last] and f"**{last}.**" in (run / "report.md").read_text().splitlines()[2]
    # the label-free health signals: history columns, the report's sentence and figure
    assert {"rankme", "embedding_std"} <= set(history[0].split(",")) and (run / "figures/pretext_health.png").is_file()
    assert (
        f"Pretext health at the last epoch, without labels: RankMe {metrics['pretext']['rankme']:.1f} of 32 dimensions"
    ) in (run / "report.md").read_text()
    assert not list(run.rglob("*.tmp*"))


def test_pretext_then_downstream_stage(tmp_path):
    res = run_cli(SMOKE + SHORT + ["stage=pretext", "hydra.run.dir=pre"], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "pre/pretext/COMPLETE").is_file() and not (tmp_path / "pre/downstream").exists()
    # this config names another task: the report names the one that trained in pre/
    args = [
        "stage=downstream",
        "pretext.from=pre",
        "pretext=simclr",
        "downstream.evals=[finetune]",
        "hydra.run.dir=down",
    ]
    res = run_cli(SMOKE + SHORT + args, tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.loads((tmp_path / "down/metrics.json").read_text())
    assert metrics["pretext"]["reused_from"].endswith("pre/pretext") and "baseline_test_accuracy" not in metrics
    assert metrics["pretext_task"] == "rotation" and metrics["encoder"] == "small_cnn"
    assert "| pretext rotation (reused from " in (tmp_path / "down/report.md").read_text()
    assert not (tmp_path / "down/pretext").exists()


def test_downstream_refuses_incomplete_pretext_dir(tmp_path):
    (tmp_path / "half/pretext").mkdir(parents=True)
    (tmp_path / "half/pretext/encoder.weights.h5").write_bytes(b"partial")
    res = run_cli(SMOKE + ["stage=downstream", "pretext.from=half", "hydra.run.dir=r"], tmp_path)
    assert res.returncode == 2
    assert "no COMPLETE marker" in res.stderr and "did not finish" in res.stderr
    res = run_cli(SMOKE + ["stage=downstream", "hydra.run.dir=r2"], tmp_path)
    assert res.returncode == 2 and "needs pretext.from" in res.stderr


def test_misspelled_dataset_lists_valid_ones(tmp_path):
    res = run_cli(["dataset=fashoin_mnist"], tmp_path)
    assert res.returncode != 0
    assert "fashoin_mnist" in res.stderr and "fashion_mnist" in res.stderr and "synthetic" in res.stderr


def test_wrong_type_fails_before_any_work(tmp_path):
    res = run_cli(["trainer.epochs=abc", "hydra.run.dir=r"], tmp_path)
    assert res.returncode != 0 and "trainer.epochs" in res.stderr and "abc" in res.stderr
    assert not (tmp_path / "r").exists()


def test_data_not_found_lists_places_and_fixes(tmp_path):
    res = run_cli(
        ["dataset=fashion_mnist", f"data_dir={tmp_path}/tfds", "dataset.download=false", "hydra.run.dir=r"],
        tmp_path,
        env={"SSLRUN_DATA_DIR": str(tmp_path / "nodata")},
    )
    assert res.returncode == 2, res.stderr[-2000:]
    for text in (
        "dataset 'fashion_mnist' not found",
        str(tmp_path / "nodata" / "fashion_mnist"),
        str(tmp_path / "system-datasets" / "fashion-mnist"),
        ".keras/datasets",
        "tensorflow-datasets",
        "apt-get install dataset-fashion-mnist",
        "dataset.path=",
    ):
        assert text in res.stderr, text
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "r/pretext").exists()


def test_truncated_idx_names_the_file(tmp_path, idx_dir):
    (idx_dir / "train-images-idx3-ubyte.gz").unlink()
    raw = idx_dir / "train-images-idx3-ubyte"
    write_idx(raw, np.zeros((10, 28, 28), np.uint8))
    raw.write_bytes(raw.read_bytes()[:-5])
    res = run_cli(["dataset=mnist", f"dataset.path={idx_dir}", "hydra.run.dir=r"], tmp_path)
    assert res.returncode == 2
    assert f"{raw} is truncated" in res.stderr and "Traceback" not in res.stderr


def test_idx_folder_found_through_env_runs(tmp_path, idx_dir):
    (tmp_path / "data").mkdir()
    idx_dir.rename(tmp_path / "data" / "mnist")
    res = run_cli(
        TINY
        + [
            "dataset=mnist",
            "downstream.labels_per_class=5",
            "downstream.evals=[finetune]",
            "tensorboard=false",
            "hydra.run.dir=r",
        ],
        tmp_path,
        env={"SSLRUN_DATA_DIR": str(tmp_path / "data")},
    )
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.loads((tmp_path / "r/metrics.json").read_text())
    assert metrics["splits"]["pretext"] == 400 and metrics["splits"]["labeled"] == 50
    assert str(tmp_path / "data" / "mnist") in metrics["data_source"]


def test_help_lists_groups_options_descriptions(tmp_path):
    res = run_cli(["--help"], tmp_path)
    assert res.returncode == 0
    for text in (
        "dataset:",
        "fashion_mnist",
        "Fashion-MNIST: 70,000",
        "pretext:",
        "rotation",
        "encoder:",
        "seed004_cnn",
        "downstream:",
        "finetune",
        "trainer:",
        "experiment:",
        "smoke",
    ):
        assert text in res.stdout, text


def test_cfg_job_prints_composed_config(tmp_path):
    res = run_cli(["--cfg", "job", "pretext.mode=all"], tmp_path)
    assert res.returncode == 0 and "mode: all" in res.stdout and "labels_per_class: 100" in res.stdout


def test_failed_job_does_not_end_a_multirun(tmp_path):
    args = [
        "-m",
        "experiment=smoke",
        "stage=pretext",
        "trainer.epochs=1",
        "trainer.progress=false",
        "downstream.labels_per_class=500,50",
        "hydra.sweep.dir=sw",
    ]
    res = run_cli(args, tmp_path)
    assert res.returncode != 0  # the sweep reports its failure
    assert "class 0 (square) has 120 training images, fewer than the 500 labeled" in res.stderr
    assert (tmp_path / "sw/1/pretext/COMPLETE").exists()  # the job after the failed one still ran
    assert not (tmp_path / "sw/0/metrics.json").exists()


def test_smoke_run_in_mixed_bfloat16(tmp_path):
    res = run_cli(
        SMOKE + SHORT + ["trainer.precision=mixed_bfloat16", "downstream.evals=[finetune]", "hydra.run.dir=run"],
        tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.loads((tmp_path / "run/metrics.json").read_text())
    assert np.isfinite(metrics["pretext"]["loss"]) and 0 <= metrics["ssl_test_accuracy"] <= 1
    assert (metrics["precision"], metrics["precision_reason"]) == ("mixed_bfloat16", "set by trainer.precision")
    assert metrics["onednn"] is True and metrics["onednn_reason"].startswith("TF_ENABLE_ONEDNN_OPTS=1")
    log = (tmp_path / "run/cli.log").read_text()
    assert "precision mixed_bfloat16 (trainer.precision=mixed_bfloat16: set by trainer.precision); oneDNN" in log
