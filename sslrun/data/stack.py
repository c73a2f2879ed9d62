"""Several uint8 image arrays seen as one, without copying them."""

from __future__ import annotations

import numpy as np


class ImageStack:
    """Concatenation of image arrays (in-memory or np.memmap) that only copies the rows asked for.

    STL-10's unlabeled split is 2.8 GB on disk; the pretext pool "unlabeled + train"
    must not become one 2.9 GB array, let alone a float32 one.
    """

    def __init__(self, parts: list[np.ndarray]) -> None:
        parts = [p for p in parts if len(p)]
        if not parts:
            raise ValueError("an ImageStack needs at least one non-empty array")
        shapes = {p.shape[1:] for p in parts}
        if len(shapes) != 1:
            raise ValueError(f"image arrays differ in shape: {sorted(shapes)}")
        self.parts = parts
        self.offsets = np.cumsum([0] + [len(p) for p in parts])
        self.dtype = parts[0].dtype

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.parts[0].shape[1:])

    @property
    def nbytes(self) -> int:
        return sum(p.nbytes for p in self.parts)

    @property
    def on_disk(self) -> bool:
        """Whether any part is memory-mapped (a view of an np.memmap counts)."""
        return any(_is_memmap(p) for p in self.parts)

    def take(self, idx: np.ndarray) -> np.ndarray:
        """Rows `idx` (in that order), read part by part in sorted order for locality."""
        idx = np.asarray(idx, dtype=np.int64)
        out = np.empty((len(idx), *self.shape[1:]), dtype=self.dtype)
        which = np.searchsorted(self.offsets, idx, side="right") - 1
        for k, part in enumerate(self.parts):
            sel = np.flatnonzero(which == k)
            if len(sel):
                local = idx[sel] - self.offsets[k]
                order = np.argsort(local, kind="stable")
                out[sel[order]] = part[local[order]]
        return out

    def __getitem__(self, idx) -> np.ndarray:
        return self.take(np.arange(len(self))[idx])


def _is_memmap(x: np.ndarray) -> bool:
    while x is not None:
        if isinstance(x, np.memmap):
            return True
        x = x.base if isinstance(x.base, np.ndarray) else None
    return False


def as_stack(x: np.ndarray | ImageStack) -> ImageStack:
    return x if isinstance(x, ImageStack) else ImageStack([x])
