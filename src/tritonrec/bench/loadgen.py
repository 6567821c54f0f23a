"""Load generation against a Triton endpoint: closed loop (fixed concurrency) and open loop (Poisson arrivals).

One sender thread issues requests with tritonclient's gRPC ``async_infer``; gRPC's own threads complete them,
so a Python process keeps hundreds of requests in flight without a thread each. Every completion is recorded
(time, latency, candidates, error kind). A measurement point runs a warm-up, then fixed windows until the last
``stable_windows`` agree (throughput and p50 within ``stability_pct`` of their mean, as perf_analyzer judges
stability) or ``max_windows`` pass; the point reports only those last windows, with Triton's own
statistics (queue, compute) over exactly the same span.

- **closed loop**: ``concurrency`` requests in flight; a new one leaves when one completes. Throughput is what
  the server sustains at that concurrency; latency includes no client queueing.
- **open loop**: requests leave at Poisson times with mean ``rate`` per second, whether or not earlier ones are
  done, as independent users would send them. Past the server's capacity latency grows and errors appear
  (queue full): what an SLA at a given traffic level must be judged on.
"""

from __future__ import annotations

import enum
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import tritonclient.grpc as grpcclient

from tritonrec.client.core import infer_inputs
from tritonrec.client.request import ModelLimits, prepare_user
from tritonrec.client.status import error_for
from tritonrec.errors import ConfigError

__all__ = ["LoadMode", "PointSettings", "PreparedRequest", "measure_point", "prepare_requests", "server_breakdown"]

IntArray = npt.NDArray[np.int64]
MAX_OUTSTANDING = 2048  # open loop: past this many in flight the generator itself is the bottleneck


class LoadMode(enum.StrEnum):
    """How requests are paced."""

    CLOSED = "closed"  # fixed concurrency
    OPEN = "open"  # Poisson arrivals at a fixed mean rate


@dataclass(frozen=True, slots=True, kw_only=True)
class PointSettings:
    """Warm-up, window length and the stability rule of one measurement point."""

    warmup_s: float = 3.0
    window_s: float = 3.0
    stable_windows: int = 3
    max_windows: int = 8
    stability_pct: float = 15.0
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.warmup_s < 0 or self.window_s <= 0 or self.timeout_s <= 0:
            raise ConfigError("warmup_s must be >= 0, window_s and timeout_s > 0")
        if not 1 <= self.stable_windows <= self.max_windows:
            raise ConfigError(f"need 1 <= stable_windows ({self.stable_windows}) <= max_windows ({self.max_windows})")


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    """Inputs of one request, built once and reused (tritonclient serializes them at send time)."""

    inputs: list[grpcclient.InferInput]
    history: IntArray
    candidates: IntArray

    @property
    def n_candidates(self) -> int:
        """Candidates ranked by this request."""
        return int(self.candidates.size)


def prepare_requests(pairs: list[tuple[IntArray, IntArray]], limits: ModelLimits) -> list[PreparedRequest]:
    """Shape users as the ranking client does (padding, most recent L items) and wrap them as gRPC inputs."""
    out = []
    for history, candidates in pairs:
        h, c = prepare_user(history, candidates, limits)
        out.append(PreparedRequest(infer_inputs({"history": h, "candidates": c[None, :]}), h[0], c))
    return out


