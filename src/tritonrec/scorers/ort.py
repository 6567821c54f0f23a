"""An ONNX Runtime session as a :data:`tritonrec.metrics.Scorer`, so ONNX artifacts are scored like eager models.

:func:`session_scorer` wraps any session with ONNX Runtime's ``run(output_names, feeds)`` call, which is also
how ``ranker_cpu`` runs OpenVINO (``tritonrec.repository.ranker_cpu_model.open_session``): every CPU runtime is
scored through the same feeds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tritonrec.contract import CANDIDATES, HISTORY, SCORES
from tritonrec.data.splits import FeatureBatch
from tritonrec.metrics import Scorer

__all__ = ["onnx_scorer", "session_scorer"]


def session_scorer(session: Any) -> Scorer:
    """A scorer over ``session`` (anything with ONNX Runtime's ``run(output_names, feeds)``)."""

    def score(batch: FeatureBatch) -> npt.NDArray[np.float32]:
        feeds = {
            HISTORY: np.ascontiguousarray(batch.histories, dtype=np.int64),
            CANDIDATES: np.ascontiguousarray(batch.candidates, dtype=np.int64),
        }
        (scores,) = session.run([SCORES], feeds)
        return np.asarray(scores, dtype=np.float32)

    return score


def onnx_scorer(path: Path, *, threads: int = 0) -> Scorer:
    """Open ``path`` in a CPU ONNX Runtime session and return a scorer over it.

    Args:
        path: the ``.onnx`` file (its ``.data`` file, if any, beside it).
        threads: intra-op threads (0 = ONNX Runtime's default).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return session_scorer(ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"]))
