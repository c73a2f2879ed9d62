"""Figures of a run or a study: PNG files written atomically (temp name in the same folder, then
rename).

Every function draws one figure, writes it, closes it, and returns the path. Images are NHWC arrays;
one channel is drawn in grey. Edge cases (one evaluation, one budget, one repeat, NaN values, no
wrong predictions, no data at all) give a sparser figure, never an exception.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display, no GUI toolkit
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import MaxNLocator, NullFormatter  # noqa: E402

from sslrun.atomic import atomic_open  # noqa: E402
from sslrun.report.names import EVAL_ORDER  # noqa: E402

DPI = 110
WRONG = "tab:red"
# pretext/history.csv's label-free health columns (sslrun/training/health.py): their own figure, plot_health
HEALTH = {
    "rankme": "RankMe (effective rank)",
    "embedding_std": "std of the l2-normalised embedding",
    "alignment": "alignment (lower: views agree)",
    "uniformity": "uniformity (lower: spread)",
}
# history.csv columns that are bookkeeping, not curves
NOT_CURVES = {
    "epoch",
    "eval",
    "phase",
    "budget",
    "repeat",
    "learning_rate",
    "lr",
    "seconds",
    "time",
    "updates",
    "encoder_trainable_params",
    "head_trainable_params",
    "peak_lr",
    *HEALTH,
}


# --- writing -------------------------------------------------------------------------------------


def save_figure(fig: Figure, path: str | os.PathLike) -> Path:
    """Write fig as PNG at path atomically and close it; return the path."""
    path = Path(path)
    try:
        with atomic_open(path, "wb", perms=0o644) as fh:
            fig.savefig(fh, format="png", dpi=DPI, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def _placeholder(path: str | os.PathLike, message: str) -> Path:
    fig, ax = plt.subplots(figsize=(5, 2))
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    ax.axis("off")
    return save_figure(fig, path)


# --- small helpers -------------------------------------------------------------------------------


def _ordered(names: Iterable[str]) -> list[str]:
    """Known evaluations in their usual order, then the others in order of appearance."""
    seen = list(dict.fromkeys(names))
    return [n for n in EVAL_ORDER if n in seen] + [n for n in seen if n not in EVAL_ORDER]


def _finite(values: Iterable[Any]) -> list[float]:
    out = []
    for v in values:
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(f):
            out.append(f)
    return out


def _budget_order(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Budgets by their labeled count (then by name), so "all" comes last."""
    most: dict[str, int] = {}
    for r in rows:
        b = str(r["budget"])
        most[b] = max(most.get(b, 0), int(r.get("labeled") or 0))
    return sorted(most, key=lambda b: (most[b], b))


def _grid(n: int, max_cols: int) -> tuple[int, int]:
    cols = max(1, min(n, max_cols))
    return math.ceil(n / cols), cols


# --- study figures -------------------------------------------------------------------------------


