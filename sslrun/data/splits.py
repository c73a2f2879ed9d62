"""Splits: pretext pool, stratified labeled subset under a label budget, validation, test."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sslrun.data.base import RawData
from sslrun.data.stack import ImageStack
from sslrun.errors import DataError

POOLS = ("auto", "train", "train_excluding_labeled", "unlabeled", "unlabeled_and_train")


@dataclass(frozen=True)
class Budget:
    """How many labels: exactly one of per class, in total, or a fraction of each class."""

    labels_per_class: int | None = None
    num_labels: int | None = None
    label_fraction: float | None = None
    every_label: bool = False  # the budget "all": every train label not used for validation (the ceiling)

    def __post_init__(self) -> None:
        if self.every_label:
            return
        given = [k for k, v in self.__dict__.items() if v is not None and k != "every_label"]
        if len(given) != 1:
            raise DataError(
                f"give exactly one label budget, got {', '.join(given) or 'none'}: e.g. "
                "downstream.labels_per_class=null downstream.num_labels=1000"
            )
        value = self.labels_per_class or self.num_labels or self.label_fraction or 0
        if value <= 0 or (self.label_fraction is not None and self.label_fraction > 1):
            raise DataError(f"downstream.{given[0]}={value}: must be positive (a fraction at most 1)")

    def per_class(self, counts: np.ndarray, rng: np.random.Generator, val_per_class: int = 0) -> np.ndarray:
        """Labels to draw from each class, given how many images each class has."""
        if self.every_label:
            return counts - val_per_class
        if self.labels_per_class is not None:
            return np.full(len(counts), self.labels_per_class)
        if self.label_fraction is not None:
            return np.maximum(1, np.round(counts * self.label_fraction)).astype(int)
        base, extra = divmod(self.num_labels, len(counts))
        need = np.full(len(counts), base)
        need[rng.choice(len(counts), extra, replace=False)] += 1  # the remainder goes to random classes
        return need

    def describe(self) -> str:
        if self.every_label:
            return "all labels"
        key, value = next((k, v) for k, v in self.__dict__.items() if v is not None and k != "every_label")
        return f"{key}={value}"

    @property
    def key(self) -> str:
        """The budget's value as written in results.csv: "10", "0.05", "all"."""
        if self.every_label:
            return "all"
        return str(next(v for k, v in self.__dict__.items() if v is not None and k != "every_label"))

    @staticmethod
    def study(
        labels_per_class: int | None, num_labels: int | None, label_fraction: float | None, budgets: list | None
    ) -> list[Budget]:
        """The budgets of a study: `budgets` in the unit of whichever budget key is set, or that one budget."""
        single = Budget(labels_per_class, num_labels, label_fraction)
        if not budgets:
            return [single]
        unit = next(k for k in ("labels_per_class", "num_labels", "label_fraction") if getattr(single, k) is not None)
        out = []
        for value in budgets:
            if str(value).lower() == "all":
                out.append(Budget(every_label=True))
            elif isinstance(value, bool) or not isinstance(value, int | float):
                raise DataError(f"downstream.label_budgets: {value!r} is not a number or 'all'")
            else:
                out.append(Budget(**{unit: value}))
        return out


@dataclass
class Splits:
    pretext_x: np.ndarray | ImageStack  # unlabeled pool, uint8 NHWC; may stream from disk
    labeled_x: np.ndarray
    labeled_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    num_classes: int
    class_names: tuple[str, ...] = ()
    pool: str = "train"
    labeled_index: np.ndarray | None = None  # rows of the train split drawn as labeled_x
    # the files of labeled_x and pretext_x where the data set knows them (RawData.train_paths), else None
    labeled_paths: np.ndarray | None = None
    pretext_paths: np.ndarray | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.labeled_x.shape[1:])  # type: ignore[return-value]

    def sizes(self) -> dict[str, int]:
        return {
            "pretext": len(self.pretext_x),
            "labeled": len(self.labeled_x),
            "val": len(self.val_x),
            "test": len(self.test_x),
        }


DRAWS = ("stratified", "first", "random")
FEATURE_DRAWS = ("typiclust", "probcover", "kcenter")  # chosen from the pretext features (sslrun.select)


@dataclass(frozen=True)
class LabelDraw:
    """How the labeled and validation images are chosen (the budget says how many).

    draw: `stratified` (random per class), `first` (the first images of each class, or the first
    `num_labels` in file order: seeds 000, 001, 003) or `random` (uniform over the train split,
    not stratified: seed 004), or a label selection strategy of FEATURE_DRAWS, which chooses `num_labels`
    images from the pretext encoder's features of the train split alone (sslrun.select).
    Validation: `val_per_class` more images per class, or `val_split`
    (Keras' validation_split: the last fraction of the drawn images, in draw order: seeds 001,
    004), or `val_from_test` (the first N test images; the test split is the rest: seed 000).
    """

    draw: str = "stratified"
    val_per_class: int = 0
    val_split: float | None = None
    val_from_test: int = 0

    def __post_init__(self) -> None:
        if self.draw not in DRAWS + FEATURE_DRAWS:
            raise DataError(f"downstream.draw={self.draw!r} is not one of {', '.join(DRAWS + FEATURE_DRAWS)}")
        given = [
            k
            for k, v in (
                ("val_per_class", self.val_per_class),
                ("val_split", self.val_split),
                ("val_from_test", self.val_from_test),
            )
            if v
        ]
        if len(given) > 1:
            raise DataError(
                f"validation images from one place only, got {', '.join(given)}: set the others to "
                "0/null (e.g. downstream.val_per_class=0 downstream.val_split=0.2)"
            )
        if self.val_split is not None and not 0 < self.val_split < 1:
            raise DataError(f"downstream.val_split={self.val_split}: must be between 0 and 1")


