"""The run's answer in one plain sentence per label budget: the terminal's last line, report.md's first.

    rotation pretext: +0.52 points over the same network on the same 1,000 labels (84.13% vs 83.61%;
    95% CI -0.31 .. +1.35, 3 label draws, not significant: paired t-test p = 0.12)

The difference is the headline evaluation (metrics.json's ssl_eval) minus `scratch`, paired by label draw;
the interval and p-value are the paired t-test's (sslrun.report.stats), so "significant" means the 95% CI
leaves out 0.
"""

from __future__ import annotations

from typing import Any

from sslrun.report.stats import BASELINE

LEVEL = 0.05


def _pts(x: float) -> str:
    return f"{100 * x:+.2f}"


def _who(metrics: dict[str, Any], name: str) -> str:
    task = metrics.get("pretext_task", "pretext")
    return f"{task} pretext" if name == "finetune" else f"{task} pretext ({name})"


def sentence(entry: dict[str, Any], baseline: dict[str, Any] | None, who: str) -> str:
    """One budget's sentence from its summarize() entries (the pretrained evaluation's, and scratch's)."""
    labels = f"{entry['labeled']:,} labels"
    vs = entry.get("vs_scratch")
    if baseline is None or not vs:
        ci = (
            ""
            if entry.get("ci_low") is None
            else f", 95% CI {100 * entry['ci_low']:.2f} .. {100 * entry['ci_high']:.2f}%"
        )
        return (
            f"{who}: {100 * entry['mean']:.2f}% test accuracy on {labels} ({entry['n']} label draw"
            f"{'s' if entry['n'] != 1 else ''}{ci}); no baseline ran: add scratch to downstream.evals to see "
            "whether pretext training helps"
        )
    head = (
        f"{who}: {_pts(vs['diff_mean'])} points over the same network on the same {labels} "
        f"({100 * entry['mean']:.2f}% vs {100 * baseline['mean']:.2f}%; "
    )
    if vs["n_pairs"] < 2:
        return head + "1 label draw, so no interval: downstream.repeats=3 or more gives one)"
    p = vs.get("p_t")
    verdict = "significant" if p is not None and p < LEVEL else "not significant"
    return (
        head + f"95% CI {_pts(vs['diff_ci_low'])} .. {_pts(vs['diff_ci_high'])}, {vs['n_pairs']} label draws, "
        f"{verdict}: paired t-test p = {p:.2g})"
    )


def answer(metrics: dict[str, Any]) -> list[str]:
    """A sentence per label budget of the headline evaluation (none when no pretrained evaluation ran)."""
    name = metrics.get("ssl_eval")
    study = metrics.get("study") or []
    if name is None:
        return []
    out = []
    for entry in (s for s in study if s["eval"] == name):
        baseline = next((s for s in study if s["eval"] == BASELINE and s["budget"] == entry["budget"]), None)
        out.append(sentence(entry, baseline, _who(metrics, name)))
    return out
