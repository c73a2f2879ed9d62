"""A study: every evaluation x label budget x repeat over one pretext encoder, with progress and an ETA."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import keras
import numpy as np
from omegaconf import DictConfig
from rich.progress import Progress

from sslrun.data.base import RawData
from sslrun.data.splits import FEATURE_DRAWS, Budget, LabelDraw, Splits, make_splits
from sslrun.downstream.evals import EVALS, WORKER_EVALS, EvalInputs
from sslrun.downstream.rows import PREEMPTION, is_stored, load_result, row_dir, store_result, trim
from sslrun.downstream.workers import Encoders, FitPool
from sslrun.errors import SslrunError
from sslrun.training.progress import progress_bars
from sslrun.training.sweep_progress import tick

log = logging.getLogger("sslrun")

REPEAT_SEED_STRIDE = 7919  # training seed of repeat r: seed + r * stride (repeat 0 trains with `seed` itself)


@dataclass
class StudyResult:
    rows: list[dict[str, Any]] = field(default_factory=list)  # results.csv
    # a strategy draw's pair: the same evaluations, budgets and repeats with draw=random (results_random.csv)
    random_rows: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)  # downstream/history.csv
    first: dict[str, dict[str, Any]] = field(default_factory=dict)  # eval -> result at the first budget, repeat 0
    first_splits: Splits | None = None
    model: dict[str, Any] | None = None  # what export_classifier wrote to <run dir>/model/


def label_draw(d: DictConfig) -> LabelDraw:
    """How downstream.* says the labeled and validation images are chosen."""
    return LabelDraw(
        draw=d.draw.value, val_per_class=d.val_per_class, val_split=d.val_split, val_from_test=d.val_from_test
    )


def study_draws(d: DictConfig) -> list[str]:
    """The draws a study runs: the configured one, and `random` beside a strategy of FEATURE_DRAWS (its pair)."""
    return [d.draw.value, "random"] if d.draw.value in FEATURE_DRAWS else [d.draw.value]


def pool_features(raw: RawData, d: DictConfig, encoders: Encoders) -> np.ndarray | None:
    """The pretext encoder's features of the train split (the candidates to label), as the frozen-feature
    evaluations compute them (downstream.feature_flip included); None when the draw needs none."""
    if d.draw.value not in FEATURE_DRAWS:
        return None
    from sslrun.downstream.features import features

    start = time.perf_counter()
    out = features(encoders.pretrained(), raw.x_train, flip=d.feature_flip)
    log.info(
        "downstream.draw=%s: pretext features of the %d train images in %.1fs; labels chosen from them, "
        "paired with draw=random on the same budgets and repeats",
        d.draw.value,
        len(out),
        time.perf_counter() - start,
    )
    return out


def run_study(
    raw: RawData,
    budgets: list[Budget],
    cfg: DictConfig,
    encoders: Encoders,
    tb_root: Path | None,
    rows_root: Path,
    show_bars: bool = True,
    workers: int = 0,
) -> StudyResult:
    """Each (budget, repeat) draws its own labels; every evaluation of that pair sees the same draw.
    Each finished row is stored under rows_root as it finishes, and a row found there is not run again
    (sslrun.downstream.rows). workers > 0: the fine-tuning fits (WORKER_EVALS) run in that many worker
    processes, the rest here; the rows keep the order of the plan either way."""
    d, out, cache = cfg.downstream, StudyResult(), {}  # cache: what this process's evaluations share (features)
    draws = [(b, r) for b in budgets for r in range(d.repeats)]
    kinds, feats = study_draws(d), pool_features(raw, d, encoders)
    progress = progress_bars(show_bars) or Progress(disable=True)  # disabled: the log lines below remain
    with PREEMPTION, progress, _pool(workers, cfg, encoders) as pool:
        rows = _Rows(progress, len(draws) * len(d.evals) * len(kinds))
        if pool is not None:
            PREEMPTION.on_signal_hooks.append(pool.stop)
        planned: list[tuple] = []  # (draw, eval, budget, repeat, splits, where its result is)
        for (budget, repeat), kind in ((br, k) for br in draws for k in kinds):
            how = replace(label_draw(d), draw=kind)
            splits = make_splits(
                raw,
                budget,
                how,
                cfg.seed,
                cfg.dataset.num_classes,
                str(getattr(cfg.dataset.pool, "value", cfg.dataset.pool)),
                repeat=repeat,
                features=feats,
            )
            main = kind == kinds[0]
            out.first_splits = out.first_splits or splits
            for name in d.evals:
                seed, keeps = cfg.seed + repeat * REPEAT_SEED_STRIDE, main and (budget, repeat) == draws[0]
                tb = tb_root / name / f"budget_{budget.key}" / f"repeat_{repeat}" if tb_root and main else None
                entry = row_dir(rows_root if main else rows_root / kind, name, budget.key, repeat)
                if is_stored(entry):  # finished by an earlier run of this command
                    planned.append((kind, name, budget, repeat, splits, entry))
                    rows.advance()
                elif pool is not None and name in WORKER_EVALS:
                    future = pool.submit(name, splits, seed, tb, keeps, entry)
                    future.add_done_callback(partial(_done, rows, name, budget, repeat, kind))
                    planned.append((kind, name, budget, repeat, splits, future))
                else:
                    rows.describe(f"{name} budget {budget.key} repeat {repeat + 1}/{d.repeats}")
                    result = EVALS.get(name)(EvalInputs.build(cfg, encoders, splits, seed, tb, keeps, cache))
                    PREEMPTION.check()  # a fit cut short by a signal is not a row
                    store_result(entry, trim(result, keeps))
                    _log(name, budget, repeat, result, kind)
                    rows.advance()
                    planned.append((kind, name, budget, repeat, splits, result))
        resumed = sum(isinstance(where, Path) for *_, where in planned)
        if resumed:
            log.info(
                "downstream: %d of %d rows finished by an earlier run of this command (%s); running the rest",
                resumed,
                len(planned),
                rows_root,
            )
        for kind, name, budget, repeat, splits, where in planned:
            keeps = kind == kinds[0] and (budget, repeat) == draws[0]
            result = _collect(where, pool, keeps)
            if kind == kinds[0]:
                _record(out, name, budget, repeat, splits, result)
            else:
                out.random_rows.append(_row(name, budget, repeat, splits, result, kind))
                trim(result, keeps=False)
    return out


def _collect(where: Any, pool: FitPool | None, keeps: bool) -> dict:
    """A row's result: computed here, from a worker, or read back from its row folder."""
    if isinstance(where, Path):
        return load_result(where, with_classifier=keeps)
    if isinstance(where, Future):
        try:
            return pool.result(where)
        except SslrunError:
            PREEMPTION.check()  # the workers were stopped by a signal: say that, not that they died
            raise
    return where


