"""Statistics of a study: per evaluation and label budget, and paired against `scratch` on the same draws.

Mean, sample standard deviation, and a 95% confidence interval of the mean from
Student's t (scipy.stats.t). Repeats share their label draw, so differences against
`scratch` are paired. Two tests of them: the paired t-test (scipy.stats.ttest_rel), which
is the test the difference's t interval inverts (p < 0.05 exactly when the 95% CI leaves
out 0), and the Wilcoxon signed-rank test (scipy.stats.wilcoxon, two-sided), which does
not assume normal differences (accuracy differences over 10-20 draws are not reliably
normal) but cannot go below p = 0.25 with 3 draws. The run's one-sentence answer and
`compare` use the t-test, so the sentence, its interval and its p agree; the study tables
show both. Holm's step-down correction (`holm`) for several comparisons at once.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np
from scipy import stats

BASELINE = "scratch"


ACCURACY_RANGE = (0.0, 1.0)
DIFFERENCE_RANGE = (-1.0, 1.0)


def mean_ci(
    values: list[float], level: float = 0.95, bounds: tuple[float, float] = ACCURACY_RANGE
) -> dict[str, float | int | None]:
    """n, mean, std (ddof=1), and the t confidence interval of the mean (None when n < 2).

    The interval is cut to `bounds`, the values' own range: with 2-3 repeats t's wide interval
    reaches past it (94.6% +- 0.95 over n=2 gave [86.1%, 103.2%]), and no accuracy lies there."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    out: dict[str, float | int | None] = {
        "n": n,
        "mean": float(x.mean()) if n else None,
        "std": None,
        "ci_low": None,
        "ci_high": None,
    }
    if n >= 2:
        std = float(x.std(ddof=1))
        out["std"] = std
        if std == 0:
            out["ci_low"] = out["ci_high"] = float(x.mean())
        else:
            low, high = stats.t.interval(level, n - 1, loc=x.mean(), scale=std / math.sqrt(n))
            out["ci_low"], out["ci_high"] = float(max(low, bounds[0])), float(min(high, bounds[1]))
    return out


def paired_vs_baseline(values: dict[int, float], baseline: dict[int, float]) -> dict[str, Any] | None:
    """Differences on the repeats both have: mean and CI of the difference; p-values of the paired t-test
    (`p_t`, which the CI inverts) and of the Wilcoxon signed-rank test (`p_value`)."""
    common = sorted(set(values) & set(baseline))
    if not common:
        return None
    diff = [values[r] - baseline[r] for r in common]
    out = {
        "n_pairs": len(common),
        **{f"diff_{k}": v for k, v in mean_ci(diff, bounds=DIFFERENCE_RANGE).items() if k != "n"},
    }
    nonzero = [d for d in diff if d != 0]
    out["test"] = "wilcoxon signed-rank, two-sided"
    out["p_value"] = float(stats.wilcoxon(diff).pvalue) if len(nonzero) >= 1 and len(common) >= 2 else None
    out["p_t"] = paired_t_p(diff)
    return out


def paired_t_p(diff: list[float]) -> float | None:
    """Two-sided p of the paired t-test on the differences (None under 2 pairs; 0 or 1 when they do not vary)."""
    x = np.asarray(diff, dtype=float)
    if len(x) < 2:
        return None
    if float(x.std(ddof=1)) == 0:
        return 1.0 if float(x.mean()) == 0 else 0.0
    return float(stats.ttest_1samp(x, 0.0).pvalue)


def holm(p_values: list[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (Holm 1979), in the input order; None stays None (not counted).

    The k-th smallest of m p-values is multiplied by (m - k + 1), made monotone, and capped at 1, so
    rejecting where the adjusted p < alpha controls the family-wise error at alpha."""
    known = [(p, i) for i, p in enumerate(p_values) if p is not None]
    m, out, running = len(known), list(p_values), 0.0
    for rank, (p, i) in enumerate(sorted(known)):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (eval, budget) from results rows (eval, budget, repeat, test_accuracy, ...)."""
    acc: dict[tuple[str, str], dict[int, float]] = defaultdict(dict)
    labeled: dict[str, int] = {}
    for row in rows:
        acc[(row["eval"], str(row["budget"]))][int(row["repeat"])] = float(row["test_accuracy"])
        labeled[str(row["budget"])] = int(row.get("labeled") or 0)
    out = []
    for (name, budget), by_repeat in acc.items():
        entry = {
            "eval": name,
            "budget": budget,
            "labeled": labeled[budget],
            **mean_ci([by_repeat[r] for r in sorted(by_repeat)]),
        }
        if name != BASELINE and (BASELINE, budget) in acc:
            entry["vs_scratch"] = paired_vs_baseline(by_repeat, acc[(BASELINE, budget)])
        out.append(entry)
    return out
