"""Faults caused for real on a local tritonserver while traffic runs, and what the clients saw.

Each function drives the real server at 127.0.0.1 with bounded traffic (threads of ``RankingClient``, or the
locust suite), causes one fault, and returns what happened to every request it sent:

- :func:`overload`: more load than a bounded queue takes; attempts per call with and without a retry budget;
- :func:`kill9_during_locust`: ``kill -9`` of tritonserver (and its stubs) mid-run of a locust scenario, then a
  restart: every request must end as a success or an explicit error; the time until requests succeed again;
- :func:`stub_death`: the Python stub processes of a model killed under load, readiness still 200, found and
  cured by :class:`~tritonrec.serving.health.Watchdog` (a reload);
- :func:`corrupt_model_load`: a model whose ONNX file is garbage is loaded beside one that serves;
- :func:`rollout`: version 2 loaded under load, then rolled back to version 1.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import numpy.typing as npt
from tritonclient.grpc import service_pb2

from tritonrec.client import ClientOptions, RetryBudget, RetryPolicy
from tritonrec.client.channel import open_stub
from tritonrec.client.core import rpc_error
from tritonrec.errors import ServerError
from tritonrec.measure.background_traffic import BackgroundTraffic
from tritonrec.measure.latency import summarize
from tritonrec.serving.health import Watchdog, probe_model
from tritonrec.serving.server import LocalTriton

__all__ = ["corrupt_model_load", "kill9_during_locust", "overload", "rollout", "stub_death"]

IntArray = npt.NDArray[np.int64]


def overload(
    url: str, model: str, users: list[tuple[IntArray, IntArray]], *, threads: int = 32, duration_s: float = 10.0
) -> dict[str, Any]:
    """More closed-loop callers than a bounded queue takes, once without and once with the client's retry budget.

    Every caller retries overloads per the same policy (5 attempts); the budget is what differs. Reports calls,
    outcomes, attempts per call, and latency of the calls that succeeded.
    """
    policy = RetryPolicy(max_attempts=5, initial_backoff_s=0.01, max_backoff_s=0.1)
    out: dict[str, Any] = {"threads": threads, "duration_s": duration_s, "policy": {"max_attempts": 5}}
    for name, budget in (("no_budget", None), ("retry_budget", RetryBudget())):
        options = ClientOptions(timeout_s=5.0, retry=policy, retry_budget=budget)
        traffic = BackgroundTraffic(url, model, users, threads=threads, options=options)
        with traffic.running():
            time.sleep(duration_s)
        calls = len(traffic.outcomes)
        ok = [o.ended - o.started for o in traffic.outcomes if o.kind == "ok"]
        out[name] = {
            "calls": calls,
            "outcomes": traffic.tally(),
            "attempts": traffic.client.requests_sent,
            "attempts_per_call": round(traffic.client.requests_sent / max(calls, 1), 3),
            "retries": traffic.client.retries,
            "retries_refused_by_budget": traffic.client.retries_refused,
            "accepted_latency_ms": summarize(ok),
        }
    return out


def _http_ready(server: LocalTriton, model: str) -> bool:
    try:
        with urllib.request.urlopen(f"{server.http_url}/v2/models/{model}/ready", timeout=2) as r:  # noqa: S310
            return bool(r.status == 200)
    except OSError:
        return False


def _wait_until_answering(url: str, model: str, deadline_s: float = 120.0) -> float | None:
    """Seconds until ``model`` answers a real inference, or None if it never did."""
    started = time.monotonic()
    channel, stub = open_stub(url, ClientOptions())
    try:
        while time.monotonic() - started < deadline_s:
            if probe_model(stub, model, timeout_s=1.0) is None:
                return time.monotonic() - started
            time.sleep(0.02)
        return None
    finally:
        channel.close()


def _restart(server: LocalTriton, attempts: int = 3) -> list[str]:
    """Start ``server`` again as a supervisor would, up to ``attempts`` times; the errors of the failed starts."""
    failures: list[str] = []
    for _ in range(attempts):
        try:
            server.start()
            return failures
        except ServerError as e:
            failures.append(str(e)[-600:])
    raise ServerError(f"tritonserver did not restart in {attempts} attempts: {failures[-1]}")


def kill9_during_locust(
    server: LocalTriton, scenario: Path, out_dir: Path, *, kill_at_s: float = 6.0
) -> dict[str, Any]:
    """Run a locust scenario against ``server``; ``kill -9`` the server at ``kill_at_s`` and start it again.

    Returns the requests the locust users started and saw end (as a success or an explicit error), those
    abandoned because locust stopped a user at the end of the run with its request in flight (the rest is
    unaccounted), what locust's statistics counted (it stops counting at the end of the run, a
    request still in flight then ends after it), the failures by message, the restart time and the time from
    the kill until the model answered again, and the errors of restarts that crashed (Triton 2.51's Python
    backend can abort with ``boost::interprocess::lock_exception`` when loaded under traffic, a known upstream
    bug, triton-inference-server/server#8882: the function starts it again, as a supervisor would).
    """
    from tritonrec.measure.locust_run import run_locust

    model = server.served_models[0]
    result: dict[str, Any] = {}

    def locust() -> None:
        result["locust"] = dict(run_locust(server.grpc_url, scenario, out_dir, command="reliability: kill -9").record)

    thread = threading.Thread(target=locust, daemon=True)
    thread.start()
    time.sleep(kill_at_s)
    killed = time.monotonic()
    server.kill()
    crashes = _restart(server)
    restarted_s = time.monotonic() - killed
    answering_s = _wait_until_answering(server.grpc_url, model)
    thread.join(timeout=600)
    run = result.get("locust", {})
    issued, ended = run.get("issued"), run.get("ended")
    return {
        "kill_at_s": kill_at_s,
        "restart_s": round(restarted_s, 2),
        "recovery_s": None if answering_s is None else round(restarted_s + answering_s, 2),
        "requests_issued": issued,
        "requests_ended": ended,
        "failed_explicitly": run.get("failed_explicitly"),
        "abandoned_at_stop": run.get("abandoned_at_stop"),
        "unaccounted": None if issued is None or ended is None else issued - ended - run.get("abandoned_at_stop", 0),
        "locust_requests": run.get("requests"),
        "locust_failures": run.get("failures"),
        "failure_messages": run.get("failure_messages", {}),
        "exit_code": run.get("exit_code"),
        "failed_restarts": crashes,
    }


def stub_death(
    server: LocalTriton, model: str, users: list[tuple[IntArray, IntArray]], *, probe_interval_s: float = 0.5
) -> dict[str, Any]:
    """Kill the model's Python stubs under load while a :class:`Watchdog` probes; measure outage and recovery."""
    watchdog = Watchdog(server.grpc_url, [model], interval_s=probe_interval_s, timeout_s=2.0).start()
    traffic = BackgroundTraffic(server.grpc_url, model, users, threads=4)
    try:
        with traffic.running():
            time.sleep(2.0)
            pids = server.stub_pids(model)
            killed = time.monotonic()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.5)
            ready_during_outage = _http_ready(server, model)
            deadline = time.monotonic() + 60
            while not watchdog.recoveries and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1.0)
    finally:
        watchdog.stop()
    first_failure = traffic.first(kind_ok=False, after=killed)
    recovered = traffic.first(kind_ok=True, after=first_failure) if first_failure else None
    return {
        "stubs_killed": len(pids),
        "model_ready_during_outage": ready_during_outage,
        "watchdog_probe_interval_s": probe_interval_s,
        "watchdog_reloads": [
            {"error": r.error[:200], "answering_after_reload_s": r.recovered_s} for r in watchdog.recoveries
        ],
        "detected_after_s": round(watchdog.recoveries[0].detected_at - killed, 2) if watchdog.recoveries else None,
        "recovered_after_s": round(recovered - killed, 2) if recovered else None,
        "outcomes_after_kill": traffic.tally(since=killed),
    }


