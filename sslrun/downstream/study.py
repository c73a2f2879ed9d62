"""A study: every evaluation x label budget x repeat over one pretext encoder, with progress and an ETA."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig
from rich.progress import Progress

from sslrun.data.base import RawData
from sslrun.data.splits import Budget, LabelDraw, Splits, make_splits
from sslrun.downstream.evals import EVALS, EvalInputs
from sslrun.training.progress import progress_bars

log = logging.getLogger("sslrun")

REPEAT_SEED_STRIDE = 7919  # training seed of repeat r: seed + r * stride (repeat 0 trains with `seed` itself)


@dataclass
class StudyResult:
    rows: list[dict[str, Any]] = field(default_factory=list)  # results.csv
    history: list[dict[str, Any]] = field(default_factory=list)  # downstream/history.csv
    first: dict[str, dict[str, Any]] = field(default_factory=dict)  # eval -> result at the first budget, repeat 0
    first_splits: Splits | None = None
    model: dict[str, Any] | None = None  # what export_classifier wrote to <run dir>/model/


def label_draw(d: DictConfig) -> LabelDraw:
    """How downstream.* says the labeled and validation images are chosen."""
    return LabelDraw(draw=d.draw.value, val_per_class=d.val_per_class, val_split=d.val_split,
                     val_from_test=d.val_from_test)


def run_study(
    raw: RawData, budgets: list[Budget], cfg: DictConfig, encoders: tuple[Callable, Callable], tb_root: Path | None,
    show_bars: bool = True, encoder_info: dict | None = None,
) -> StudyResult:
    """Each (budget, repeat) draws its own labels; every evaluation of that pair sees the same draw."""
    d, out, cache = cfg.downstream, StudyResult(), {}
    baseline_cache = Path(cfg.cache_dir).expanduser() / "downstream" if d.cache else None
    total = len(budgets) * d.repeats * len(d.evals)
    progress = progress_bars(show_bars) or Progress(disable=True)  # disabled: the log lines below remain
    with progress:
        task = progress.add_task("downstream", total=total)
        for budget in budgets:
            for repeat in range(d.repeats):
                splits = make_splits(raw, budget, label_draw(d), cfg.seed, cfg.dataset.num_classes,
                                     str(getattr(cfg.dataset.pool, "value", cfg.dataset.pool)), repeat=repeat)
                out.first_splits = out.first_splits or splits
                for name in d.evals:
                    progress.update(task, description=f"{name} budget {budget.key} repeat {repeat + 1}/{d.repeats}")
                    tb = tb_root / name / f"budget_{budget.key}" / f"repeat_{repeat}" if tb_root else None
                    inputs = EvalInputs(*encoders, splits=splits, d=d, seed=cfg.seed + repeat * REPEAT_SEED_STRIDE,
                                        tb_dir=tb, cache=cache, baseline_cache=baseline_cache,
                                        encoder_info=encoder_info or {}, lock_timeout=cfg.lock_timeout,
                                        keeps_classifier=name not in out.first)
                    result = EVALS.get(name)(inputs)
                    _record(out, name, budget, repeat, splits, result)
                    progress.advance(task)
                    log.info("%s budget %s repeat %d: test accuracy %.4f (%.1fs%s)", name, budget.key, repeat,
                             result["test_accuracy"], result["seconds"], ", cached" if result.get("cached") else "")
    return out


def _record(out: StudyResult, name: str, budget: Budget, repeat: int, splits: Splits, result: dict) -> None:
    out.rows.append({"eval": name, "budget": budget.key, "labeled": len(splits.labeled_y), "repeat": repeat,
                     "test_accuracy": result["test_accuracy"], "test_loss": result["test_loss"],
                     "val_accuracy": result.get("val_accuracy"),
                     "seconds": result["seconds"], "cached": bool(result.get("cached", False))})
    out.history += [{"eval": name, "budget": budget.key, "repeat": repeat, **row} for row in result.pop("history")]
    if name not in out.first:
        out.first[name] = result  # keeps "predictions" for the prediction grid
    else:  # only the first draw's predictions and classifiers are kept (the grid, the export)
        result.pop("predictions", None)
        result.pop("classifier", None)


def per_eval_summary(summary: list[dict[str, Any]], first_budget: str) -> dict[str, dict[str, Any]]:
    """metrics.json's `downstream`: per evaluation, the statistics at the first budget."""
    return {s["eval"]: {k: v for k, v in s.items() if k != "eval"} for s in summary if s["budget"] == first_budget}


def mean_or_none(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None
