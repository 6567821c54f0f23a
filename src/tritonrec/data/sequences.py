"""Behaviour sequences stored compactly (CSR) and turned into fixed-length model histories.

Legend: U = users, E = examples, L = history length.
A history row is right-aligned: oldest item first, the most recent item in the last column, 0-padded on the left.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tritonrec.data.catalogue import Catalogue
from tritonrec.data.feature_spec import FeatureSpec
from tritonrec.errors import DataError

__all__ = ["SequenceDataset", "build_histories", "pack_sequences"]

IntArray = npt.NDArray[np.int64]


def pack_sequences(sequences: Sequence[Sequence[int] | IntArray]) -> tuple[IntArray, IntArray]:
    """Pack per-user item sequences into CSR form.

    Returns:
        ``(items [sum of lengths], offsets [U + 1])``; user ``u`` owns ``items[offsets[u]:offsets[u + 1]]``.
    """
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    offsets = np.zeros(len(sequences) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    items = np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences]) if len(sequences) else np.zeros(0)
    return items.astype(np.int64, copy=False), offsets


def build_histories(items: IntArray, starts: IntArray, ends: IntArray, length: int) -> IntArray:
    """Cut right-aligned, left-padded histories out of a flat item array, without Python loops.

    Args:
        items: flat item ids (CSR values).
        starts: ``[E]`` first index a history may use (the user's first item).
        ends: ``[E]`` one past the last index of each history (the target's index).
        length: ``L``.

    Returns:
        ``[E, L]`` int64: ``items[max(start, end - L):end]`` right-aligned, 0 on the left.
    """
    idx = ends[:, None] - length + np.arange(length, dtype=np.int64)[None, :]
    valid = idx >= starts[:, None]
    gathered = items[np.clip(idx, 0, max(len(items) - 1, 0))] if len(items) else np.zeros(idx.shape, np.int64)
    return np.where(valid, gathered, 0).astype(np.int64, copy=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class SequenceDataset:
    """Users' time-ordered interaction sequences plus the item catalogue.

    Attributes:
        name: dataset name (``beauty``, ``rees46``, ...).
        spec: vocabularies and history length.
        catalogue: item side features.
        items: CSR values, dense item ids ``1..spec.n_items``.
        offsets: CSR offsets, ``[U + 1]``.
        source: human-readable description of where the data came from.
    """

    name: str
    spec: FeatureSpec
    catalogue: Catalogue
    items: IntArray
    offsets: IntArray
    source: str = ""

    def __post_init__(self) -> None:
        self.catalogue.validate(self.spec)
        if self.offsets.ndim != 1 or self.offsets[0] != 0 or self.offsets[-1] != len(self.items):
            raise DataError("offsets do not describe the item array")
        if len(self.items) and (self.items.min() < 1 or self.items.max() > self.spec.n_items):
            raise DataError(f"item ids must lie in 1..{self.spec.n_items}")

    @property
    def n_users(self) -> int:
        """Number of users (sequences)."""
        return len(self.offsets) - 1

    @property
    def lengths(self) -> IntArray:
        """``[U]`` sequence lengths."""
        return np.diff(self.offsets)

    def sequence(self, user: int) -> IntArray:
        """Return user ``user``'s item sequence (a view)."""
        return self.items[self.offsets[user] : self.offsets[user + 1]]

    def item_counts(self) -> IntArray:
        """``[n_items + 2]`` interaction count per item row (for popularity baselines)."""
        return np.bincount(self.items, minlength=self.spec.n_items + 2).astype(np.int64)
