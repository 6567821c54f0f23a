"""Load generation against a Triton endpoint: closed loop (fixed concurrency) and open loop (Poisson arrivals).

One sender thread issues requests on the client's fast path (prebuilt raw-bytes ``ModelInferRequest`` s sent with
the gRPC stub's ``ModelInfer.future``, see ``tritonrec.client.wire``); gRPC's own threads complete them, so a
Python process keeps hundreds of requests in flight without a thread each. Every completion is recorded
(scheduled, sent and done times, candidates, error kind). A measurement point runs a warm-up, then fixed windows
until the last ``stable_windows`` agree (throughput and p50 within ``stability_pct`` of their mean, as
perf_analyzer judges stability) or ``max_windows`` pass; the point reports only those last windows, with
Triton's own accounts of the same span: its statistics API (queue, compute, executions per batch size) and its
Prometheus metrics endpoint (the same split, plus failures by reason).

- **closed loop**: ``concurrency`` requests in flight; a new one leaves when one completes. Throughput is what
  the server sustains at that concurrency; latency is the service time seen by the client.
- **open loop**: requests are *scheduled* at Poisson times with mean ``rate`` per second, whether or not earlier
  ones are done, as independent users would send them. Latency counts from the scheduled time, not from the
  moment the sender got round to sending (coordinated omission corrected): a sender held back by a stalled
  server, or by ``max_in_flight``, does not hide the wait. The sender's lag is recorded too. A point whose
  server falls behind the offered rate, or fails requests, is marked unstable (overloaded).

Latency percentiles come from HdrHistogram (``tritonrec.measure.latency``) and include failed requests at their
time to failure; failures are also counted by kind.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
import numpy as np
import numpy.typing as npt
from tritonclient.grpc import service_pb2, service_pb2_grpc

from tritonrec.client.channel import open_stub
from tritonrec.client.core import as_dict, rpc_error
from tritonrec.client.options import ClientOptions
from tritonrec.client.request import ModelLimits, prepare_user
from tritonrec.client.wire import infer_request
from tritonrec.errors import ConfigError
from tritonrec.measure.cpu import CpuMark, CpuMeter
from tritonrec.measure.latency import summarize
from tritonrec.measure.prometheus import metrics_delta, scrape

__all__ = [
    "LoadMode",
    "PointSettings",
    "PreparedRequest",
    "Request",
    "measure_point",
    "prepare_requests",
    "server_breakdown",
]

IntArray = npt.NDArray[np.int64]
OVERLOAD_SERVED_SHARE = 0.95  # open loop: served below this share of the offered rate = overloaded
OVERLOAD_ERROR_RATE = 0.01  # any point: more failures than this share = not a stable measurement


class LoadMode(enum.StrEnum):
    """How requests are paced."""

    CLOSED = "closed"  # fixed concurrency
    OPEN = "open"  # Poisson arrivals at a fixed mean rate


@dataclass(frozen=True, slots=True, kw_only=True)
class PointSettings:
    """Warm-up, window length, the stability rule and the open loop's in-flight cap of one measurement point.

    Attributes:
        warmup_s: load before the first window (not reported).
        window_s: length of one window.
        stable_windows: windows that must agree for a stable point (and that the point reports).
        max_windows: windows before giving up on stability.
        stability_pct: how far (in % of their mean) the windows' throughput and p50 may spread.
        timeout_s: deadline of one request.
        max_in_flight: open loop: requests in flight at most; past it the sender waits (and its lag is counted
            in the latency, which runs from the scheduled time).
    """

    warmup_s: float = 3.0
    window_s: float = 3.0
    stable_windows: int = 3
    max_windows: int = 8
    stability_pct: float = 15.0
    timeout_s: float = 10.0
    max_in_flight: int = 1024

    def __post_init__(self) -> None:
        if self.warmup_s < 0 or self.window_s <= 0 or self.timeout_s <= 0:
            raise ConfigError("warmup_s must be >= 0, window_s and timeout_s > 0")
        if not 1 <= self.stable_windows <= self.max_windows:
            raise ConfigError(f"need 1 <= stable_windows ({self.stable_windows}) <= max_windows ({self.max_windows})")
        if self.max_in_flight < 1 or self.stability_pct <= 0:
            raise ConfigError("max_in_flight must be >= 1 and stability_pct > 0")


class Request(Protocol):
    """What the generator sends: a prebuilt request.

    The bundled model's :class:`PreparedRequest`, or a spec's :class:`~tritonrec.measure.spec_traffic.FeatureRequest`.
    """

    @property
    def n_candidates(self) -> int:
        """Candidates it ranks."""
        ...

    def for_model(self, model: str) -> service_pb2.ModelInferRequest:
        """Its wire form addressed to ``model``."""
        ...


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    """One request's tensors and its wire form for ``model``, built once and sent again and again."""

    history: IntArray
    candidates: IntArray
    model: str
    message: service_pb2.ModelInferRequest

    def for_model(self, model: str) -> service_pb2.ModelInferRequest:
        """The wire form addressed to ``model`` (the prebuilt one when it is the same model)."""
        if model == self.model:
            return self.message
        return infer_request(model, "", self.history[None, :], self.candidates[None, :])

    @property
    def n_candidates(self) -> int:
        """Candidates ranked by this request."""
        return int(self.candidates.size)


