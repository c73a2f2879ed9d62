"""Which images to label: strategies that choose from the pretext encoder's features of a pool, never its labels.

    picks = SELECTORS.get("typiclust")(features, budget=10, seed=0, repeat=0, labeled=np.array([], int))

Every strategy is a function (features, budget, seed, repeat, labeled) -> the `budget` new row indices in the
order to label them, distinct and outside `labeled` (rows already labeled: a second round adds to them),
deterministic from (seed, repeat). Labels never reach it. `downstream.draw=<name>` draws a study's labels with
it (sslrun.data.splits.draw_labels), `sslrun-select` writes the files to label (sslrun.select_cli).
"""

from __future__ import annotations

from sslrun.select import kcenter, probcover, random, typiclust  # noqa: E402,F401  register the strategies
from sslrun.select.base import SELECTORS, check_budget, rng_of, sklearn_seed, unit_rows

__all__ = ["SELECTORS", "check_budget", "rng_of", "sklearn_seed", "unit_rows"]