def plot_boxplots(rows: list[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Test accuracy (%) per evaluation: one panel per label budget, a box per evaluation with every
    repeat drawn as a jittered point. When rows carry a "group" key with several values, each
    evaluation gets a box per group, coloured by group, with the groups named in a legend."""
    if not rows:
        return _placeholder(path, "no results to plot")
    budgets = _budget_order(rows)
    evals = _ordered(r["eval"] for r in rows)
    groups = list(dict.fromkeys(str(r.get("group") or "") for r in rows))
    nrows, ncols = _grid(len(budgets), 3)
    width = max(3.2, 0.6 * len(evals) * len(groups) + 1.2)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, 4.2 * nrows), squeeze=False)
    rng = np.random.default_rng(0)  # the same jitter every time
    for ax, budget in zip(axes.flat, budgets, strict=False):
        mine = [r for r in rows if str(r["budget"]) == budget]
        _boxes(ax, mine, [e for e in evals if any(r["eval"] == e for r in mine)], groups, rng)
        ax.set_title(f"budget {budget}: {_labeled_text(mine)}")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(budgets) :]:
        ax.axis("off")
    fig.tight_layout()
    if len(groups) > 1:
        handles = [Patch(color=f"C{j % 10}", label=g or "-") for j, g in enumerate(groups)]
        fig.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, 0.0),
            fontsize=8,
            ncol=1 if max(map(len, groups)) > 40 else 2,
            frameon=False,
        )
    return save_figure(fig, path)


def _boxes(ax: Any, rows: list[dict[str, Any]], evals: list[str], groups: list[str], rng: np.random.Generator) -> None:
    """Clusters of boxes, one cluster per evaluation, one box per group inside it."""
    step = len(groups) + 0.8
    for i, name in enumerate(evals):
        for j, group in enumerate(groups):
            mine = (r["test_accuracy"] for r in rows if r["eval"] == name and str(r.get("group") or "") == group)
            values = [100 * v for v in _finite(mine)]
            if not values:
                continue
            x, colour = i * step + j, f"C{(j if len(groups) > 1 else i) % 10}"
            ax.boxplot(
                [values],
                positions=[x],
                widths=0.6,
                showfliers=False,
                medianprops={"color": "black"},
                boxprops={"color": colour},
            )
            jitter = rng.uniform(-0.13, 0.13, len(values)) if len(values) > 1 else np.zeros(1)
            ax.scatter(x + jitter, values, s=16, alpha=0.75, color=colour, zorder=3)
    centres = [i * step + (len(groups) - 1) / 2 for i in range(len(evals))]
    ax.set_xticks(centres, evals, fontsize=9)
    ax.set_xlim(-0.7, (len(evals) - 1) * step + len(groups) - 0.3)


def _labeled_text(rows: list[dict[str, Any]]) -> str:
    counts = sorted({int(r.get("labeled") or 0) for r in rows})
    if len(counts) == 1:
        return f"{counts[0]:,} labeled"
    return f"{counts[0]:,}-{counts[-1]:,} labeled"


def plot_label_efficiency(summary: list[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Mean test accuracy (%) against the labeled count, one line per evaluation (and per "group"
    when the entries carry one), with the 95% CI as a band where it exists; log x when the counts
    span 10x or more."""
    points = [s for s in summary if s.get("mean") is not None and int(s.get("labeled") or 0) > 0]
    if not points:
        return _placeholder(path, "no labeled counts to plot")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    series = list(dict.fromkeys((str(s.get("group") or ""), s["eval"]) for s in points))
    evals = _ordered(e for _, e in series)
    series.sort(key=lambda ge: (ge[0], evals.index(ge[1])))
    for i, (group, name) in enumerate(series):
        mine = [s for s in points if (str(s.get("group") or ""), s["eval"]) == (group, name)]
        mine.sort(key=lambda s: int(s["labeled"]))
        x = np.array([int(s["labeled"]) for s in mine], dtype=float)
        y = np.array([100 * float(s["mean"]) for s in mine])
        label = f"{group} {name}".strip()
        ax.plot(x, y, marker="o", color=f"C{i % 10}", label=label)
        low = np.array([np.nan if s.get("ci_low") is None else 100 * s["ci_low"] for s in mine])
        high = np.array([np.nan if s.get("ci_high") is None else 100 * s["ci_high"] for s in mine])
        ok = np.isfinite(low) & np.isfinite(high)
        if ok.any():
            ax.fill_between(x, low, high, where=ok, color=f"C{i % 10}", alpha=0.2, linewidth=0, interpolate=False)
    counts = sorted({int(s["labeled"]) for s in points})
    if counts[-1] >= 10 * counts[0]:
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(counts, [f"{c:,}" for c in counts], fontsize=8)
    ax.set_xlabel("labeled images")
    ax.set_ylabel("mean test accuracy (%)")
    ax.set_title("label efficiency (bands: 95% CI of the mean)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_compare(rows: list[dict[str, Any]], path: str | os.PathLike) -> Path:
    """A compare sweep's test accuracy (%) per method, one panel per label budget: a bar per method in rank
    order with its 95% CI, the scratch baseline as a dashed line with its interval shaded."""
    budgets = list(dict.fromkeys(r["budget"] for r in rows if r.get("test_pct") is not None))
    if not budgets:
        return _placeholder(path, "no results to plot")
    n_methods = max(sum(1 for r in rows if r["budget"] == b) for b in budgets)
    nrows, ncols = _grid(len(budgets), 3)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(max(3.5, 0.8 * n_methods + 1.5) * ncols, 4.2 * nrows), squeeze=False
    )
    for ax, budget in zip(axes.flat, budgets, strict=False):
        mine = [r for r in rows if r["budget"] == budget and r.get("test_pct") is not None]
        methods = [r for r in mine if r["method"] != "scratch"]
        x = np.arange(len(methods))
        y = np.array([r["test_pct"] for r in methods], dtype=float)
        low = np.array([np.nan if r["ci_low_pct"] is None else r["ci_low_pct"] for r in methods], dtype=float)
        high = np.array([np.nan if r["ci_high_pct"] is None else r["ci_high_pct"] for r in methods], dtype=float)
        err = np.nan_to_num(np.vstack([y - low, high - y]), nan=0.0)
        ax.bar(x, y, color=[f"C{i % 10}" for i in range(len(methods))], alpha=0.8)
        ax.errorbar(x, y, yerr=err, fmt="none", ecolor="black", capsize=4)
        base = next((r for r in mine if r["method"] == "scratch"), None)
        if base is not None:
            ax.axhline(base["test_pct"], color="black", linestyle="--", linewidth=1, label="scratch")
            if base.get("ci_low_pct") is not None:
                ax.axhspan(base["ci_low_pct"], base["ci_high_pct"], color="grey", alpha=0.2, linewidth=0)
            ax.legend(fontsize=8, loc="lower right")
        ax.set_xticks(x, [r["method"] for r in methods], fontsize=9)
        values = [v for v in (*low, *y, *([base["test_pct"]] if base else [])) if np.isfinite(v)]
        if values:
            ax.set_ylim(max(0.0, min(values) - 5), min(100.0, max(np.nan_to_num(high, nan=0).max(), max(values)) + 3))
        ax.set_title(f"budget {budget}: {mine[0]['labeled']:,} labeled")
        ax.set_ylabel("test accuracy (%), 95% CI")
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(budgets) :]:
        ax.axis("off")
    fig.tight_layout()
    return save_figure(fig, path)


# --- training curves -----------------------------------------------------------------------------


def read_history(path: str | os.PathLike) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _curves_of(rows: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    """Lines of one history: the whole file, or per (eval, phase) at the first budget and repeat."""
    if not rows:
        return {}
    for key in ("budget", "repeat"):
        if key in rows[0]:
            first = rows[0][key]
            rows = [r for r in rows if r[key] == first]
    if not any(k in rows[0] for k in ("eval", "phase")):
        return {"": rows}
    out: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        name = "/".join(r[k] for k in ("eval", "phase") if r.get(k))
        out.setdefault(name, []).append(r)
    return out


def _epochs(by_line: dict[str, list[dict[str, str]]]) -> dict[str, np.ndarray]:
    """Epoch axis per line (from 1); a phase whose epochs restart continues after the previous
    phase of the same evaluation, so frozen -> unfrozen reads left to right."""
    out, last_end = {}, {}
    for name, rows in by_line.items():
        raw = np.array([float(r["epoch"]) if r.get("epoch") not in (None, "") else i for i, r in enumerate(rows)])
        if raw.size and raw.min() == 0:  # CSVLogger counts from 0, sslrun's own histories from 1
            raw = raw + 1
        evaluation = name.split("/")[0]
        if evaluation in last_end and raw.size and raw[0] <= last_end[evaluation]:
            raw = raw + last_end[evaluation] - raw[0] + 1
        if raw.size:
            last_end[evaluation] = raw[-1]
        out[name] = raw
    return out


def _metric_columns(rows: list[dict[str, str]]) -> tuple[list[str], list[str]]:
    """(loss-like, accuracy-like) column names, each train name before its val_ twin."""
    names = [c for c in rows[0] if c and c not in NOT_CURVES] if rows else []
    names = [c for c in names if _finite(r.get(c) for r in rows)]
    base = list(dict.fromkeys(c.removeprefix("val_") for c in names))
    cols = [c for b in base for c in (b, f"val_{b}") if c in names]
    acc = [c for c in cols if "acc" in c]
    return [c for c in cols if c not in acc], acc


def _as_float(values: Iterable[str | None]) -> np.ndarray:
    out = []
    for v in values:
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            out.append(np.nan)
    return np.array(out)


def plot_training_curves(histories: dict[str, str | os.PathLike], path: str | os.PathLike) -> Path:
    """A row per history CSV: loss-like metrics on the left, accuracy-like on the right (train
    solid, val_ dashed). A downstream history draws one line per (eval, phase), at its first budget
    and first repeat when it has those columns."""
    if not histories:
        return _placeholder(path, "no training histories")
    fig, axes = plt.subplots(len(histories), 2, figsize=(12, 3.6 * len(histories)), squeeze=False)
    for (title, hist_path), (ax_loss, ax_acc) in zip(histories.items(), axes, strict=True):
        rows = read_history(hist_path) if Path(hist_path).is_file() else []
        lines = _curves_of(rows)
        if not lines:
            for ax in (ax_loss, ax_acc):
                ax.text(0.5, 0.5, f"no history in {hist_path}", ha="center", va="center", fontsize=8)
                ax.axis("off")
            continue
        _draw_history(ax_loss, ax_acc, lines)
        ax_loss.set_title(f"{title}: loss")
        ax_acc.set_title(f"{title}: accuracy")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_health(history: str | os.PathLike, path: str | os.PathLike) -> Path | None:
    """One panel per health column of a pretext history, over epochs; None when it has none."""
    rows = read_history(history) if Path(history).is_file() else []
    cols = [c for c in HEALTH if rows and c in rows[0] and _finite(r.get(c) for r in rows)]
    if not cols:
        return None
    fig, axes = plt.subplots(1, len(cols), figsize=(3.2 * len(cols), 2.8), squeeze=False)
    epochs = _epochs({"": rows})[""]
    for ax, col in zip(axes[0], cols, strict=True):
        ax.plot(epochs, _as_float(r.get(col) for r in rows), marker=".")
        ax.set_title(HEALTH[col], fontsize=9)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def _draw_history(ax_loss: Any, ax_acc: Any, lines: dict[str, list[dict[str, str]]]) -> None:
    epochs = _epochs(lines)
    colours: dict[tuple[str, str], str] = {}  # a metric and its val_ twin share a colour
    for name, rows in lines.items():
        loss_cols, acc_cols = _metric_columns(rows)
        for ax, cols in ((ax_loss, loss_cols), (ax_acc, acc_cols)):
            for col in cols:
                key = (name, col.removeprefix("val_"))
                colour = colours.setdefault(key, f"C{len(colours) % 10}")
                ax.plot(
                    epochs[name],
                    _as_float(r.get(col) for r in rows),
                    color=colour,
                    marker=".",
                    linestyle="--" if col.startswith("val_") else "-",
                    label=f"{name} {col}".strip(),
                )
    for ax, ylabel in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if ax.get_lines():
            ax.legend(fontsize=7, ncol=2 if len(ax.get_lines()) > 6 else 1)
        else:
            ax.text(0.5, 0.5, f"no {ylabel} columns", ha="center", va="center", fontsize=8)


# --- image figures -------------------------------------------------------------------------------


def _show(ax: Any, img: np.ndarray) -> None:
    """One image, uint8 (0..255) or float (0..1); one channel in grey."""
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.dtype != np.uint8:
        img = np.clip(np.nan_to_num(img.astype(float)), 0.0, 1.0)
    top = 255 if img.dtype == np.uint8 else 1.0
    if img.ndim == 2:
        ax.imshow(img, cmap="gray", vmin=0, vmax=top, interpolation="nearest")
    else:
        ax.imshow(img, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _labels(values: Any) -> np.ndarray:
    """Class indices from indices, or from one-hot / probability rows."""
    arr = np.asarray(values)
    return arr.argmax(-1) if arr.ndim > 1 else arr.astype(int)


def _pick(right: np.ndarray, wrong: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to n indices, half wrong when there are enough of each."""
    n_wrong = min(len(wrong), n // 2)
    n_right = min(len(right), n - n_wrong)
    n_wrong = min(len(wrong), n - n_right)
    return right[:n_right], wrong[:n_wrong]


def plot_prediction_grid(
    images: np.ndarray,
    y_true: Any,
    y_pred: Any,
    class_names: Sequence[str] | None,
    path: str | os.PathLike,
    n: int = 32,
) -> Path:
    """Up to n test images titled "true/pred", half right and half wrong when possible, wrong ones
    in red. Labels are class indices, or one-hot / probability rows (argmax)."""
    y_true, y_pred = _labels(y_true), _labels(y_pred)
    count = min(len(images), len(y_true), len(y_pred))
    hit = y_true[:count] == y_pred[:count]
    right, wrong = _pick(np.flatnonzero(hit), np.flatnonzero(~hit), n)
    chosen = np.concatenate([right, wrong]).astype(int)
    if chosen.size == 0:
        return _placeholder(path, "no test images")
    names = list(class_names or [])

    def name(k: int) -> str:
        return str(names[k]) if 0 <= k < len(names) else str(k)

    nrows, ncols = _grid(len(chosen), 8)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.5 * ncols, 1.7 * nrows + 0.4), squeeze=False)
    for ax, i in zip(axes.flat, chosen, strict=False):
        _show(ax, images[i])
        ax.set_title(f"{name(y_true[i])}/{name(y_pred[i])}", fontsize=8, color="black" if hit[i] else WRONG)
    for ax in list(axes.flat)[len(chosen) :]:
        ax.axis("off")
    fig.suptitle(f"true/predicted (wrong in red): {count - int(hit.sum())} of {count} test images wrong", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_rotation_examples(
    images: np.ndarray, true_k: Any, pred_k: Any | None, path: str | os.PathLike, n: int = 16
) -> Path:
    """Rotated images titled with the true rotation (k x 90 degrees) and, if given, the predicted
    one (wrong ones in red)."""
    true_k = _labels(true_k)
    pred_k = None if pred_k is None else _labels(pred_k)
    count = min(len(images), len(true_k), n, len(pred_k) if pred_k is not None else n)
    if count == 0:
        return _placeholder(path, "no rotation examples")
    nrows, ncols = _grid(count, 8)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.6 * ncols, 1.8 * nrows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= count:
            ax.axis("off")
            continue
        _show(ax, images[i])
        title, colour = f"{90 * int(true_k[i])}°", "black"
        if pred_k is not None:
            title += f"/{90 * int(pred_k[i])}°"
            colour = "black" if pred_k[i] == true_k[i] else WRONG
        ax.set_title(title, fontsize=8, color=colour)
    title = "rotation: true/predicted (wrong in red)" if pred_k is not None else "rotation"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_view_pairs(view1: np.ndarray, view2: np.ndarray, path: str | os.PathLike, n: int = 8) -> Path:
    """Two augmented views of the same images, each pair side by side (float 0..1)."""
    count = min(len(view1), len(view2), n)
    if count == 0:
        return _placeholder(path, "no views")
    rows, pairs_per_row = _grid(count, 4)
    fig, axes = plt.subplots(rows, 2 * pairs_per_row, squeeze=False, figsize=(3.2 * pairs_per_row, 1.8 * rows + 0.3))
    for ax in axes.flat:
        ax.axis("off")
    for i in range(count):
        r, c = divmod(i, pairs_per_row)
        for j, view in enumerate((view1, view2)):
            ax = axes[r, 2 * c + j]
            ax.axis("on")
            _show(ax, view[i])
            ax.set_title(f"{i}: view {j + 1}", fontsize=8)
    fig.suptitle("two views per image", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_colorization_examples(
    gray: np.ndarray, predicted_rgb: np.ndarray, target_rgb: np.ndarray, path: str | os.PathLike, n: int = 8
) -> Path:
    """Columns of examples; rows: grey input, predicted colours, target colours (float 0..1)."""
    count = min(len(gray), len(predicted_rgb), len(target_rgb), n)
    if count == 0:
        return _placeholder(path, "no colorization examples")
    fig, axes = plt.subplots(3, count, figsize=(1.6 * count + 0.8, 5.2), squeeze=False)
    for row, (label, images) in enumerate((("input", gray), ("predicted", predicted_rgb), ("target", target_rgb))):
        for i in range(count):
            _show(axes[row, i], images[i])
        axes[row, 0].set_ylabel(label)
    fig.suptitle("colorization", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_confusion_matrix(y_true: Any, y_pred: Any, class_names: Sequence[str], path: str | os.PathLike) -> Path:
    """Counts of true class (rows) x predicted class (columns), shaded by each row's share; the diagonal
    is right. Labels are class indices."""
    y_true, y_pred = _labels(y_true), _labels(y_pred)
    k = len(class_names)
    if len(y_true) == 0 or k == 0:
        return _placeholder(path, "no labeled images")
    counts = np.zeros((k, k), dtype=int)
    np.add.at(counts, (y_true, y_pred), 1)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    side = max(3.5, 0.45 * k + 1.5)
    fig, ax = plt.subplots(figsize=(side + 1, side))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    if k <= 20:  # the counts stay legible
        for i, j in zip(*np.nonzero(counts), strict=True):
            ax.text(
                j,
                i,
                str(counts[i, j]),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if share[i, j] > 0.5 else "black",
            )
    ax.set_xticks(range(k), [str(n) for n in class_names], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), [str(n) for n in class_names], fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of the true class")
    ax.set_title(f"accuracy {np.trace(counts) / counts.sum():.2%} on {counts.sum()} images", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


# --- embeddings (sslrun-embed) -------------------------------------------------------------------


def plot_embedding_map(coords: np.ndarray, labels: Sequence[str] | None, path: str | os.PathLike, title: str) -> Path:
    """Points in 2-D, one colour per label (a legend up to 20 labels), or one colour without labels."""
    fig, ax = plt.subplots(figsize=(7, 6))
    size = float(np.clip(3000 / max(len(coords), 1), 2, 30))
    if labels is None:
        ax.scatter(coords[:, 0], coords[:, 1], s=size, alpha=0.7, linewidths=0)
    else:
        names = sorted(set(labels))
        cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20" if len(names) <= 20 else "hsv")
        labels = np.asarray(labels)
        for k, name in enumerate(names):
            at = labels == name
            ax.scatter(
                coords[at, 0],
                coords[at, 1],
                s=size,
                alpha=0.7,
                linewidths=0,
                color=cmap(k % cmap.N if len(names) <= 20 else k / len(names)),
                label=name,
            )
        if len(names) <= 20:
            ax.legend(fontsize=7, markerscale=max(1.0, 20 / size) ** 0.5, loc="best", ncol=1 + len(names) // 11)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_neighbours(
    queries: np.ndarray,
    neighbours: np.ndarray,
    similarity: np.ndarray,
    query_titles: Sequence[str],
    neighbour_titles: Sequence[Sequence[str]],
    path: str | os.PathLike,
    titled_by: str = "",
) -> Path:
    """A row per query image: the query (framed), then its neighbours left to right, each titled."""
    rows, k = neighbours.shape[:2]
    fig, axes = plt.subplots(rows, k + 1, figsize=(1.3 * (k + 1), 1.45 * rows + 0.4), squeeze=False)
    for r in range(rows):
        _show(axes[r, 0], queries[r])
        axes[r, 0].set_title(query_titles[r], fontsize=7, fontweight="bold")
        for side in axes[r, 0].spines.values():
            side.set_linewidth(2.5)
        for j in range(k):
            _show(axes[r, j + 1], neighbours[r, j])
            axes[r, j + 1].set_title(f"{similarity[r, j]:.3f} {neighbour_titles[r][j]}", fontsize=6)
    fig.suptitle(
        f"each query (left) and its {k} nearest images by cosine similarity of the features"
        + (f"; titles: {titled_by}" if titled_by else ""),
        fontsize=9,
    )
    fig.tight_layout()
    return save_figure(fig, path)


def plot_duplicate_pairs(
    first: np.ndarray, second: np.ndarray, titles: Sequence[str], path: str | os.PathLike, heading: str = ""
) -> Path:
    """Pairs of images side by side (first[i] left of second[i]), each pair titled; four pairs a row."""
    if not len(first):
        return _placeholder(path, "no duplicate pairs found")
    per_row = 4
    nrows = math.ceil(len(first) / per_row)
    fig, axes = plt.subplots(nrows, 2 * per_row, figsize=(2 * 1.3 * per_row, 1.55 * nrows + 0.5), squeeze=False)
    for k, ax in enumerate(axes.flat):
        pair, side = divmod(k % (2 * per_row), 2)
        i = (k // (2 * per_row)) * per_row + pair
        if i >= len(first):
            ax.axis("off")
            continue
        _show(ax, (first if side == 0 else second)[i])
        if side == 0:
            ax.set_title(titles[i], fontsize=7, loc="left")
    fig.suptitle(heading or "duplicate pairs (left: pool image, right: its match)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_contact_sheet(
    images: np.ndarray, titles: Sequence[str], path: str | os.PathLike, title: str, columns: int = 10
) -> Path:
    """Images in a grid, each titled (sslrun-select's to_label.png: the order to label them)."""
    if len(images) == 0:
        return _placeholder(path, "no images")
    nrows, ncols = _grid(len(images), columns)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.2 * ncols, 1.35 * nrows + 0.4), squeeze=False)
    for ax, image, name in zip(axes.flat, images, titles, strict=False):
        _show(ax, image)
        ax.set_title(name, fontsize=8)
    for ax in list(axes.flat)[len(images) :]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
