"""The eager-PyTorch scorer: wraps a model as a :data:`tritonrec.metrics.Scorer` (numpy in, numpy out)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from tritonrec.data.splits import FeatureBatch, trim_history_padding
from tritonrec.metrics import Scorer

__all__ = ["torch_scorer"]


def torch_scorer(model: nn.Module) -> Scorer:
    """Return a scorer that runs ``model`` in eval mode under ``torch.inference_mode``.

    The model is switched to eval mode once, here; the caller switches it back for further training. Leading
    all-padding history columns are dropped first (same scores, less work).
    """
    model.eval()

    def score(batch: FeatureBatch) -> npt.NDArray[np.float32]:
        with torch.inference_mode():
            histories = torch.from_numpy(np.ascontiguousarray(trim_history_padding(batch.histories), dtype=np.int64))
            candidates = torch.from_numpy(np.ascontiguousarray(batch.candidates, dtype=np.int64))
            logits: torch.Tensor = model(histories, candidates)
            return logits.float().numpy()

    return score
