"""`Catalogue`: the item-side features, one row per item row of the :class:`FeatureSpec`.

The ranking model keeps these tables as (non-trainable) buffers, so a request only carries item ids: the
model looks up each item's attributes, brand, category and price bucket itself. Row 0 (padding) and the OOV
row hold padding features.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tritonrec.data.feature_spec import FeatureSpec, table_rows
from tritonrec.errors import DataError

__all__ = ["Catalogue"]

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True, kw_only=True)
class Catalogue:
    """Item feature tables indexed by item row (``n_items + 2`` rows).

    Attributes:
        attributes: ``[R, A]`` attribute ids per item, 0-padded (``A`` = ``spec.attr_slots``, may be 0).
        brand: ``[R]`` brand id per item (0 = unknown).
        category: ``[R]`` category id per item (0 = unknown).
        price_bucket: ``[R]`` price bucket per item (0 = unknown).
    """

    attributes: IntArray
    brand: IntArray
    category: IntArray
    price_bucket: IntArray

    def validate(self, spec: FeatureSpec) -> None:
        """Raise :class:`DataError` unless every table fits ``spec`` (shapes and id ranges)."""
        rows = table_rows(spec.n_items)
        if self.attributes.shape != (rows, spec.attr_slots):
            raise DataError(f"attributes table has shape {self.attributes.shape}, expected {(rows, spec.attr_slots)}")
        checks = (
            ("attributes", self.attributes, spec.n_attributes),
            ("brand", self.brand, spec.n_brands),
            ("category", self.category, spec.n_categories),
            ("price_bucket", self.price_bucket, spec.n_price_buckets),
        )
        for name, table, vocab in checks:
            if name != "attributes" and table.shape != (rows,):
                raise DataError(f"{name} table has shape {table.shape}, expected {(rows,)}")
            if table.size and (table.min() < 0 or table.max() > vocab):
                raise DataError(f"{name} ids must lie in 0..{vocab}, found {table.min()}..{table.max()}")

    @classmethod
    def empty(cls, spec: FeatureSpec) -> Catalogue:
        """Return an all-padding catalogue for ``spec`` (every feature unknown)."""
        rows = table_rows(spec.n_items)
        return cls(
            attributes=np.zeros((rows, spec.attr_slots), dtype=np.int64),
            brand=np.zeros(rows, dtype=np.int64),
            category=np.zeros(rows, dtype=np.int64),
            price_bucket=np.zeros(rows, dtype=np.int64),
        )

    def to_arrays(self) -> dict[str, IntArray]:
        """Return the tables as a dict (for ``np.savez``)."""
        return {
            "attributes": self.attributes,
            "brand": self.brand,
            "category": self.category,
            "price_bucket": self.price_bucket,
        }