def prepare_requests(
    pairs: list[tuple[IntArray, IntArray]], limits: ModelLimits, model: str = ""
) -> list[PreparedRequest]:
    """Shape users as the ranking client does (padding, most recent L items) and build their wire form."""
    out = []
    for history, candidates in pairs:
        h, c = prepare_user(history, candidates, limits)
        out.append(PreparedRequest(h[0], c, model, infer_request(model, "", h, c[None, :])))
    return out


class _Recorder:
    """Completion records of one run, appended from gRPC threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.scheduled: list[float] = []
        self.sent: list[float] = []
        self.done: list[float] = []
        self.candidates: list[int] = []
        self.errors: dict[int, str] = {}  # completion index -> error kind
        self.first_errors: dict[str, str] = {}
        self.outstanding = 0

    def add(self, scheduled: float, sent: float, n: int, error: grpc.RpcError | None) -> None:
        now = time.perf_counter()
        with self.lock:
            self.outstanding -= 1
            if error is not None:
                failure = rpc_error(error, "infer")
                kind = type(failure).__name__
                self.errors[len(self.done)] = kind
                self.first_errors.setdefault(kind, str(failure)[:300])
            self.scheduled.append(scheduled)
            self.sent.append(sent)
            self.done.append(now)
            self.candidates.append(n)


class _Sender:
    """Sends ``requests`` in a loop at ``level`` until stopped (run in its own thread)."""

    def __init__(
        self, stub: service_pb2_grpc.GRPCInferenceServiceStub, model: str, mode: LoadMode, level: float, seed: int
    ) -> None:
        self.stub, self.model, self.mode, self.level = stub, model, mode, level
        self.rng = np.random.default_rng(seed)
        self.recorder, self.stop = _Recorder(), threading.Event()

    def run(self, requests: Sequence[Request], settings: PointSettings) -> None:
        messages = [r.for_model(self.model) for r in requests]
        slots = int(self.level) if self.mode is LoadMode.CLOSED else settings.max_in_flight
        window = threading.BoundedSemaphore(slots)
        next_at = time.perf_counter()
        i = 0
        while not self.stop.is_set():
            if self.mode is LoadMode.OPEN:
                next_at += float(self.rng.exponential(1.0 / self.level))
                self.stop.wait(max(next_at - time.perf_counter(), 0.0))
            while not window.acquire(timeout=0.1):
                if self.stop.is_set():
                    return
            sent = time.perf_counter()
            scheduled = next_at if self.mode is LoadMode.OPEN else sent
            k = i % len(requests)
            i += 1
            with self.recorder.lock:
                self.recorder.outstanding += 1
            call = self.stub.ModelInfer.future(messages[k], timeout=settings.timeout_s)

            def done(
                future: grpc.Future, s: float = scheduled, t: float = sent, n: int = requests[k].n_candidates
            ) -> None:
                error = future.exception()
                self.recorder.add(s, t, n, error if isinstance(error, grpc.RpcError) else None)
                window.release()

            call.add_done_callback(done)


def _window_stats(recorder: _Recorder, lo: float, hi: float, mode: LoadMode, level: float) -> dict[str, Any]:
    """Throughput, latency (from the scheduled time) and failures of the completions in ``[lo, hi)``."""
    with recorder.lock:
        done = np.asarray(recorder.done)
        scheduled = np.asarray(recorder.scheduled)
        sent = np.asarray(recorder.sent)
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
    stats: dict[str, Any] = {
        "seconds": round(seconds, 3),
        "requests": n_window,
        "ok": n_ok,
        "errors": n_window - n_ok,
        "error_kinds": kinds,
        "error_rate": round((n_window - n_ok) / n_window, 4) if n_window else 0.0,
        "requests_per_second": round(n_ok / seconds, 1),
        "candidates_per_second": round(float(cand[ok].sum()) / seconds, 1) if n_ok else 0.0,
        "latency_ms": summarize(done[in_window] - scheduled[in_window]),
    }
    if mode is LoadMode.OPEN:
        stats["offered_per_second"] = level
        stats["latency_from_send_ms"] = summarize(done[in_window] - sent[in_window])
        lag_ms = (sent[in_window] - scheduled[in_window]) * 1e3
        stats["sender_lag_ms"] = {
            "p99": round(float(np.percentile(lag_ms, 99)), 3) if lag_ms.size else None,
            "max": round(float(lag_ms.max()), 3) if lag_ms.size else None,
        }
    return stats


def _stable(windows: list[dict[str, Any]], settings: PointSettings) -> bool:
    last = windows[-settings.stable_windows :]
    if len(last) < settings.stable_windows:
        return False
    for values in ([w["requests_per_second"] for w in last], [w["latency_ms"]["p50"] or 0.0 for w in last]):
        mean = float(np.mean(values))
        if mean <= 0 or max(abs(v - mean) for v in values) > mean * settings.stability_pct / 100:
            return False
    return True


def _overload(point: dict[str, Any], mode: LoadMode, level: float) -> str | None:
    """Why a point is not a valid measurement of the server at that load, or None."""
    if point["error_rate"] > OVERLOAD_ERROR_RATE:
        return f"{point['error_rate']:.1%} of requests failed ({', '.join(point['error_kinds'])})"
    completed = point["requests"] / point["seconds"] if point["seconds"] else 0.0
    if mode is LoadMode.OPEN and completed < OVERLOAD_SERVED_SHARE * level:
        return f"served {completed:,.1f} of {level:g} req/s offered: the server (or the generator) fell behind"
    return None


def _inference_stats(stub: service_pb2_grpc.GRPCInferenceServiceStub, model: str) -> dict[str, Any]:
    return as_dict(stub.ModelStatistics(service_pb2.ModelStatisticsRequest(name=model), timeout=30))


def _totals(stats: dict[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {"executions": 0, "inferences": 0, "success": 0}
    for entry in stats.get("model_stats", []):
        out["executions"] += int(entry.get("execution_count", 0))
        out["inferences"] += int(entry.get("inference_count", 0))
        infer = entry.get("inference_stats", {})
        out["success"] += int(infer.get("success", {}).get("count", 0))
        for part in ("queue", "compute_input", "compute_infer", "compute_output"):
            out[f"{part}_ns"] = out.get(f"{part}_ns", 0) + int(infer.get(part, {}).get("ns", 0))
        for batch in entry.get("batch_stats", []):
            key = f"batch_{int(batch['batch_size'])}"
            out[key] = out.get(key, 0) + int(batch.get("compute_infer", {}).get("count", 0))
    return out


def server_breakdown(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Triton's statistics-API view of the requests completed between two statistics answers.

    Returns per-request averages in ms of ``queue``, ``compute_input``, ``compute_infer``, ``compute_output``,
    executions, inferences (users), the mean batch the dynamic batcher formed (users per execution) and
    ``batch_sizes``: executions per batch size (what ``tritonrec bench efficiency`` replays in process).
    """
    a, b = _totals(before), _totals(after)
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
        batch_sizes={k.split("_", 1)[1]: v for k, v in sorted(delta.items()) if k.startswith("batch_") and v > 0},
    )
    return out


