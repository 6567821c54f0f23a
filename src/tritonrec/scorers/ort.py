"""An ONNX Runtime session as a :data:`tritonrec.metrics.Scorer`, so ONNX artifacts are scored like eager models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from tritonrec.contract import CANDIDATE_OFFSETS, CANDIDATES, HISTORY, SCORES, USER_INDEX
from tritonrec.data.splits import FeatureBatch, trim_history_padding
from tritonrec.metrics import Scorer

__all__ = ["file_scorer", "flatten_batch", "onnx_scorer", "ragged_onnx_scorer"]

IntArray = npt.NDArray[np.int64]


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


def flatten_batch(batch: FeatureBatch) -> tuple[IntArray, IntArray, IntArray]:
    """A ``[B, N]`` batch in the flat layout: trimmed histories, the candidates in row order, their users."""
    b, n = batch.candidates.shape
    history = np.ascontiguousarray(trim_history_padding(batch.histories), dtype=np.int64)
    candidates = np.ascontiguousarray(batch.candidates.reshape(-1), dtype=np.int64)
    return history, candidates, np.repeat(np.arange(b, dtype=np.int64), n)


def ragged_onnx_scorer(path: Path, *, threads: int = 0, offsets: bool = False) -> Scorer:
    """A scorer over a flat-layout graph (``tritonrec.export.ragged``): each batch flattened, scores reshaped.

    Args:
        path: the graph.
        threads: intra-op threads (0 = ONNX Runtime's default).
        offsets: the GPU graph, fed ``candidate_offsets`` (running totals, int32) instead of ``user_index``.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])

    def score(batch: FeatureBatch) -> npt.NDArray[np.float32]:
        history, candidates, user_index = flatten_batch(batch)
        feeds = {HISTORY: history, CANDIDATES: candidates}
        if offsets:
            b, n = batch.candidates.shape
            feeds[CANDIDATE_OFFSETS] = np.arange(1, b + 1, dtype=np.int32) * n
        else:
            feeds[USER_INDEX] = user_index
        (scores,) = session.run([SCORES], feeds)
        return np.asarray(scores, dtype=np.float32).reshape(batch.candidates.shape)

    return score


def file_scorer(path: Path, *, threads: int = 0) -> Scorer:
    """A scorer over any graph ``tritonrec export onnx`` writes, in the layout its inputs name.

    ``user_index`` -> the flat CPU graph, ``candidate_offsets`` -> the flat GPU graph, otherwise padded ``[B, N]``.
    """
    options = ort.SessionOptions()
    inputs = {i.name for i in ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]).get_inputs()}
    if USER_INDEX in inputs:
        return ragged_onnx_scorer(path, threads=threads)
    if CANDIDATE_OFFSETS in inputs:
        return ragged_onnx_scorer(path, threads=threads, offsets=True)
    return onnx_scorer(path, threads=threads)
