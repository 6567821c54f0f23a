"""`FeatureSpec`: the vocabularies and shapes every model, export and client agrees on.

Id convention (the same for items, attributes, brands, categories and price buckets):

- ``0`` is padding: "no item here" (left padding of a short history, an empty attribute slot);
- ``1 .. n`` are real ids (the dataset's dense ids; raw catalogue ids are mapped at load time);
- ``n + 1`` is the out-of-vocabulary (OOV) row: every other value, negative ids included, lands there.

An embedding table for a vocabulary of size ``n`` therefore has ``n + 2`` rows, and :func:`map_ids_to_rows`
turns any integer into a valid row, so no input can index out of range.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from tritonrec.dictconfig import known_fields
from tritonrec.errors import ConfigError

__all__ = ["PAD_ID", "FeatureSpec", "map_ids_to_rows", "oov_row", "table_rows"]

PAD_ID = 0


def oov_row(vocab_size: int) -> int:
    """Return the OOV row of a vocabulary with ids ``1..vocab_size``."""
    return vocab_size + 1


def table_rows(vocab_size: int) -> int:
    """Return the number of embedding rows for a vocabulary: padding + ids + OOV."""
    return vocab_size + 2


def map_ids_to_rows(ids: npt.ArrayLike, vocab_size: int) -> npt.NDArray[np.int64]:
    """Map arbitrary integer ids to valid embedding rows (numpy twin of the model's own mapping).

    Args:
        ids: integer ids of any shape.
        vocab_size: ``n``; real ids are ``1..n``.

    Returns:
        int64 array of the same shape: ``0`` stays padding, ``1..n`` are kept, anything else is ``n + 1``.
    """
    arr = np.asarray(ids)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"ids must be integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    valid = (arr >= 1) & (arr <= vocab_size)
    return np.where(valid, arr, np.where(arr == PAD_ID, PAD_ID, oov_row(vocab_size)))


@dataclass(frozen=True, slots=True, kw_only=True)
class FeatureSpec:
    """Vocabulary sizes and shapes of the ranking features; saved with every checkpoint.

    Attributes:
        n_items: number of real item ids (``1..n_items``).
        n_attributes: number of attribute ids (pooled multi-valued item attributes; 0 = none).
        n_brands: number of brand ids (0 = the dataset has no brand feature).
        n_categories: number of category ids (0 = none).
        n_price_buckets: number of price buckets (0 = no prices).
        history_len: ``L``, the number of most recent behaviour items the model reads.
        attr_slots: ``A``, attribute slots per item (0 when ``n_attributes`` is 0).
    """

    n_items: int
    n_attributes: int = 0
    n_brands: int = 0
    n_categories: int = 0
    n_price_buckets: int = 0
    history_len: int = 50
    attr_slots: int = 0

    def __post_init__(self) -> None:
        if self.n_items < 1:
            raise ConfigError(f"n_items must be >= 1, got {self.n_items}")
        for name in ("n_attributes", "n_brands", "n_categories", "n_price_buckets", "attr_slots"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.history_len < 1:
            raise ConfigError(f"history_len must be >= 1, got {self.history_len}")
        if (self.n_attributes == 0) != (self.attr_slots == 0):
            raise ConfigError(
                f"n_attributes ({self.n_attributes}) and attr_slots ({self.attr_slots}) must both be 0 or both > 0"
            )

    def to_dict(self) -> dict[str, int]:
        """Return a JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        """Build from :meth:`to_dict` output; unknown keys are a :class:`ConfigError`."""
        return cls(**{k: int(v) for k, v in known_fields(cls, data).items()})
