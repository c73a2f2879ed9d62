"""Splits: pretext pool, stratified labeled subset, validation, test."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sslrun.data.base import RawData
from sslrun.errors import DataError


@dataclass
class Splits:
    pretext_x: np.ndarray  # unlabeled pool, uint8 NHWC
    labeled_x: np.ndarray
    labeled_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    num_classes: int
    class_names: tuple[str, ...] = ()

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
    y: np.ndarray, per_class: int, extra_per_class: int, seed: int, repeat: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of `per_class` labeled and `extra_per_class` further examples per class.

    Depends only on (y, counts, seed, repeat): repeat r always gets the same subset.
    """
    rng = np.random.default_rng([seed, repeat])
    first, second = [], []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        need = per_class + extra_per_class
        if len(members) < need:
            raise DataError(
                f"class {c} has {len(members)} training images, fewer than the {per_class} labeled "
                f"+ {extra_per_class} validation asked per class; lower downstream.labels_per_class "
                "or downstream.val_per_class"
            )
        chosen = rng.permutation(members)[:need]
        first.append(chosen[:per_class])
        second.append(chosen[per_class:])
    return np.sort(np.concatenate(first)), np.sort(np.concatenate(second))


def make_splits(raw: RawData, labels_per_class: int, val_per_class: int, seed: int, num_classes: int) -> Splits:
    found = int(raw.y_train.max()) + 1
    if found > num_classes:
        raise DataError(f"labels go up to {found - 1} but dataset.num_classes={num_classes}; fix dataset.num_classes")
    labeled, val = draw_stratified(raw.y_train, labels_per_class, val_per_class, seed)
    return Splits(
        pretext_x=raw.x_train,  # the pretext pool is the whole train split; labels are never read
        labeled_x=raw.x_train[labeled],
        labeled_y=raw.y_train[labeled],
        val_x=raw.x_train[val],
        val_y=raw.y_train[val],
        test_x=raw.x_test,
        test_y=raw.y_test,
        num_classes=num_classes,
        class_names=raw.class_names,
    )
