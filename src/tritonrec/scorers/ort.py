"""An ONNX Runtime session as a :data:`tritonrec.metrics.Scorer`, so ONNX artifacts are scored like eager models.

:func:`session_scorer` wraps any session with ONNX Runtime's ``run(output_names, feeds)`` call, which is also
how ``ranker_cpu`` runs OpenVINO (``tritonrec.backends.ranker_cpu_model.open_session``): every CPU runtime is
scored through the same feeds, in the layout the graph's inputs name (``tritonrec.export.ragged``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tritonrec.contract import CANDIDATE_OFFSETS, CANDIDATES, HISTORY, REAL_INDEX, SCORES
from tritonrec.data.splits import FeatureBatch, trim_history_padding
from tritonrec.metrics import Scorer

__all__ = [
    "GRAPH_LAYOUTS",
    "file_scorer",
    "unpadded_feeds",
    "graph_layout",
    "onnx_scorer",
    "ragged_onnx_scorer",
    "session_scorer",
]

IntArray = npt.NDArray[np.int64]

GRAPH_LAYOUTS = ("padded", "ragged", "offsets")


def graph_layout(input_names: Iterable[str]) -> str:
    """The layout a graph's inputs name: ``real_index`` -> ``ragged``, ``candidate_offsets`` -> ``offsets``."""
    names = set(input_names)
    if REAL_INDEX in names:
        return "ragged"
    return "offsets" if CANDIDATE_OFFSETS in names else "padded"


def unpadded_feeds(batch: FeatureBatch, layout: str) -> dict[str, IntArray]:
    """The feeds of a ``[B, N]`` batch (every candidate real) in the ``ragged`` or ``offsets`` layout.

    Both trim the histories to the longest real one; ``ragged`` keeps the ``[B, N]`` grid and names every position
    real, ``offsets`` concatenates the candidates in row order with the running totals per user (int32).
    """
    b, n = batch.candidates.shape
    history = np.ascontiguousarray(trim_history_padding(batch.histories), dtype=np.int64)
    if layout == "ragged":
        candidates = np.ascontiguousarray(batch.candidates, dtype=np.int64)
        return {HISTORY: history, CANDIDATES: candidates, REAL_INDEX: np.arange(b * n, dtype=np.int64)}
    concatenated = np.ascontiguousarray(batch.candidates.reshape(-1), dtype=np.int64)
    return {HISTORY: history, CANDIDATES: concatenated, CANDIDATE_OFFSETS: np.arange(1, b + 1, dtype=np.int32) * n}


def session_scorer(session: Any, layout: str | None = None) -> Scorer:
    """A scorer over ``session`` (anything with ONNX Runtime's ``run(output_names, feeds)``).

    Args:
        session: the session.
        layout: ``padded`` (``[B, L]`` / ``[B, N]``), ``ragged`` (grid, ``real_index``) or ``offsets`` (concatenated,
            ``candidate_offsets``: running totals, int32); None = the one its inputs name (``get_inputs()``).

    Raises:
        ValueError: an unknown layout.
    """
    layout = layout or graph_layout(i.name for i in session.get_inputs())
    if layout not in GRAPH_LAYOUTS:
        raise ValueError(f"layout must be one of {GRAPH_LAYOUTS}, got {layout!r}")

    def score(batch: FeatureBatch) -> npt.NDArray[np.float32]:
        if layout == "padded":
            feeds = {
                HISTORY: np.ascontiguousarray(batch.histories, dtype=np.int64),
                CANDIDATES: np.ascontiguousarray(batch.candidates, dtype=np.int64),
            }
        else:
            feeds = unpadded_feeds(batch, layout)
        (scores,) = session.run([SCORES], feeds)
        return np.asarray(scores, dtype=np.float32).reshape(batch.candidates.shape)

    return score


def _cpu_session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def onnx_scorer(path: Path, *, threads: int = 0) -> Scorer:
    """Open ``path`` (a padded ``[B, N]`` graph) in a CPU ONNX Runtime session and return a scorer over it.

    Args:
        path: the ``.onnx`` file (its ``.data`` file, if any, beside it).
        threads: intra-op threads (0 = ONNX Runtime's default).
    """
    return session_scorer(_cpu_session(path, threads), "padded")


def ragged_onnx_scorer(path: Path, *, threads: int = 0, offsets: bool = False) -> Scorer:
    """A scorer over the ragged or the offsets graph (``tritonrec.export.ragged``): scores reshaped to ``[B, N]``.

    Args:
        path: the graph.
        threads: intra-op threads (0 = ONNX Runtime's default).
        offsets: the GPU graph, fed ``candidate_offsets`` (running totals, int32) instead of ``real_index``.
    """
    return session_scorer(_cpu_session(path, threads), "offsets" if offsets else "ragged")


def file_scorer(path: Path, *, threads: int = 0) -> Scorer:
    """A scorer over any graph ``tritonrec export onnx`` (or ``tritonrec quantize``) writes, in its inputs' layout.

    ``real_index`` -> the ragged graph (CPU), ``candidate_offsets`` -> the offsets graph (GPU), otherwise padded
    ``[B, N]``.
    """
    return session_scorer(_cpu_session(path, threads))
