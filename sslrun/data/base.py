"""What every data set loader returns: uint8 images in NHWC, integer labels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class RawData:
    """A data set as it comes from its source, before any split is drawn."""

    x_train: np.ndarray  # uint8, (n, h, w, c)
    y_train: np.ndarray  # int64, (n,)
    x_test: np.ndarray
    y_test: np.ndarray
    source: str  # where it came from, for the log and metrics.json
    class_names: tuple[str, ...] = ()
    # Images without labels (STL-10's `unlabelled`, an image folder's `unlabeled/`).
    # May be a read-only np.memmap view: never copy it whole or convert it to float.
    x_unlabeled: np.ndarray | None = None
    # The file of each train / unlabeled / test image (str, aligned with x_train ...) where the data set
    # knows it (image folders): pseudo_labels.csv and downstream/labeled_0.csv name files, not row numbers.
    train_paths: np.ndarray | None = None
    unlabeled_paths: np.ndarray | None = None
    test_paths: np.ndarray | None = None  # hygiene/pairs.csv names the test file a pool image copies

    def __post_init__(self) -> None:
        for name in ("x_train", "x_test", "x_unlabeled"):
            x = getattr(self, name)
            if x is not None and x.ndim == 3:  # grayscale without a channel axis
                setattr(self, name, x[..., None])
        self.y_train = np.asarray(self.y_train, dtype=np.int64)
        self.y_test = np.asarray(self.y_test, dtype=np.int64)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]
