"""Study statistics against scipy and hand-computed values on fixed numbers."""

import numpy as np
import pytest
from scipy import stats

from sslrun.report.stats import mean_ci, paired_vs_baseline, summarize

A = [0.81, 0.84, 0.79, 0.86, 0.83, 0.80, 0.85, 0.82]
B = [0.78, 0.80, 0.79, 0.81, 0.80, 0.77, 0.82, 0.80]


def test_mean_std_ci_match_scipy():
    out = mean_ci(A)
    assert out["n"] == 8 and out["mean"] == pytest.approx(np.mean(A))
    assert out["std"] == pytest.approx(np.std(A, ddof=1))
    half = stats.t.ppf(0.975, 7) * np.std(A, ddof=1) / np.sqrt(8)
    assert out["ci_low"] == pytest.approx(np.mean(A) - half) and out["ci_high"] == pytest.approx(np.mean(A) + half)


def test_single_value_has_no_interval_and_constant_values_a_point_interval():
    assert mean_ci([0.5]) == {"n": 1, "mean": 0.5, "std": None, "ci_low": None, "ci_high": None}
    assert mean_ci([0.5, 0.5])["ci_low"] == 0.5


def test_interval_is_cut_to_the_range_of_accuracies_and_of_differences():
    out = mean_ci([0.9369, 0.9559])  # t with 1 degree of freedom: 0.9464 +- 0.1207
    assert out["ci_high"] == 1.0 and out["ci_low"] == pytest.approx(0.9464 - 0.1207, abs=1e-4)
    assert mean_ci([0.02, 0.08])["ci_low"] == 0.0
    diff = paired_vs_baseline({0: 0.95, 1: 0.5}, {0: 0.05, 1: 0.45})  # differences 0.9 and 0.05
    assert diff["diff_ci_high"] == 1.0 and diff["diff_ci_low"] == -1.0


def test_paired_difference_and_wilcoxon_p():
    out = paired_vs_baseline(dict(enumerate(A)), dict(enumerate(B)))
    diff = np.subtract(A, B)
    assert out["n_pairs"] == 8 and out["diff_mean"] == pytest.approx(diff.mean())
    assert out["p_value"] == pytest.approx(stats.wilcoxon(diff).pvalue)
    assert out["test"].startswith("wilcoxon")


def test_pairs_only_on_common_repeats():
    out = paired_vs_baseline({0: 0.9, 1: 0.8, 5: 0.7}, {0: 0.85, 1: 0.82})
    assert out["n_pairs"] == 2 and out["diff_mean"] == pytest.approx((0.05 - 0.02) / 2)


def test_summarize_groups_by_eval_and_budget():
    rows = [
        {"eval": e, "budget": b, "repeat": r, "test_accuracy": v, "labeled": 10 * int(b)}
        for e, vals in (("finetune", A), ("scratch", B))
        for b in ("1", "5")
        for r, v in enumerate(vals)
    ]
    out = {(s["eval"], s["budget"]): s for s in summarize(rows)}
    assert set(out) == {("finetune", "1"), ("finetune", "5"), ("scratch", "1"), ("scratch", "5")}
    assert out[("finetune", "5")]["labeled"] == 50 and out[("finetune", "1")]["vs_scratch"]["n_pairs"] == 8
    assert "vs_scratch" not in out[("scratch", "1")]
