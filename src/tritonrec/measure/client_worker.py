"""One client's run in its own process: its throughput, latency, CPU seconds and (optionally) a profile.

``tritonrec bench client`` starts this file as a script (``python client_worker.py ARGS``) once per tool,
concurrency and repeat, so each client's CPU is its own process's, nothing else's. It imports only
``tritonrec.client``'s public API (``RankingClient(url, model=...)``, ``AsyncRankingClient``, ``rank``), so
with ``PYTHONPATH`` pointing at another source tree it measures that tree's client: the "before" of a change.

``--tool floor`` is no client: a bare ``grpc.aio`` call per request on requests serialized before the clock
starts, no checks, deadlines or retries. It is the floor of any asyncio Python client on grpcio, so the gap
between it and ``async`` is the client's own cost and the gap between it and perf_analyzer is grpcio's.

Output: one JSON object on stdout (requests, seconds, requests_per_second, p50_ms, p99_ms, cpu_s, and with
``--profile`` the share of CPU time per part of the client).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import time
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

# Where a client spends its time, by the function or module a profile entry belongs to (first match wins).
PARTS = (
    ("response parsing", ("scores_of", "as_numpy", "InferResult", "frombuffer")),  # before wire.py: scores_of is there
    (
        "request building (numpy to wire)",
        ("wire.py", "infer_inputs", "InferInput", "set_data_from_numpy", "_get_inference_request"),
    ),
    (
        "input checks and numpy helpers",
        ("prepare_user", "_ids", "candidate_chunks", "request.py", "numeric.py", "numerictypes.py", "fromnumeric.py"),
    ),
    ("top-K", ("top_k",)),
    ("retries, budget, deadlines", ("_retrying", "_retry_wait", "budget.py", "_deadline", "monotonic")),
    (
        "gRPC call and protobuf",
        ("grpc", "_rpc", "_call", "cygrpc", "upb", "_message", "protobuf", "SerializeToString", "FromString"),
    ),
    (
        "event loop, threads, contexts",
        (
            "asyncio",
            "events.py",
            "selector",
            "threading",
            "thread.py",
            "queue.py",
            "futures",
            "_contextvars",
            "contextlib",
            "_weakrefset",
        ),
    ),  # fmt: skip
    ("client code (rank, rank_many)", ("ranking.py", "aio.py", "core.py")),
    ("the benchmark's own loop", ("client_worker.py",)),
)


def _users(path: str) -> list[tuple[Any, Any]]:
    data = np.load(path)
    return [(data["history"][i], data["candidates"][i]) for i in range(len(data["candidates"]))]


def _cpu_s() -> float:
    import os

    times = os.times()
    return float(times.user + times.system)


IDLE = ("acquire", "wait", "poll", "select", "sleep", "epoll", "_run_once")  # waiting, not working


def _sync(
    url: str,
    model: str,
    users: list[tuple[Any, Any]],
    n: int,
    concurrency: int,
    profiles: list[cProfile.Profile] | None,
) -> list[float]:
    import threading

    from tritonrec.client import RankingClient

    local = threading.local()
    lock = threading.Lock()
    with RankingClient(url, model=model) as client:
        client.rank(*users[0])  # connect, read the limits

        def one(i: int) -> float:
            if profiles is not None and not hasattr(local, "profile"):  # one profiler per worker thread
                local.profile = cProfile.Profile(time.thread_time)
                with lock:
                    profiles.append(local.profile)
            profile = getattr(local, "profile", None)
            started = time.perf_counter()
            if profile is not None:
                profile.enable()
            client.rank(*users[i % len(users)])
            if profile is not None:
                profile.disable()
            return time.perf_counter() - started

        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            return list(pool.map(one, range(n)))


def _async(
    url: str,
    model: str,
    users: list[tuple[Any, Any]],
    n: int,
    concurrency: int,
    profiles: list[cProfile.Profile] | None,
) -> list[float]:
    from tritonrec.client import AsyncRankingClient

    async def run() -> list[float]:
        async with AsyncRankingClient(url, model=model) as client:
            await client.rank(*users[0])
            return await _closed_loop(lambda i: client.rank(*users[i % len(users)]), n, concurrency)

    return _in_loop(run, profiles)


def _floor(
    url: str,
    model: str,
    users: list[tuple[Any, Any]],
    n: int,
    concurrency: int,
    profiles: list[cProfile.Profile] | None,
) -> list[float]:
    import grpc.aio
    from tritonclient.grpc import service_pb2

    from tritonrec.client.wire import infer_request, scores_of

    # the wire bytes of each user's request, as the client would send them (history padding dropped)
    wire = [infer_request(model, "", h[h != 0][None, :], c[None, :]).SerializeToString() for h, c in users]

    async def run() -> list[float]:
        async with grpc.aio.insecure_channel(url) as channel:
            infer = channel.unary_unary(
                "/inference.GRPCInferenceService/ModelInfer",
                request_serializer=None,  # already bytes
                response_deserializer=service_pb2.ModelInferResponse.FromString,
            )

            async def one(i: int) -> None:
                scores_of(await infer(wire[i % len(wire)], timeout=60), model)

            await one(0)
            return await _closed_loop(one, n, concurrency)

    return _in_loop(run, profiles)


async def _closed_loop(send: Callable[[int], Awaitable[Any]], n: int, concurrency: int) -> list[float]:
    """``send(i)`` for i in 0..n-1, ``concurrency`` at a time (each worker waits for its answer); the latencies."""
    latencies: list[float] = []

    async def worker(k: int) -> None:
        for i in range(k, n, concurrency):
            started = time.perf_counter()
            await send(i)
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return latencies


def _in_loop(
    run: Callable[[], Coroutine[Any, Any, list[float]]], profiles: list[cProfile.Profile] | None
) -> list[float]:
    """``asyncio.run(run())``, under a profiler (one, for the loop's thread) when ``profiles`` is a list."""
    if profiles is None:
        return asyncio.run(run())
    profile = cProfile.Profile(time.thread_time)
    profiles.append(profile)
    profile.enable()
    try:
        return asyncio.run(run())
    finally:
        profile.disable()


def _profile_parts(profiles: list[cProfile.Profile]) -> dict[str, float]:
    stats = pstats.Stats(profiles[0])
    for more in profiles[1:]:
        stats.add(more)
    totals: dict[str, float] = {name: 0.0 for name, _ in PARTS}
    totals["other"] = 0.0
    for (filename, _, function), row in stats.stats.items():  # type: ignore[attr-defined]
        own = row[2]  # tottime: time in the function itself
        where = f"{filename}:{function}"
        if any(word in function for word in IDLE):
            continue
        part = next((name for name, keys in PARTS if any(k in where for k in keys)), "other")
        totals[part] += own
    whole = sum(totals.values()) or 1.0
    return {name: round(value / whole, 4) for name, value in totals.items()}


def main() -> None:
    """Run one client and print its figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--tool", choices=("sync", "async", "floor"), required=True)
    parser.add_argument("--users", required=True, help=".npz with history [U, L] and candidates [U, N]")
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    users = _users(args.users)
    run = {"sync": _sync, "async": _async, "floor": _floor}[args.tool]
    profiles: list[cProfile.Profile] | None = [] if args.profile else None
    cpu, started = _cpu_s(), time.perf_counter()
    latencies = run(args.url, args.model, users, args.requests, args.concurrency, profiles)
    seconds, cpu_s = time.perf_counter() - started, _cpu_s() - cpu
    ms = np.asarray(latencies) * 1e3
    out: dict[str, Any] = {
        "requests": len(latencies),
        "seconds": round(seconds, 3),
        "requests_per_second": round(len(latencies) / seconds, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "cpu_s": round(cpu_s, 3),
        "cpu_ms_per_request": round(cpu_s * 1e3 / max(len(latencies), 1), 4),
    }
    if profiles:
        out["profile"] = _profile_parts(profiles)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
