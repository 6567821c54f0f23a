"""The request-contract benchmark's pure parts: how each contract lays out a user, and its wire size."""

import numpy as np
import pytest

from tritonrec.bench.serving.request_contracts import _arrays, request_bytes

pytestmark = pytest.mark.unit


def test_per_row_copies_the_history_onto_every_candidate_row():
    history = np.arange(1, 51, dtype=np.int64)[None, :]
    candidates = np.arange(100, 300, dtype=np.int64)[None, :]
    per_request = _arrays("per_request", history, candidates)
    per_row = _arrays("per_row", history, candidates)
    assert per_request["history"].shape == (1, 50) and per_request["candidates"].shape == (1, 200)
    assert per_row["history"].shape == (200, 50) and per_row["candidates"].shape == (200, 1)
    assert (per_row["history"] == history).all()
    # raw int64 contents dominate: (50 + 200) * 8 bytes vs (200 * 50 + 200) * 8 bytes, plus small headers
    assert 2000 <= request_bytes(per_request) < 2200
    assert 81_600 <= request_bytes(per_row) < 81_800
