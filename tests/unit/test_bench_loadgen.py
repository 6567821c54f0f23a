"""Load-generator arithmetic: Triton statistics deltas, the stability rule, perf_analyzer's input data."""

import numpy as np
import pytest

from tritonrec.errors import ConfigError
from tritonrec.measure.loadgen import (
    LoadMode,
    PointSettings,
    _overload,
    _Recorder,
    _stable,
    _window_stats,
    server_breakdown,
)
from tritonrec.measure.perf_analyzer import input_data

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


def test_server_breakdown_counts_executions_per_batch_size():
    before, after = _stats(0, 0, 0, 0, 0), _stats(30, 0, 0, 10, 30)
    before["model_stats"][0]["batch_stats"] = [{"batch_size": "1", "compute_infer": {"count": "4", "ns": "9"}}]
    after["model_stats"][0]["batch_stats"] = [
        {"batch_size": "1", "compute_infer": {"count": "6", "ns": "9"}},
        {"batch_size": "4", "compute_infer": {"count": "7", "ns": "9"}},
    ]
    assert server_breakdown(before, after)["batch_sizes"] == {"1": 2, "4": 7}


def _recorder(rows):
    """rows: (scheduled, sent, done, error kind or None)."""
    recorder = _Recorder()
    for i, (scheduled, sent, done, kind) in enumerate(rows):
        recorder.scheduled.append(scheduled)
        recorder.sent.append(sent)
        recorder.done.append(done)
        recorder.candidates.append(10)
        if kind:
            recorder.errors[i] = kind
    return recorder


def test_open_loop_latency_counts_from_the_scheduled_time_and_includes_failures():
    # 100 requests scheduled 10 ms apart; the 50 scheduled during a 0.5 s stall leave late (sender held back)
    rows = []
    for k in range(100):
        scheduled = k * 0.01
        sent = max(scheduled, 0.5) if 0.0 <= scheduled < 0.5 else scheduled
        rows.append((scheduled, sent, sent + 0.002, "ServerOverloadedError" if k == 99 else None))
    stats = _window_stats(_recorder(rows), 0.0, 2.0, LoadMode.OPEN, 100.0)
    assert stats["latency_ms"]["p99"] >= 480  # the stall, seen from the schedule
    assert stats["latency_from_send_ms"]["p99"] <= 3  # invisible from the actual send: coordinated omission
    assert stats["sender_lag_ms"]["max"] >= 490
    assert stats["errors"] == 1 and stats["error_rate"] == 0.01 and stats["latency_ms"]["count"] == 100
    assert stats["error_kinds"] == {"ServerOverloadedError": 1}


def test_an_open_loop_point_that_falls_behind_or_fails_is_overloaded():
    ok = {"error_rate": 0.0, "error_kinds": {}, "requests": 990, "seconds": 10.0}
    assert _overload(ok, LoadMode.OPEN, 100.0) is None  # 99 of 100 req/s offered completed
    assert "fell behind" in _overload({**ok, "requests": 900}, LoadMode.OPEN, 100.0)
    assert "failed" in _overload({**ok, "error_rate": 0.05, "error_kinds": {"X": 5}}, LoadMode.OPEN, 100.0)
    assert _overload({**ok, "requests": 10}, LoadMode.CLOSED, 8.0) is None  # closed loop: no offered rate
