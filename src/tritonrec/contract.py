"""The request contract every served ranker keeps, stated once (see ``model_repository/README.md``).

One request = one user: ``history`` int64 ``[1, L]`` (the user's most recent items, oldest first) and
``candidates`` int64 ``[1, N]``; the answer is ``scores`` float32 ``[1, N]``. The ONNX graph, the repository
configs, the client and the load generators all take their tensor names and the default model from here.

A served model states its own limits in its ``config.pbtxt`` parameters (``max_history``, ``max_candidates``);
the values below are only what ``tritonrec repo build`` writes when nothing else is asked for.
"""

from __future__ import annotations

__all__ = [
    "CANDIDATES",
    "CANDIDATE_OFFSETS",
    "DEFAULT_MAX_CANDIDATES",
    "DEFAULT_MODEL",
    "HISTORY",
    "MAX_CANDIDATES_PARAM",
    "MAX_HISTORY_PARAM",
    "REAL_INDEX",
    "SCORES",
]

HISTORY = "history"
CANDIDATES = "candidates"
SCORES = "scores"
REAL_INDEX = "real_index"
"""Input of the ragged CPU graph: where the real candidates sit in its padded grid (see ``tritonrec.export.ragged``)."""
CANDIDATE_OFFSETS = "candidate_offsets"
"""Input of the offsets graph (GPU): running candidate totals per user, Triton's ``BATCH_ACCUMULATED_ELEMENT_COUNT``."""

DEFAULT_MODEL = "ranker_cpu"
"""The variant served on CPUs (local, CI, the demo): what every command talks to unless told otherwise."""

MAX_HISTORY_PARAM = "max_history"
MAX_CANDIDATES_PARAM = "max_candidates"
DEFAULT_MAX_CANDIDATES = 2048
