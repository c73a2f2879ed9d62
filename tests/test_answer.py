"""The run's one-sentence answer (sslrun/report/answer.py) and the paired t-test behind it."""

import numpy as np
import pytest
from scipy import stats

from sslrun.report.answer import answer
from sslrun.report.stats import paired_t_p, summarize


def _metrics(ft: list[float], sc: list[float] | None, budget: str = "100", labeled: int = 1000) -> dict:
    rows = [
        {"eval": "finetune", "budget": budget, "labeled": labeled, "repeat": r, "test_accuracy": v}
        for r, v in enumerate(ft)
    ]
    rows += [
        {"eval": "scratch", "budget": budget, "labeled": labeled, "repeat": r, "test_accuracy": v}
        for r, v in enumerate(sc or [])
    ]
    return {"pretext_task": "rotation", "ssl_eval": "finetune", "study": summarize(rows)}


def test_three_draws_give_the_interval_and_the_t_test():
    ft, sc = [0.841, 0.835, 0.850], [0.836, 0.838, 0.839]
    (line,) = answer(_metrics(ft, sc))
    diff = np.subtract(ft, sc)
    low, high = stats.t.interval(0.95, 2, loc=diff.mean(), scale=diff.std(ddof=1) / np.sqrt(3))
    p = stats.ttest_rel(ft, sc).pvalue
    assert line == (
        f"rotation pretext: {100 * diff.mean():+.2f} points over the same network on the same 1,000 "
        f"labels (84.20% vs 83.77%; 95% CI {100 * low:+.2f} .. {100 * high:+.2f}, 3 label draws, "
        f"not significant: paired t-test p = {p:.2g})"
    )


def test_a_clear_difference_is_significant_and_its_ci_leaves_out_zero():
    (line,) = answer(_metrics([0.90, 0.91, 0.905], [0.80, 0.805, 0.80]))
    assert ", significant: paired t-test p = " in line and "+10.33 points" in line


def test_one_draw_says_there_is_no_interval():
    (line,) = answer(_metrics([0.8145], [0.8356]))
    assert line.startswith("rotation pretext: -2.11 points") and "1 label draw, so no interval" in line


def test_no_baseline_says_how_to_get_one_and_budgets_get_a_sentence_each():
    (line,) = answer(_metrics([0.8, 0.82], None))
    assert "no baseline ran: add scratch to downstream.evals" in line
    m = _metrics([0.8, 0.82], [0.7, 0.71])
    m["study"] += _metrics([0.9, 0.92], [0.85, 0.86], budget="all", labeled=50000)["study"]
    assert [s.split(" on the same ")[1].split(" (")[0] for s in answer(m)] == ["1,000 labels", "50,000 labels"]


def test_paired_t_p_matches_scipy_and_edge_cases():
    a, b = [0.8, 0.82, 0.79, 0.85], [0.78, 0.8, 0.8, 0.81]
    assert paired_t_p(list(np.subtract(a, b))) == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert paired_t_p([0.01]) is None and paired_t_p([0.0, 0.0]) == 1.0 and paired_t_p([0.02, 0.02]) == 0.0