def measure_point(
    url: str,
    model: str,
    requests: Sequence[Request],
    mode: LoadMode,
    level: float,
    settings: PointSettings,
    *,
    seed: int = 0,
    metrics_url: str | None = None,
    cpu: CpuMeter | None = None,
) -> dict[str, Any]:
    """Drive ``model`` at ``level`` (concurrency, or requests/s in open loop) and return the point's figures.

    Args:
        url: Triton's gRPC endpoint.
        model: the model to load.
        requests: what to send, cycled in order.
        mode: closed or open loop.
        level: concurrency (closed) or mean requests per second (open).
        settings: warm-up, windows, stability, in-flight cap.
        seed: seeds the open loop's arrival times.
        metrics_url: Triton's Prometheus endpoint, scraped at each window edge (None: not scraped).
        cpu: measures this process's and the server's CPU over the measured windows (None: not measured).
    """
    if level <= 0:
        raise ConfigError(f"{mode.value} loop level must be > 0, got {level}")
    channel, stub = open_stub(url, ClientOptions(retry_budget=None))
    sender = _Sender(stub, model, mode, level, seed)
    sender_error: list[BaseException] = []

    def send() -> None:
        try:
            sender.run(requests, settings)
        except BaseException as e:  # surfaced to the caller below
            sender_error.append(e)
            sender.stop.set()

    thread = threading.Thread(target=send, name=f"tritonrec-{mode.value}-{level:g}", daemon=True)
    started = time.perf_counter()
    thread.start()
    sender.stop.wait(settings.warmup_s)
    windows: list[dict[str, Any]] = []
    edges = [time.perf_counter()]
    snapshots = [_inference_stats(stub, model)]
    scraped = [scrape(metrics_url, model) if metrics_url else None]
    cpu_marks = [_cpu_mark(cpu)]
    while len(windows) < settings.max_windows and not sender.stop.is_set():
        sender.stop.wait(max(edges[-1] + settings.window_s - time.perf_counter(), 0.0))
        edges.append(time.perf_counter())
        snapshots.append(_inference_stats(stub, model))
        scraped.append(scrape(metrics_url, model) if metrics_url else None)
        cpu_marks.append(_cpu_mark(cpu))
        windows.append(_window_stats(sender.recorder, edges[-2], edges[-1], mode, level))
        if _stable(windows, settings):
            break
    sender.stop.set()
    thread.join(timeout=5)
    drain_until = time.perf_counter() + settings.timeout_s + 1
    while sender.recorder.outstanding > 0 and time.perf_counter() < drain_until:
        time.sleep(0.02)
    channel.close()
    if sender_error:
        raise sender_error[0]
    k = min(settings.stable_windows, len(windows))
    point = _window_stats(sender.recorder, edges[-1 - k], edges[-1], mode, level)
    stable = _stable(windows, settings)
    overload = _overload(point, mode, level)
    point.update(
        mode=mode.value,
        level=level,
        stable=stable and overload is None,
        unstable_reason=overload or (None if stable else f"windows did not agree within {settings.stability_pct:g}%"),
        windows=len(windows),
        measured_windows=k,
        window_requests_per_second=[w["requests_per_second"] for w in windows],
        first_errors=sender.recorder.first_errors,
        server=server_breakdown(snapshots[-1 - k], snapshots[-1]),
        server_metrics=metrics_delta(scraped[-1 - k], scraped[-1]),
        cpu=_cpu_between(cpu_marks[-1 - k], cpu_marks[-1], point["requests"]),
        wall_s=round(time.perf_counter() - started, 2),
        mean_candidates=round(float(np.mean([r.n_candidates for r in requests])), 1),
    )
    return point


