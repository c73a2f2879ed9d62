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
    def study(labels_per_class: int | None, num_labels: int | None, label_fraction: float | None,
              budgets: list | None) -> list[Budget]:
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


def draw_stratified(
    y: np.ndarray, budget: Budget | int, val_per_class: int, seed: int, repeat: int = 0,
    class_names: tuple[str, ...] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the labeled subset (under `budget`) and of `val_per_class` validation images per class.

    Depends only on (y, budget, val_per_class, seed, repeat): repeat r always gets the same subset.
    """
    budget = Budget(labels_per_class=budget) if isinstance(budget, int) else budget
    rng = np.random.default_rng([seed, repeat])
    classes = np.unique(y)
    counts = np.array([np.sum(y == c) for c in classes])
    need = budget.per_class(counts, rng, val_per_class)
    first, second = [], []
    for c, n_labeled, have in zip(classes, need, counts, strict=True):
        if have < n_labeled + val_per_class:
            name = f"class {c}" + (f" ({class_names[c]})" if c < len(class_names) else "")
            raise DataError(
                f"{name} has {have} training images, fewer than the {n_labeled} labeled "
                f"+ {val_per_class} validation asked ({budget.describe()}); lower the label budget "
                "or downstream.val_per_class"
            )
        chosen = rng.permutation(np.flatnonzero(y == c))[: n_labeled + val_per_class]
        first.append(chosen[:n_labeled])
        second.append(chosen[n_labeled:])
    return np.sort(np.concatenate(first)), np.sort(np.concatenate(second))


def pretext_pool(raw: RawData, pool: str, exclude: np.ndarray) -> tuple[np.ndarray | ImageStack, str]:
    """The images the pretext task trains on, and the resolved pool name. Labels are never read."""
    if pool == "auto":
        pool = "unlabeled_and_train" if raw.x_unlabeled is not None else "train"
    if pool in ("unlabeled", "unlabeled_and_train") and raw.x_unlabeled is None:
        raise DataError(
            f"dataset.pool={pool}: this data set ({raw.source}) has no unlabeled split; "
            "use dataset.pool=train or dataset.pool=train_excluding_labeled"
        )
    if pool == "train":
        return raw.x_train, pool
    if pool == "train_excluding_labeled":
        keep = np.ones(len(raw.x_train), dtype=bool)
        keep[exclude] = False
        return raw.x_train[keep], pool
    if pool == "unlabeled":
        return raw.x_unlabeled, pool
    if pool == "unlabeled_and_train":
        return ImageStack([raw.x_unlabeled, raw.x_train]), pool
    raise DataError(f"dataset.pool={pool!r} is not one of {', '.join(POOLS)}")


def make_splits(
    raw: RawData, budget: Budget | int, val_per_class: int, seed: int, num_classes: int | None,
    pool: str = "train", repeat: int = 0,
) -> Splits:
    found = int(raw.y_train.max()) + 1
    num_classes = num_classes or max(found, len(raw.class_names))
    if found > num_classes:
        raise DataError(f"labels go up to {found - 1} but dataset.num_classes={num_classes}; fix dataset.num_classes")
    labeled, val = draw_stratified(raw.y_train, budget, val_per_class, seed, repeat, raw.class_names)
    pool_x, pool = pretext_pool(raw, pool, np.concatenate([labeled, val]))
    return Splits(
        pretext_x=pool_x,
        labeled_x=raw.x_train[labeled],
        labeled_y=raw.y_train[labeled],
        val_x=raw.x_train[val],
        val_y=raw.y_train[val],
        test_x=raw.x_test,
        test_y=raw.y_test,
        num_classes=num_classes,
        class_names=raw.class_names,
        pool=pool,
    )