class _Recorder:
    """Completion records of one run, appended from gRPC threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done_at: list[float] = []
        self.latency_s: list[float] = []
        self.candidates: list[int] = []
        self.errors: dict[int, str] = {}  # index -> error kind
        self.first_errors: dict[str, str] = {}
        self.outstanding = 0

    def add(self, sent: float, n: int, error: Any) -> None:
        now = time.perf_counter()
        with self.lock:
            self.outstanding -= 1
            if error is not None:
                failure = error_for(error.status(), error.message() or str(error), context="infer")
                kind = type(failure).__name__
                self.errors[len(self.done_at)] = kind
                self.first_errors.setdefault(kind, str(failure)[:300])
            self.done_at.append(now)
            self.latency_s.append(now - sent)
            self.candidates.append(n)


def _sender(
    client: grpcclient.InferenceServerClient,
    model: str,
    requests: list[PreparedRequest],
    mode: LoadMode,
    level: float,
    recorder: _Recorder,
    stop: threading.Event,
    timeout_s: float,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    window = threading.BoundedSemaphore(int(level)) if mode is LoadMode.CLOSED else None
    next_at = time.perf_counter()
    i = 0
    while not stop.is_set():
        if window is not None:
            if not window.acquire(timeout=0.1):
                continue
        else:
            next_at += float(rng.exponential(1.0 / level))
            delay = next_at - time.perf_counter()
            if delay > 0:
                stop.wait(delay)
            if recorder.outstanding >= MAX_OUTSTANDING:
                raise ConfigError(f"open loop: {MAX_OUTSTANDING} requests in flight; the rate is far past capacity")
        request = requests[i % len(requests)]
        i += 1
        sent = time.perf_counter()
        with recorder.lock:
            recorder.outstanding += 1

        def done(result: Any, error: Any, sent: float = sent, n: int = request.n_candidates) -> None:
            recorder.add(sent, n, error)
            if window is not None:
                window.release()

        client.async_infer(model, request.inputs, done, client_timeout=timeout_s)


def _window_stats(recorder: _Recorder, lo: float, hi: float) -> dict[str, Any]:
    """Throughput and latency of the completions in ``[lo, hi)``."""
    with recorder.lock:
        done = np.asarray(recorder.done_at)
        lat = np.asarray(recorder.latency_s)
        cand = np.asarray(recorder.candidates)
        errors = dict(recorder.errors)
    in_window = (done >= lo) & (done < hi)
    failed = np.zeros(done.size, dtype=bool)
    kinds: dict[str, int] = {}
    for i, kind in errors.items():  # errors are few: no Python loop over every completion
        if in_window[i]:
            failed[i] = True
            kinds[kind] = kinds.get(kind, 0) + 1
    ok = in_window & ~failed
    n_window, n_ok = int(in_window.sum()), int(ok.sum())
    seconds = hi - lo
    ms = lat[ok] * 1e3
    pct = {f"p{q}": round(float(np.percentile(ms, q)), 2) if ms.size else None for q in (50, 90, 95, 99)}
    return {
        "seconds": round(seconds, 3),
        "requests": n_window,
        "ok": n_ok,
        "errors": n_window - n_ok,
        "error_kinds": kinds,
        "requests_per_second": round(n_ok / seconds, 1),
        "candidates_per_second": round(float(cand[ok].sum()) / seconds, 1) if n_ok else 0.0,
        "latency_ms": {**pct, "mean": round(float(ms.mean()), 2) if ms.size else None},
    }


def _stable(windows: list[dict[str, Any]], settings: PointSettings) -> bool:
    last = windows[-settings.stable_windows :]
    if len(last) < settings.stable_windows:
        return False
    for values in ([w["requests_per_second"] for w in last], [w["latency_ms"]["p50"] or 0.0 for w in last]):
        mean = float(np.mean(values))
        if mean <= 0 or max(abs(v - mean) for v in values) > mean * settings.stability_pct / 100:
            return False
    return True


def _inference_stats(client: grpcclient.InferenceServerClient, model: str) -> dict[str, Any]:
    stats: dict[str, Any] = client.get_inference_statistics(model, as_json=True)
    return stats


def server_breakdown(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Triton's own view of the requests completed between two statistics answers.

    Returns per-request averages in ms of ``queue``, ``compute_input``, ``compute_infer``, ``compute_output``,
    plus executions, inferences (users) and the mean batch the dynamic batcher formed (users per execution).
    """

    def totals(stats: dict[str, Any]) -> dict[str, int]:
        out = {"executions": 0, "inferences": 0, "success": 0}
        for entry in stats.get("model_stats", []):
            out["executions"] += int(entry.get("execution_count", 0))
            out["inferences"] += int(entry.get("inference_count", 0))
            infer = entry.get("inference_stats", {})
            out["success"] += int(infer.get("success", {}).get("count", 0))
            for part in ("queue", "compute_input", "compute_infer", "compute_output"):
                out[f"{part}_ns"] = out.get(f"{part}_ns", 0) + int(infer.get(part, {}).get("ns", 0))
        return out

    a, b = totals(before), totals(after)
    delta = {k: b.get(k, 0) - a.get(k, 0) for k in b}
    n = max(delta["success"], 1)
    out: dict[str, Any] = {
        f"{part}_ms": round(delta[f"{part}_ns"] / n / 1e6, 3)
        for part in ("queue", "compute_input", "compute_infer", "compute_output")
    }
    out.update(
        executions=delta["executions"],
        inferences=delta["inferences"],
        successes=delta["success"],
        mean_batch_users=round(delta["inferences"] / delta["executions"], 2) if delta["executions"] else None,
    )
    return out


def measure_point(
    url: str,
    model: str,
    requests: list[PreparedRequest],
    mode: LoadMode,
    level: float,
    settings: PointSettings,
    *,
    seed: int = 0,
) -> dict[str, Any]:
    """Drive ``model`` at ``level`` (concurrency, or requests/s in open loop) and return the point's figures."""
    if level <= 0:
        raise ConfigError(f"{mode.value} loop level must be > 0, got {level}")
    client = grpcclient.InferenceServerClient(url)
    recorder, stop = _Recorder(), threading.Event()
    sender_error: list[BaseException] = []

    def send() -> None:
        try:
            _sender(client, model, requests, mode, level, recorder, stop, settings.timeout_s, seed)
        except BaseException as e:  # surfaced to the caller below
            sender_error.append(e)
            stop.set()

    thread = threading.Thread(target=send, name=f"tritonrec-{mode.value}-{level:g}", daemon=True)
    started = time.perf_counter()
    thread.start()
    stop.wait(settings.warmup_s)
    windows: list[dict[str, Any]] = []
    edges = [time.perf_counter()]
    snapshots = [_inference_stats(client, model)]
    while len(windows) < settings.max_windows and not stop.is_set():
        stop.wait(max(edges[-1] + settings.window_s - time.perf_counter(), 0.0))
        edges.append(time.perf_counter())
        snapshots.append(_inference_stats(client, model))
        windows.append(_window_stats(recorder, edges[-2], edges[-1]))
        if _stable(windows, settings):
            break
    stop.set()
    thread.join(timeout=5)
    drain_until = time.perf_counter() + settings.timeout_s + 1
    while recorder.outstanding > 0 and time.perf_counter() < drain_until:
        time.sleep(0.02)
    client.close()
    if sender_error:
        raise sender_error[0]
    k = min(settings.stable_windows, len(windows))
    point = _window_stats(recorder, edges[-1 - k], edges[-1])
    point.update(
        mode=mode.value,
        level=level,
        stable=_stable(windows, settings),
        windows=len(windows),
        measured_windows=k,
        window_requests_per_second=[w["requests_per_second"] for w in windows],
        first_errors=recorder.first_errors,
        server=server_breakdown(snapshots[-1 - k], snapshots[-1]),
        wall_s=round(time.perf_counter() - started, 2),
        mean_candidates=round(float(np.mean([r.n_candidates for r in requests])), 1),
    )
    return point
