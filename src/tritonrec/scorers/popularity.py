"""The popularity baseline every trained model must beat, as a :data:`tritonrec.metrics.Scorer`."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from tritonrec.data.feature_spec import map_ids_to_rows
from tritonrec.data.splits import FeatureBatch
from tritonrec.metrics import Scorer

__all__ = ["popularity_scorer"]


def popularity_scorer(item_counts: npt.NDArray[np.int64]) -> Scorer:
    """Score each candidate by the log of its training interaction count (ignores the user).

    Args:
        item_counts: ``[n_items + 2]`` counts per item row (padding and OOV rows included).
    """
    log_counts = np.log1p(np.asarray(item_counts, dtype=np.float64))
    n_items = len(log_counts) - 2

    def score(batch: FeatureBatch) -> npt.NDArray[np.float64]:
        return log_counts[map_ids_to_rows(batch.candidates, n_items)]

    return score
