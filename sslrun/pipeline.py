"""The run: config -> data -> pretext -> weights on disk -> downstream -> report."""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf
from omegaconf import DictConfig, OmegaConf

import sslrun
from sslrun.config import pretext_from
from sslrun.data.base import RawData
from sslrun.data.datasets import DATASETS
from sslrun.data.fit import fit_to_data
from sslrun.data.hygiene import check_pool
from sslrun.data.splits import FEATURE_DRAWS, Budget, Splits, make_splits
from sslrun.downstream.evals import (
    BASELINE,
    CLASSIFIER_EVALS,
    EVALS,
    FEATURE_EVALS,
    WORKER_EVALS,
    headline,
    uses_frozen_features,
)
from sslrun.downstream.export import export_classifier
from sslrun.downstream.label_files import write_labeled, write_pseudo_labels
from sslrun.downstream.pretrained import load_pretrained_encoder, resolve_pretext_dir
from sslrun.downstream.rows import ROWS
from sslrun.downstream.study import (
    StudyResult,
    label_draw,
    mean_or_none,
    per_eval_summary,
    run_study,
    vs_random,
)
from sslrun.downstream.workers import Encoders, plan_workers
from sslrun.encoders import ENCODERS
from sslrun.errors import SslrunError
from sslrun.precision import dtype_policy, resolve_precision
from sslrun.pretext import PRETEXTS
from sslrun.report.answer import answer
from sslrun.report.stats import summarize
from sslrun.report.summary import print_table, write_history_csv, write_reports
from sslrun.tfboot import onednn_setting
from sslrun.training.artifacts import COMPLETE, atomic_write_json, is_complete
from sslrun.training.cache import cache_key, key_parts, link_run_dir, locked
from sslrun.training.distribute import check_multi_worker, pretext_strategy
from sslrun.training.pretext import run_pretext
from sslrun.training.rundir import check_unchanged, claim_run_dir
from sslrun.training.sweep_progress import report_to, tick

log = logging.getLogger("sslrun")