def _pool(workers: int, cfg: DictConfig, encoders: Encoders):
    if workers <= 0:
        return nullcontext(None)
    return FitPool(workers, cfg, encoders, keras.config.dtype_policy().name)


class _Rows:
    """The study's bar and a sweep's progress file (sslrun.training.sweep_progress) move one finished row at a
    time, from this thread or a worker's done callback."""

    def __init__(self, progress: Progress, total: int) -> None:
        self.progress, self.total, self.done, self.lock = progress, total, 0, threading.Lock()
        self.task = progress.add_task("downstream", total=total)
        tick("downstream", 0, total)

    def describe(self, text: str) -> None:
        self.progress.update(self.task, description=text)

    def advance(self) -> None:
        with self.lock:
            self.done += 1
            self.progress.advance(self.task)
            tick("downstream", self.done, self.total)


def _done(rows: _Rows, name: str, budget: Budget, repeat: int, kind: str, future: Future) -> None:
    """A worker's fit finished: the bar moves and the log says so (in the order fits finish)."""
    rows.advance()
    if not future.cancelled() and future.exception() is None:
        _log(name, budget, repeat, future.result(), kind)


def _log(name: str, budget: Budget, repeat: int, result: dict, kind: str) -> None:
    log.info(
        "%s budget %s repeat %d (draw %s): test accuracy %.4f (%.1fs%s)",
        name,
        budget.key,
        repeat,
        kind,
        result["test_accuracy"],
        result["seconds"],
        ", cached" if result.get("cached") else "",
    )


def _row(name: str, budget: Budget, repeat: int, splits: Splits, result: dict, kind: str) -> dict[str, Any]:
    return {
        "eval": name,
        "budget": budget.key,
        "labeled": len(splits.labeled_y),
        "repeat": repeat,
        "test_accuracy": result["test_accuracy"],
        "test_loss": result["test_loss"],
        "val_accuracy": result.get("val_accuracy"),
        "seconds": result["seconds"],
        "cached": bool(result.get("cached", False)),
        "draw": kind,
    }


def _record(out: StudyResult, name: str, budget: Budget, repeat: int, splits: Splits, result: dict) -> None:
    row = _row(name, budget, repeat, splits, result, "")
    out.rows.append({k: v for k, v in row.items() if k != "draw"})
    out.history += [{"eval": name, "budget": budget.key, "repeat": repeat, **row} for row in result.pop("history")]
    if name not in out.first:
        out.first[name] = result  # keeps "predictions" for the prediction grid
    else:
        trim(result, keeps=False)


def vs_random(rows: list[dict[str, Any]], random_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per evaluation and budget: the strategy draw's accuracy minus random's, paired by repeat (mean, 95% CI,
    paired t and Wilcoxon p: sslrun.report.stats.paired_vs_baseline)."""
    from sslrun.report.stats import paired_vs_baseline

    def by_repeat(table: list[dict[str, Any]]) -> dict[tuple[str, str], dict[int, float]]:
        out: dict[tuple[str, str], dict[int, float]] = {}
        for r in table:
            out.setdefault((r["eval"], str(r["budget"])), {})[int(r["repeat"])] = float(r["test_accuracy"])
        return out

    mine, theirs = by_repeat(rows), by_repeat(random_rows)
    return [
        {
            "eval": name,
            "budget": budget,
            "mean": float(np.mean(list(acc.values()))),
            "random_mean": float(np.mean(list(theirs[(name, budget)].values()))),
            **(paired_vs_baseline(acc, theirs[(name, budget)]) or {}),
        }
        for (name, budget), acc in mine.items()
        if (name, budget) in theirs
    ]


def per_eval_summary(summary: list[dict[str, Any]], first_budget: str) -> dict[str, dict[str, Any]]:
    """metrics.json's `downstream`: per evaluation, the statistics at the first budget."""
    return {s["eval"]: {k: v for k, v in s.items() if k != "eval"} for s in summary if s["budget"] == first_budget}


def mean_or_none(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None
