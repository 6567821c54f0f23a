"""Load-generator arithmetic: Triton statistics deltas, the stability rule, perf_analyzer's input data."""

import numpy as np
import pytest

from tritonrec.bench.loadgen import PointSettings, _stable, server_breakdown
from tritonrec.bench.perf_analyzer import input_data
from tritonrec.errors import ConfigError

pytestmark = pytest.mark.unit


def _stats(success, queue_ns, infer_ns, executions, inferences):
    part = lambda ns: {"count": str(success), "ns": str(ns)}  # noqa: E731  (Triton's JSON carries strings)
    return {
        "model_stats": [
            {
                "execution_count": str(executions),
                "inference_count": str(inferences),
                "inference_stats": {
                    "success": part(0),
                    "queue": part(queue_ns),
                    "compute_input": part(0),
                    "compute_infer": part(infer_ns),
                    "compute_output": part(0),
                },
            }
        ]
    }


def test_server_breakdown_is_the_per_request_delta():
    before = _stats(100, 1_000_000_000, 2_000_000_000, 20, 100)
    after = _stats(300, 1_400_000_000, 3_000_000_000, 60, 300)
    out = server_breakdown(before, after)
    assert out["successes"] == 200
    assert out["queue_ms"] == pytest.approx(2.0)  # 400 ms over 200 requests
    assert out["compute_infer_ms"] == pytest.approx(5.0)
    assert out["executions"] == 40 and out["mean_batch_users"] == 5.0


def _window(rps, p50):
    return {"requests_per_second": rps, "latency_ms": {"p50": p50}}


def test_stability_needs_the_last_windows_to_agree():
    settings = PointSettings(stable_windows=3, stability_pct=10)
    assert not _stable([_window(100, 5), _window(100, 5)], settings)  # too few windows
    assert _stable([_window(10, 50), _window(100, 5), _window(104, 5.2), _window(97, 4.9)], settings)
    assert not _stable([_window(100, 5), _window(130, 5), _window(100, 5)], settings)
    assert not _stable([_window(100, 5), _window(100, 9), _window(100, 5)], settings)


def test_point_settings_are_checked():
    with pytest.raises(ConfigError, match="stable_windows"):
        PointSettings(stable_windows=5, max_windows=3)


def test_perf_analyzer_input_keeps_each_request_shape():
    requests = [(np.arange(3), np.arange(10, 15)), (np.arange(50), np.arange(7))]
    rows = input_data(requests)["data"]
    assert rows[0]["history"] == {"content": [0, 1, 2], "shape": [3]}
    assert rows[1]["candidates"]["shape"] == [7] and len(rows[1]["history"]["content"]) == 50
