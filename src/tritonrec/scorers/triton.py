"""A Triton endpoint as a :data:`tritonrec.metrics.Scorer`: the metrics module scores served models too."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from tritonrec.client.ranking import RankingClient
from tritonrec.data.splits import FeatureBatch
from tritonrec.metrics import Scorer

__all__ = ["triton_scorer"]


def triton_scorer(client: RankingClient, *, concurrency: int = 16) -> Scorer:
    """Return a scorer that sends each row of a batch as its own request (one user each) through ``client``."""

    def score(batch: FeatureBatch) -> npt.NDArray[np.float32]:
        rankings = client.rank_many(list(batch.histories), list(batch.candidates), concurrency=concurrency)
        return np.stack([r.scores for r in rankings]).astype(np.float32, copy=False)

    return score