def draw_stratified(
    y: np.ndarray,
    budget: Budget | int,
    val_per_class: int,
    seed: int,
    repeat: int = 0,
    class_names: tuple[str, ...] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the labeled subset (under `budget`) and of `val_per_class` validation images per class."""
    return draw_labels(y, budget, LabelDraw(val_per_class=val_per_class), seed, repeat, class_names)


def draw_labels(
    y: np.ndarray,
    budget: Budget | int,
    how: LabelDraw,
    seed: int,
    repeat: int = 0,
    class_names: tuple[str, ...] = (),
    features: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the labeled subset and of the validation images drawn from the train split.

    Depends only on (y, budget, how, seed, repeat) and, for a strategy of FEATURE_DRAWS, the pretext features
    of the train split (one row per image of y), which alone choose the labeled subset (y chooses only the
    validation images): repeat r always gets the same subset.
    """
    budget = Budget(labels_per_class=budget) if isinstance(budget, int) else budget
    rng = np.random.default_rng([seed, repeat])
    if how.draw in FEATURE_DRAWS or (
        how.draw != "stratified"
        and (budget.num_labels is not None or (how.draw == "random" and not budget.every_label))
    ):
        chosen = (
            _draw_by_strategy(features, budget, how.draw, seed, repeat, len(y))
            if how.draw in FEATURE_DRAWS
            else _draw_overall(y, budget, how.draw, rng, class_names)
        )
        val = np.array([], dtype=np.int64)
        if how.val_per_class:
            rest = np.setdiff1d(np.arange(len(y)), chosen)
            val = _per_class(
                y[rest], np.full(len(np.unique(y)), how.val_per_class), how.draw, rng, budget, class_names, 0
            )
            val = rest[val]
    else:
        counts = np.array([np.sum(y == c) for c in np.unique(y)])
        need = budget.per_class(counts, rng, how.val_per_class)
        both = _per_class(
            y, need + how.val_per_class, how.draw, rng, budget, class_names, how.val_per_class, split=need
        )
        chosen, val = both
        # per-class draws have no order of their own: file order for `first`, a shuffle for `stratified`
        chosen = np.sort(chosen) if how.draw == "first" else rng.permutation(chosen)
    if how.val_split:
        cut = int(len(chosen) * (1 - how.val_split))  # keras' validation_split arithmetic
        chosen, val = chosen[:cut], chosen[cut:]
    return np.sort(chosen), np.sort(val)


def _per_class(y, want, draw, rng, budget, class_names, val_per_class, split=None):
    """`want[c]` images of each class c (random or the first ones); with `split`, cut into (first, rest)."""
    first, second = [], []
    for c, n, n_first in zip(np.unique(y), want, split if split is not None else want, strict=True):
        idx = np.flatnonzero(y == c)
        if len(idx) < n:
            name = f"class {c}" + (f" ({class_names[c]})" if c < len(class_names) else "")
            raise DataError(
                f"{name} has {len(idx)} training images, fewer than the {n_first} labeled "
                f"+ {val_per_class} validation asked ({budget.describe()}); lower the label budget "
                "or downstream.val_per_class"
            )
        chosen = (idx if draw == "first" else rng.permutation(idx))[:n]
        first.append(chosen[:n_first])
        second.append(chosen[n_first:])
    if split is None:
        return np.concatenate(first)
    return np.concatenate(first), np.concatenate(second)


def _draw_overall(y, budget, draw, rng, class_names) -> np.ndarray:
    """Not stratified: the first N in file order, or N uniformly at random (in draw order)."""
    if budget.labels_per_class is not None:
        raise DataError(
            "downstream.draw=random draws a total: use downstream.num_labels (or label_fraction), "
            "or draw=stratified for labels_per_class"
        )
    n = (
        len(y)
        if budget.every_label
        else (budget.num_labels if budget.num_labels is not None else int(round(len(y) * budget.label_fraction)))
    )
    if n > len(y):
        raise DataError(f"{budget.describe()} asks for {n} labels but the train split has {len(y)} images")
    return np.arange(n) if draw == "first" else rng.permutation(len(y))[:n]


def _draw_by_strategy(features, budget: Budget, draw: str, seed: int, repeat: int, n: int) -> np.ndarray:
    """The labeled rows a strategy of sslrun.select picks from the train split's features (in pick order)."""
    from sslrun.select import SELECTORS

    if budget.labels_per_class is not None or budget.every_label:
        raise DataError(
            f"downstream.draw={draw} picks a total without knowing the classes: use "
            "downstream.num_labels (or label_fraction), not labels_per_class or 'all'"
        )
    if features is None or len(features) != n:
        raise DataError(
            f"downstream.draw={draw} chooses from the pretext features of the train split's {n} images; "
            f"got {'none' if features is None else len(features)} (sslrun computes them after pretext)"
        )
    count = budget.num_labels if budget.num_labels is not None else int(round(n * budget.label_fraction))
    return SELECTORS.get(draw)(features, count, seed, repeat)


def pretext_pool(raw: RawData, pool: str, exclude: np.ndarray) -> tuple[np.ndarray | ImageStack, str]:
    """The images the pretext task trains on, and the resolved pool name. Labels are never read."""
    if pool == "auto":
        pool = "unlabeled_and_train" if raw.x_unlabeled is not None else "train"
    if pool in ("unlabeled", "unlabeled_and_train") and raw.x_unlabeled is None:
        raise DataError(
            f"dataset.pool={pool}: this data set ({raw.source}) has no unlabeled split; "
            "use dataset.pool=train or dataset.pool=train_excluding_labeled"
        )
    parts = _pool_parts(pool, raw.x_train, raw.x_unlabeled, exclude)
    return (parts[0] if len(parts) == 1 else ImageStack(parts)), pool


def pool_paths(raw: RawData, pool: str, exclude: np.ndarray) -> np.ndarray | None:
    """The file of each pretext_pool image (pool resolved), in the same order; None where the data set does
    not know its files."""
    unlabeled_known = raw.unlabeled_paths is not None or pool not in ("unlabeled", "unlabeled_and_train")
    if raw.train_paths is None or not unlabeled_known:
        return None
    return np.concatenate(_pool_parts(pool, raw.train_paths, raw.unlabeled_paths, exclude))


def _pool_parts(pool: str, train, unlabeled, exclude: np.ndarray) -> list:
    """The arrays (images or their files) the pool consists of, in order."""
    if pool == "train":
        return [train]
    if pool == "train_excluding_labeled":
        keep = np.ones(len(train), dtype=bool)
        keep[exclude] = False
        return [train[keep]]
    if pool == "unlabeled":
        return [unlabeled]
    if pool == "unlabeled_and_train":
        return [unlabeled, train]
    raise DataError(f"dataset.pool={pool!r} is not one of {', '.join(POOLS)}")


def make_splits(
    raw: RawData,
    budget: Budget | int,
    val_per_class: int | LabelDraw,
    seed: int,
    num_classes: int | None,
    pool: str = "train",
    repeat: int = 0,
    features: np.ndarray | None = None,
) -> Splits:
    """`val_per_class` is a number (stratified draw) or a full LabelDraw; `features`: the train split's pretext
    features, which a strategy of FEATURE_DRAWS draws from."""
    how = val_per_class if isinstance(val_per_class, LabelDraw) else LabelDraw(val_per_class=val_per_class)
    found = int(raw.y_train.max()) + 1
    num_classes = num_classes or max(found, len(raw.class_names))
    if found > num_classes:
        raise DataError(f"labels go up to {found - 1} but dataset.num_classes={num_classes}; fix dataset.num_classes")
    if how.draw in FEATURE_DRAWS and pool == "train_excluding_labeled":
        raise DataError(
            f"downstream.draw={how.draw} chooses labels from the features of the pretext encoder, which "
            "would train on a pool without them (dataset.pool=train_excluding_labeled): use "
            "dataset.pool=train or auto"
        )
    labeled, val = draw_labels(raw.y_train, budget, how, seed, repeat, raw.class_names, features)
    exclude = np.concatenate([labeled, val])
    pool_x, pool = pretext_pool(raw, pool, exclude)
    val_x, val_y = raw.x_train[val], raw.y_train[val]
    test_x, test_y = raw.x_test, raw.y_test
    if how.val_from_test:
        if how.val_from_test >= len(test_y):
            raise DataError(
                f"downstream.val_from_test={how.val_from_test} leaves no test images (the test split has {len(test_y)})"
            )
        k = how.val_from_test
        val_x, val_y, test_x, test_y = test_x[:k], test_y[:k], test_x[k:], test_y[k:]
    return Splits(
        pretext_x=pool_x,
        labeled_x=raw.x_train[labeled],
        labeled_y=raw.y_train[labeled],
        val_x=val_x,
        val_y=val_y,
        test_x=test_x,
        test_y=test_y,
        num_classes=num_classes,
        class_names=raw.class_names,
        pool=pool,
        labeled_index=labeled,
        labeled_paths=None if raw.train_paths is None else raw.train_paths[labeled],
        pretext_paths=pool_paths(raw, pool, exclude),
    )
