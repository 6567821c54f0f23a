"""An ONNX Runtime session as a :data:`tritonrec.metrics.Scorer`, so ONNX artifacts are scored like eager models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from tritonrec.contract import CANDIDATES, HISTORY, SCORES
from tritonrec.data.splits import FeatureBatch
from tritonrec.metrics import Scorer

__all__ = ["onnx_scorer"]


def onnx_scorer(path: Path, *, threads: int = 0) -> Scorer:
    """Open ``path`` in a CPU ONNX Runtime session and return a scorer over it.

    Args:
        path: the ``.onnx`` file (its ``.data`` file, if any, beside it).
        threads: intra-op threads (0 = ONNX Runtime's default).
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])

    def score(batch: FeatureBatch) -> npt.NDArray[np.float32]:
        feeds = {
            HISTORY: np.ascontiguousarray(batch.histories, dtype=np.int64),
            CANDIDATES: np.ascontiguousarray(batch.candidates, dtype=np.int64),
        }
        (scores,) = session.run([SCORES], feeds)
        return np.asarray(scores, dtype=np.float32)

    return score
