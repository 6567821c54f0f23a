"""Client throughput: the sync and asyncio RankingClients side by side with perf_analyzer, one server, one run.

Every tool sends the same requests (one user: ``history [1, L]``, ``candidates [1, N]``, real item ids) to the
same ``ranker_cpu`` model on the bundled tritonserver, at each concurrency in turn. perf_analyzer (NVIDIA's C++
load generator) is the reference for what the server can take; the ratio of a client to it shows what the
Python client costs. Client and server share this machine's cores, so the clients' own CPU use is part of it.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tritonrec.bench.endpoint import local_endpoint
from tritonrec.bench.perf_analyzer import run_perf_analyzer
from tritonrec.bench.report import Progress, Report, markdown_header, new_record, quiet, write_report
from tritonrec.client import AsyncRankingClient, RankingClient
from tritonrec.contract import DEFAULT_MODEL
from tritonrec.export.manifest import read_export_spec
from tritonrec.repository import VARIANTS

__all__ = ["ClientBenchSettings", "run_client_bench", "write_markdown"]

IntArray = npt.NDArray[np.int64]
MODEL = DEFAULT_MODEL
TOOLS = ("sync_client", "async_client", "perf_analyzer")


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientBenchSettings:
    """What to measure: ``requests`` users per tool and concurrency, N candidates, distinct ``users`` cycled.

    ``measurement_ms`` and ``stability_percentage`` are perf_analyzer's window length and the spread it accepts
    between consecutive windows before it reports.
    """

    concurrencies: tuple[int, ...] = (1, 8, 32)
    requests: int = 1500
    n_candidates: int = 200
    users: int = 64
    measurement_ms: int = 4000
    stability_percentage: int = 25
    seed: int = 0


def _summary(latencies_s: list[float], seconds: float) -> dict[str, float]:
    ms = np.asarray(latencies_s) * 1e3
    return {
        "requests_per_second": round(len(ms) / seconds, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
    }


def _sync(url: str, users: list[tuple[IntArray, IntArray]], n: int, concurrency: int) -> dict[str, float]:
    with RankingClient(url, model=MODEL) as client:
        client.rank(*users[0])  # connect, read the limits

        def one(i: int) -> float:
            started = time.perf_counter()
            client.rank(*users[i % len(users)])
            return time.perf_counter() - started

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            latencies = list(pool.map(one, range(n)))
        return _summary(latencies, time.perf_counter() - started)


def _async(url: str, users: list[tuple[IntArray, IntArray]], n: int, concurrency: int) -> dict[str, float]:
    async def run() -> dict[str, float]:
        async with AsyncRankingClient(url, model=MODEL) as client:
            await client.rank(*users[0])
            latencies: list[float] = []

            async def worker(k: int) -> None:
                for i in range(k, n, concurrency):
                    started = time.perf_counter()
                    await client.rank(*users[i % len(users)])
                    latencies.append(time.perf_counter() - started)

            started = time.perf_counter()
            await asyncio.gather(*(worker(k) for k in range(concurrency)))
            return _summary(latencies, time.perf_counter() - started)

    return asyncio.run(run())


def _perf_analyzer(
    binary: Path, url: str, users: list[tuple[IntArray, IntArray]], concurrency: int, settings: ClientBenchSettings
) -> dict[str, Any]:
    result = run_perf_analyzer(
        binary,
        url,
        MODEL,
        users,
        concurrency=concurrency,
        measurement_ms=settings.measurement_ms,
        stability_pct=settings.stability_percentage,
    )
    if "error" in result:
        return result
    server = result["server"]
    return {
        "requests_per_second": result["requests_per_second"],
        "p50_ms": result["latency_ms"]["p50"],
        "p99_ms": result["latency_ms"]["p99"],
        "server_queue_ms": server["queue_ms"],
        "server_compute_ms": round(
            server["compute_input_ms"] + server["compute_infer_ms"] + server["compute_output_ms"], 2
        ),
        "command": result["command"],
    }


def run_client_bench(
    export_dir: Path,
    out_dir: Path,
    settings: ClientBenchSettings,
    *,
    perf_analyzer: Path | None,
    command: str,
    progress: Progress = quiet,
) -> Report:
    """Measure the clients (and perf_analyzer when given) at each concurrency; write client.json + client.md."""
    spec = read_export_spec(export_dir / "model.onnx")
    rng = np.random.default_rng(settings.seed)
    users = [
        (
            rng.integers(1, spec.n_items + 1, spec.history_len, dtype=np.int64),
            rng.integers(1, spec.n_items + 1, settings.n_candidates, dtype=np.int64),
        )
        for _ in range(settings.users)
    ]
    results: dict[str, dict[str, Any]] = {tool: {} for tool in TOOLS}
    with local_endpoint(export_dir, [VARIANTS[MODEL]]) as server:
        for c in settings.concurrencies:
            progress(f"concurrency {c}: sync client ...")
            results["sync_client"][str(c)] = _sync(server.grpc_url, users, settings.requests, c)
            progress(f"concurrency {c}: asyncio client ...")
            results["async_client"][str(c)] = _async(server.grpc_url, users, settings.requests, c)
            if perf_analyzer is not None:
                progress(f"concurrency {c}: perf_analyzer ...")
                results["perf_analyzer"][str(c)] = _perf_analyzer(perf_analyzer, server.grpc_url, users, c, settings)
    report = {
        **new_record(command, perf_analyzer=perf_analyzer is not None),
        "settings": asdict(settings),
        "model": {"name": MODEL, "export_dir": str(export_dir), "feature_spec": spec.to_dict()},
        "results": results,
    }
    return write_report(out_dir, "client", report, write_markdown(report))


def write_markdown(report: dict[str, Any]) -> str:
    """Render the client benchmark as a Markdown table (every figure from ``report``)."""
    s = report["settings"]
    lines = [
        *markdown_header(
            f"Client throughput: {MODEL}, one user per request, N={s['n_candidates']} candidates",
            report,
        ),
        "| concurrency | tool | requests/s | p50 ms | p99 ms | vs perf_analyzer | server queue / compute ms (avg) |",
        "|---|---|---|---|---|---|---|",
    ]
    results = report["results"]
    for c in (str(c) for c in s["concurrencies"]):
        reference = results["perf_analyzer"].get(c, {}).get("requests_per_second")
        for tool in TOOLS:
            r = results[tool].get(c)
            if r is None:
                continue
            if "error" in r:
                lines.append(f"| {c} | {tool} | failed: {r['error'][-120:]!r} | | | | |")
                continue
            ratio = f"{r['requests_per_second'] / reference:.0%}" if reference else "-"
            server = f"{r['server_queue_ms']} / {r['server_compute_ms']}" if "server_queue_ms" in r else ""
            lines.append(
                f"| {c} | {tool} | {r['requests_per_second']:,} | {r['p50_ms']} | {r['p99_ms']} | {ratio} | {server} |"
            )
    return "\n".join(lines) + "\n"