def _cpu_mark(cpu: CpuMeter | None) -> CpuMark | None:
    return None if cpu is None else cpu.mark()


def _delta(after: float | None, before: float | None) -> float | None:
    return None if after is None or before is None else after - before


def _cpu_between(before: CpuMark | None, after: CpuMark | None, requests: int) -> dict[str, float | None] | None:
    """CPU over the measured windows: seconds, and ms per request of the generator, the server and its two parts.

    ``tritonserver_ms_per_request`` is tritonserver's own process (gRPC, the batcher, the backend's side of the
    hand-off); ``stubs_ms_per_request`` its children (the Python-backend stubs running ``model.py``).
    """
    if before is None or after is None:
        return None
    generator = after.generator_s - before.generator_s
    server = _delta(after.server_s, before.server_s)
    frontend = _delta(after.frontend_s, before.frontend_s)
    per_1k = 1000.0 / requests if requests else 0.0

    def per_request(seconds: float | None) -> float | None:
        return round(seconds * per_1k, 3) if requests and seconds is not None else None

    return {
        "generator_s": round(generator, 3),
        "server_s": None if server is None else round(server, 3),
        "wall_s": round(after.at_s - before.at_s, 3),
        "generator_ms_per_request": per_request(generator),
        "server_ms_per_request": per_request(server),
        "tritonserver_ms_per_request": per_request(frontend),
        "stubs_ms_per_request": per_request(_delta(server, frontend)),
    }