def check_config(cfg: DictConfig) -> None:
    """Checks the schema cannot express; run before any data is read."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise SslrunError(
            f"no value for {', '.join(missing)} (??? in the config); set it on the command line, "
            f"e.g. `sslrun {missing[0]}=...`"
        )
    for registry, name, key in (
        (DATASETS, cfg.dataset.name, "dataset.name"),
        (PRETEXTS, cfg.pretext.name, "pretext.name"),
        (ENCODERS, cfg.encoder.name, "encoder.name"),
    ):
        if name not in registry:
            raise SslrunError(f"{key}={name!r} is not registered; valid: {', '.join(registry.names())}")
    if cfg.downstream.name != "finetune":  # conf/downstream's one option; its evaluations are downstream.evals
        raise SslrunError(
            f"downstream.name={cfg.downstream.name!r}: the downstream stage is 'finetune'; choose "
            f"evaluations with downstream.evals (valid: {', '.join(EVALS.names())})"
        )
    if PRETEXTS.get(cfg.pretext.name).needs_colour and cfg.dataset.channels != 3:
        raise SslrunError(
            f"pretext={cfg.pretext.name} needs colour images, but dataset={cfg.dataset.name} has "
            f"{cfg.dataset.channels} channel(s); use dataset=cifar10, stl10 or image_folder (dataset.channels=3)"
        )
    stage, source = cfg.stage.value, pretext_from(cfg)
    if stage == "downstream" and not source:
        raise SslrunError("stage=downstream needs pretext.from=<run dir> (a run whose pretext stage finished)")
    if stage == "pretext" and source:
        raise SslrunError("stage=pretext trains a new encoder; drop pretext.from, or use stage=downstream")
    if source:
        resolve_pretext_dir(source)  # missing or unfinished: said now, before any data is read
    positive = {
        "trainer.epochs": cfg.trainer.epochs,
        "trainer.batch_size": cfg.trainer.batch_size,
        "downstream.batch_size": cfg.downstream.batch_size,
        "downstream.steps_per_execution": cfg.downstream.steps_per_execution,
    }
    for key, value in positive.items():
        if value <= 0:
            raise SslrunError(f"{key}={value}: must be a positive number")
    if cfg.trainer.budget_minutes is not None and cfg.trainer.budget_minutes <= 0:
        raise SslrunError(
            f"trainer.budget_minutes={cfg.trainer.budget_minutes}: give a positive number of minutes, "
            "or null to train trainer.epochs epochs"
        )
    if not 0 <= cfg.trainer.warmup_epochs < cfg.trainer.epochs:
        raise SslrunError(
            f"trainer.warmup_epochs={cfg.trainer.warmup_epochs}: must be at least 0 and less than "
            f"trainer.epochs={cfg.trainer.epochs}"
        )
    if not 0 <= cfg.downstream.selftrain_threshold <= 1:
        raise SslrunError(
            f"downstream.selftrain_threshold={cfg.downstream.selftrain_threshold}: a teacher's confidence "
            "is between 0 and 1; use a value in [0, 1] (0: every pool image gets a pseudo-label)"
        )
    budget(cfg.downstream)  # exactly one label budget, positive
    for name in cfg.downstream.evals:
        if name not in EVALS:
            raise SslrunError(f"downstream.evals: {name!r} is not an evaluation; valid: {', '.join(EVALS.names())}")
    if not cfg.downstream.evals and stage != "pretext":
        raise SslrunError("downstream.evals is empty; name at least one of " + ", ".join(EVALS.names()))
    if cfg.downstream.feature_flip and not uses_frozen_features(cfg.downstream):
        raise SslrunError(
            f"downstream.feature_flip=true changes only {', '.join(FEATURE_EVALS)} (and selftrain with "
            f"selftrain_teacher=propagate), but downstream.evals={list(cfg.downstream.evals)}; add one "
            "of them, or drop feature_flip (downstream.tta=flip mirrors finetune's predictions)"
        )
    if cfg.downstream.write_pseudo_labels and not set(cfg.downstream.evals) & set(CLASSIFIER_EVALS):
        raise SslrunError(
            f"downstream.write_pseudo_labels=true labels the pool with the exported classifier, but "
            f"downstream.evals={list(cfg.downstream.evals)} trains none; add one of "
            f"{', '.join(CLASSIFIER_EVALS)}, or drop write_pseudo_labels"
        )
    if cfg.dataset.drop_test_duplicates and cfg.dataset.hygiene is False:
        raise SslrunError(
            "dataset.drop_test_duplicates=true drops what the hygiene check finds, but "
            "dataset.hygiene=false turns the check off; drop one of them"
        )
    check_augment_presets(cfg)
    label_draw(cfg.downstream)  # one validation source, a known draw
    check_strategy_draw(cfg)


def check_strategy_draw(cfg: DictConfig) -> None:
    """A draw from the pretext features (downstream.draw=typiclust|probcover|kcenter) happens after pretext,
    so the pretext pool must not depend on it, and it picks a total, not a number per class."""
    d, pool = cfg.downstream, str(getattr(cfg.dataset.pool, "value", cfg.dataset.pool))
    if d.draw.value not in FEATURE_DRAWS:
        return
    if pool == "train_excluding_labeled":
        raise SslrunError(
            f"downstream.draw={d.draw.value} chooses labels from the features of the pretext encoder, "
            "which would have to train without them (dataset.pool=train_excluding_labeled): use "
            "dataset.pool=train or auto"
        )
    if d.num_labels is None and d.label_fraction is None:
        raise SslrunError(
            f"downstream.draw={d.draw.value} picks a total without knowing the classes: set "
            "downstream.labels_per_class=null downstream.num_labels=N (and label_budgets in labels)"
        )
    if d.label_budgets is not None and any(str(b).lower() == "all" for b in d.label_budgets):
        raise SslrunError(
            f"downstream.draw={d.draw.value}: the budget 'all' has nothing to choose; drop it "
            "from downstream.label_budgets"
        )


def check_augment_presets(cfg: DictConfig) -> None:
    from sslrun.pretext.augment import VIEW_PRESETS

    for key, node, extra in (
        ("pretext.augment", cfg.pretext.get("augment"), ("auto",)),
        ("downstream.augment", cfg.downstream.get("augment"), ("none",)),
    ):
        if node is not None and node.preset not in (*extra, *VIEW_PRESETS):
            raise SslrunError(f"{key}.preset={node.preset!r}: use one of {', '.join((*extra, *VIEW_PRESETS))}")
    down = cfg.downstream.get("augment")
    if down is not None and down.get("size") is not None:
        raise SslrunError(
            f"downstream.augment.size={down.size}: the classifier trains and tests on whole images; "
            "leave it null (pretext.augment.size sets the pretext views' size)"
        )


def budget(d: DictConfig) -> Budget:
    return Budget(d.labels_per_class, d.num_labels, d.label_fraction)


def budgets(d: DictConfig) -> list[Budget]:
    raw_budgets = OmegaConf.to_container(d.label_budgets) if d.label_budgets is not None else None
    return Budget.study(d.labels_per_class, d.num_labels, d.label_fraction, raw_budgets)


def load_raw(cfg: DictConfig) -> RawData:
    fit_to_data(cfg)  # idempotent: run() did it already; a caller of this stage alone gets the same choices
    params = OmegaConf.to_container(cfg.dataset, resolve=True, enum_to_str=True)
    for key in ("pool", "train_limit", "test_limit", "hygiene", "drop_test_duplicates"):
        params.pop(key, None)
    raw = DATASETS.build(params.pop("name"), data_dir=cfg.data_dir, cache_dir=cfg.cache_dir, **params)
    if raw.image_shape[-1] != cfg.dataset.channels:
        raise SslrunError(
            f"{cfg.dataset.name} has {raw.image_shape[-1]} channels but dataset.channels={cfg.dataset.channels}"
        )
    return limit(raw, cfg.dataset.train_limit, cfg.dataset.test_limit)


def limit(raw: RawData, train: int | None, test: int | None) -> RawData:
    """At most the first `train` train and `test` test images (seed 001's 1,000 and 300); a split with fewer
    images is used whole (experiment=smoke's 1,200 and 300 on any data set), and the log says how many."""
    for key, n, split, have in (
        ("train_limit", train, "train", len(raw.y_train)),
        ("test_limit", test, "test", len(raw.y_test)),
    ):
        if n is None:
            continue
        if n <= 0:
            raise SslrunError(f"dataset.{key}={n}: must be a positive number of images; null uses all {have}")
        used = f"the first {n:,} of {have:,}" if n < have else f"all {have:,}"
        log.info("dataset.%s=%d: %s %s images", key, n, used, split)
    if train is None and test is None:
        return raw
    return replace(
        raw,
        x_train=raw.x_train[:train],
        y_train=raw.y_train[:train],
        x_test=raw.x_test[:test],
        y_test=raw.y_test[:test],
        train_paths=None if raw.train_paths is None else raw.train_paths[:train],
        test_paths=None if raw.test_paths is None else raw.test_paths[:test],
    )


def first_splits(cfg: DictConfig, raw: RawData) -> Splits:
    """The splits of the first budget, repeat 0: the pretext pool and validation images of the pretext stage."""
    d, first = cfg.downstream, budgets(cfg.downstream)[0]
    pool = str(getattr(cfg.dataset.pool, "value", cfg.dataset.pool))
    how = label_draw(d)
    if how.draw in FEATURE_DRAWS:
        # the strategy needs the pretext features, so it draws in the downstream stage; the pretext stage's
        # pool (train, unlabeled: check_strategy_draw) does not depend on it, and its validation images are
        # draw=random's of the same (seed, repeat 0), so the pretext cache key is a random draw's
        how = replace(how, draw="random")
    splits = make_splits(raw, first, how, cfg.seed, cfg.dataset.num_classes, pool)
    log.info(
        "data %s from %s: %s (pretext pool: %s, %s)",
        cfg.dataset.name,
        raw.source,
        splits.sizes(),
        splits.pool,
        first.describe(),
    )
    return splits


def load_splits(cfg: DictConfig) -> tuple[Splits, str]:
    raw = load_raw(cfg)
    return first_splits(cfg, raw), raw.source


def run_downstream(cfg: DictConfig, raw: RawData, image_shape: tuple, pretext_dir: Path, run_dir: Path) -> StudyResult:
    """Every evaluation x budget x repeat; results.csv, downstream/history.csv and labeled_0.csv, model/,
    pseudo_labels.csv (downstream.write_pseudo_labels)."""
    _, info = load_pretrained_encoder(pretext_dir, image_shape)
    if info["encoder"]["name"] != cfg.encoder.name:
        log.warning(
            "using the pretext run's encoder %s (this config names %s)", info["encoder"]["name"], cfg.encoder.name
        )
    enc = info["encoder"]
    encoders = Encoders(pretext_dir, tuple(image_shape), enc)
    tb_root = run_dir / "tensorboard" / "downstream" if cfg.tensorboard else None
    plan = budgets(cfg.downstream)
    fits = len(plan) * cfg.downstream.repeats * sum(e in WORKER_EVALS for e in cfg.downstream.evals)
    workers = plan_workers(cfg.downstream.workers, fits, single_device=not tf.config.list_physical_devices("GPU"))
    study = run_study(raw, plan, cfg, encoders, tb_root, run_dir / ROWS, cfg.trainer.progress, workers)
    write_history_csv(study.rows, run_dir / "results.csv")
    if study.random_rows:
        write_history_csv(study.random_rows, run_dir / "results_random.csv")
    write_history_csv(study.history, run_dir / "downstream" / "history.csv")
    study.model = export_classifier(
        run_dir, study.first, study.first_splits, cfg.downstream, enc.get("input_scale", 1.0)
    )
    write_labeled(run_dir, study.first_splits)
    if cfg.downstream.write_pseudo_labels and study.model is not None:  # check_config: a classifier trained
        write_pseudo_labels(run_dir, study.first_splits)
    return study


def _setup(cfg: DictConfig) -> None:
    if not pretext_from(cfg):  # before any TF op: logical CPUs and MultiWorkerMirroredStrategy need it
        check_multi_worker(cfg.trainer.strategy.value, cfg.pretext.cache)
        pretext_strategy(cfg.trainer.strategy.value)
    keras.utils.set_random_seed(cfg.seed)
    if cfg.trainer.deterministic:
        tf.config.experimental.enable_op_determinism()


def run(cfg: DictConfig, run_dir: Path) -> float | None:
    """The stages in run_dir, by one process at a time, refused if run_dir holds a run of another config."""
    fit_to_data(cfg)  # dataset.image_size/channels null, encoder=auto: chosen from the images, and logged
    check_config(cfg)  # first: a bad config writes nothing
    with claim_run_dir(cfg, run_dir):
        return run_stages(cfg, run_dir)


def run_stages(cfg: DictConfig, run_dir: Path) -> float | None:
    """Run the stages cfg.stage asks for in run_dir; return cfg.objective (None if not measured)."""
    check_config(cfg)
    if (run_dir / "metrics.json").is_file():
        log.info("%s already holds a finished run (metrics.json); nothing to do", run_dir)
        return json.loads((run_dir / "metrics.json").read_text()).get(cfg.objective.value)
    policy, why = resolve_precision(cfg.trainer.precision.value)
    onednn, onednn_why = onednn_setting()
    log.info(
        "precision %s (trainer.precision=%s: %s); oneDNN kernels %s (%s)",
        policy,
        cfg.trainer.precision.value,
        why,
        "on" if onednn else "off",
        onednn_why,
    )
    hardware = {"precision": policy, "precision_reason": why, "onednn": onednn, "onednn_reason": onednn_why}
    # pretext and downstream models alike; put back after, so a caller's next model is not built in bfloat16
    with dtype_policy(policy):
        return _run_stages(cfg, run_dir, hardware)


def _run_stages(cfg: DictConfig, run_dir: Path, hardware: dict[str, Any]) -> float | None:
    _setup(cfg)
    report_to(run_dir, cfg.pretext.name)  # in a compare sweep: where this job stands, for the sweep's bar
    start = time.perf_counter()
    raw = load_raw(cfg)
    raw, hygiene = check_pool(raw, cfg.dataset, run_dir)  # before the splits: a drop changes the pool
    splits = first_splits(cfg, raw)
    metrics: dict[str, Any] = {
        "sslrun_version": sslrun.__version__,
        "dataset": cfg.dataset.name,
        "data_source": raw.source,
        "pretext_task": cfg.pretext.name,
        "encoder": cfg.encoder.name,
        "seed": cfg.seed,
        "stage": cfg.stage.value,
        "splits": splits.sizes(),
        "pretext_pool": splits.pool,
        "label_budget": budget(cfg.downstream).describe()
        if cfg.downstream.label_budgets is None
        else [b.describe() for b in budgets(cfg.downstream)],
        "repeats": cfg.downstream.repeats,
        **hardware,
        **({"hygiene": hygiene} if hygiene else {}),
    }
    if pretext_from(cfg):
        pretext_dir = resolve_pretext_dir(pretext_from(cfg))
        log.info("reusing the pretext stage in %s", pretext_dir)
        metrics["pretext"] = {"reused_from": str(pretext_dir)}
        done = json.loads((pretext_dir / COMPLETE).read_text())  # what trained there, not this config's defaults
        metrics["pretext_task"], metrics["encoder"] = done["task"], done["encoder"]["name"]
    elif cfg.pretext.cache:
        pretext_dir, metrics["pretext"] = cached_pretext(cfg, splits, raw.source, run_dir)
    else:
        pretext_dir, metrics["pretext"] = own_pretext(cfg, splits, raw.source, run_dir)
    tick("pretext", cfg.trainer.epochs, cfg.trainer.epochs)  # trained, resumed or reused: done
    study = None
    if cfg.stage.value != "pretext":
        study = run_downstream(cfg, raw, splits.image_shape, pretext_dir, run_dir)
        metrics.update(study_metrics(study, budgets(cfg.downstream)[0].key, list(cfg.downstream.evals)))
        metrics["model"] = study.model  # <run dir>/model/: which classifier, and why
        if study.random_rows:
            metrics["draw"] = cfg.downstream.draw.value
            metrics["vs_random"] = log_vs_random(cfg.downstream.draw.value, vs_random(study.rows, study.random_rows))
        metrics["answer"] = answer(metrics)
    metrics["seconds"] = round(time.perf_counter() - start, 2)
    plots = make_plots(run_dir, study, splits.class_names) if study else {}
    write_reports(run_dir, metrics, "sslrun " + " ".join(sys.argv[1:]), plots)
    print_table(metrics)
    log.info("run finished in %.1fs; metrics in %s", metrics["seconds"], run_dir / "metrics.json")
    for line in metrics.get("answer", []):  # the run's answer is what the terminal ends with
        print(line, flush=True)
    return metrics.get(cfg.objective.value)


def tb_dir(cfg: DictConfig, run_dir: Path) -> Path | None:
    return run_dir / "tensorboard" / "pretext" if cfg.tensorboard else None


def own_pretext(cfg: DictConfig, splits: Splits, source: str, run_dir: Path) -> tuple[Path, dict[str, Any]]:
    """The run dir's own pretext stage (pretext.cache=false): checked against pretext/key.json, then reused
    if finished, else trained or resumed."""
    pretext_dir = run_dir / "pretext"
    check_unchanged(pretext_dir / "key.json", key_parts(cfg, splits, source), f"pretext stage in {pretext_dir}")
    if is_complete(pretext_dir):  # a rerun of a run whose pretext stage finished
        log.info("pretext stage in %s already finished; not training again", pretext_dir)
        return pretext_dir, json.loads((pretext_dir / COMPLETE).read_text())
    return pretext_dir, run_pretext(cfg, splits, pretext_dir, tb_dir(cfg, run_dir))


def cached_pretext(cfg: DictConfig, splits: Splits, source: str, run_dir: Path) -> tuple[Path, dict[str, Any]]:
    """Reuse the pretext stage of an identical earlier run, or train it (once, under a lock) into the cache."""
    parts = key_parts(cfg, splits, source)
    key = cache_key(parts)
    key_dir = Path(cfg.cache_dir).expanduser() / "pretext" / key
    reused = is_complete(key_dir)
    if not reused:
        with locked(key_dir.with_suffix(".lock"), f"pretext cache key {key}", timeout=cfg.lock_timeout):
            reused = is_complete(key_dir)  # another process may have finished it while we waited
            if not reused:
                atomic_write_json(key_dir / "key.json", parts)
                run_pretext(cfg, splits, key_dir, tb_dir(cfg, run_dir))
    link_run_dir(run_dir / "pretext", key_dir)
    info = json.loads((key_dir / COMPLETE).read_text())
    if reused:
        log.info("pretext: reusing cache key %s (%s); pretext.cache=false retrains", key, key_dir)
    return key_dir, {**info, "cache_key": key, "cache_dir": str(key_dir), "reused": reused}


def log_vs_random(draw: str, table: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One log line per evaluation and budget: the strategy draw against random on the same repeats."""
    for e in table:
        ci = (
            f"[{e['diff_ci_low']:+.4f}, {e['diff_ci_high']:+.4f}]"
            if e.get("diff_ci_low") is not None
            else "(no CI under 2 repeats)"
        )
        log.info(
            "%s budget %s: draw %s %.4f vs random %.4f, paired difference %+.4f, 95%% CI %s over %d repeats",
            e["eval"],
            e["budget"],
            draw,
            e["mean"],
            e["random_mean"],
            e.get("diff_mean") or 0.0,
            ci,
            e.get("n_pairs", 0),
        )
    return table


def study_metrics(study: StudyResult, first_budget: str, evals: list[str]) -> dict[str, Any]:
    """metrics.json: the study's statistics, and the headline numbers at the first budget."""
    summary = summarize(study.rows)
    downstream = per_eval_summary(summary, first_budget)
    for name, entry in downstream.items():
        rows = [r for r in study.rows if r["eval"] == name and r["budget"] == first_budget]
        entry["test_accuracy"] = entry["mean"]
        entry["test_loss"] = mean_or_none([r["test_loss"] for r in rows])
        entry["val_accuracy"] = mean_or_none([r.get("val_accuracy") for r in rows])
        entry["seconds"] = round(sum(r["seconds"] for r in rows), 2)
    out: dict[str, Any] = {"downstream": downstream, "study": summary}
    ssl_eval = headline(evals)
    ssl = downstream.get(ssl_eval)
    if ssl is not None:
        out["ssl_eval"] = ssl_eval
        out["ssl_test_accuracy"] = ssl["test_accuracy"]
        out["ssl_val_accuracy"] = ssl["val_accuracy"]
    if BASELINE in downstream:
        out["baseline_test_accuracy"] = downstream[BASELINE]["test_accuracy"]
        if ssl is not None:
            out["gain"] = out["ssl_test_accuracy"] - out["baseline_test_accuracy"]
    return out


def make_plots(run_dir: Path, study: StudyResult, class_names: tuple[str, ...]) -> dict[str, Path]:
    """The run's figures (PNG, next to report.md)."""
    from sslrun.report import plots

    out: dict[str, Path] = {}
    fig = run_dir / "figures"
    fig.mkdir(exist_ok=True)
    summary = summarize(study.rows)
    out["boxplots"] = plots.plot_boxplots(study.rows, fig / "boxplots.png")
    if len({s["budget"] for s in summary}) > 1:
        out["label_efficiency"] = plots.plot_label_efficiency(summary, fig / "label_efficiency.png")
    histories = {
        name: run_dir / sub / "history.csv" for name, sub in (("pretext", "pretext"), ("downstream", "downstream"))
    }
    histories = {k: v for k, v in histories.items() if v.is_file()}
    if histories:
        out["training_curves"] = plots.plot_training_curves(histories, fig / "training_curves.png")
    health = plots.plot_health(run_dir / "pretext" / "history.csv", fig / "pretext_health.png")
    if health is not None:
        out["pretext_health"] = health
    first = next((study.first[e] for e in (headline(list(study.first)), BASELINE) if e in study.first), None)
    if first is not None and "predictions" in first and study.first_splits is not None:
        s = study.first_splits
        out["predictions"] = plots.plot_prediction_grid(
            s.test_x, s.test_y, first["predictions"], class_names, fig / "predictions.png"
        )
    examples = run_dir / "pretext" / "examples.png"
    if examples.is_file():
        out["pretext_examples"] = examples
    return out