def corrupt_model_load(
    server: LocalTriton, good: str, corrupt: str, users: list[tuple[IntArray, IntArray]]
) -> dict[str, Any]:
    """Load ``corrupt`` (its ONNX file is garbage) while ``good`` serves traffic: the error it gives, the traffic."""
    channel, stub = open_stub(server.grpc_url, ClientOptions())
    traffic = BackgroundTraffic(server.grpc_url, good, users, threads=2)
    try:
        with traffic.running():
            time.sleep(1.0)
            started = time.monotonic()
            try:
                stub.RepositoryModelLoad(service_pb2.RepositoryModelLoadRequest(model_name=corrupt), timeout=120)
                error = None
            except grpc.RpcError as e:
                error = str(rpc_error(e, f"load {corrupt}"))
            time.sleep(1.0)
    finally:
        channel.close()
    return {
        "load_error": error,
        "load_s": round(time.monotonic() - started - 1.0, 2),
        "good_model_outcomes": traffic.tally(),
        "good_model_ready_after": _http_ready(server, good),
    }


def rollout(server: LocalTriton, model: str, users: list[tuple[IntArray, IntArray]]) -> dict[str, Any]:
    """Load version 2 (a copy of version 1) under load, then remove it and load again (rollback to 1)."""
    folder = server.repository / model
    channel, stub = open_stub(server.grpc_url, ClientOptions())
    traffic = BackgroundTraffic(server.grpc_url, model, users, threads=4)
    steps: list[dict[str, Any]] = []

    def load(what: str) -> None:
        started = time.monotonic()
        stub.RepositoryModelLoad(service_pb2.RepositoryModelLoadRequest(model_name=model), timeout=300)
        versions = [
            v
            for v in ("1", "2")
            if stub.ModelReady(service_pb2.ModelReadyRequest(name=model, version=v), timeout=10).ready
        ]
        steps.append({"step": what, "load_s": round(time.monotonic() - started, 2), "ready_versions": versions})

    try:
        with traffic.running():
            time.sleep(1.0)
            shutil.copytree(folder / "1", folder / "2")
            load("roll out version 2")
            time.sleep(1.0)
            shutil.rmtree(folder / "2")
            load("roll back to version 1")
            time.sleep(1.0)
    finally:
        channel.close()
        shutil.rmtree(folder / "2", ignore_errors=True)
    return {
        "steps": steps,
        "outcomes": traffic.tally(),
        "failed": sum(v for k, v in traffic.tally().items() if k != "ok"),
    }
