"""``tritonrec bench efficiency``: what share of the model's own speed survives serving.

Serving efficiency = candidates/s served through Triton over gRPC (``ranker_cpu``, closed loop, the best of a few
concurrencies) / candidates/s of the same ONNX model run in process, by the same ONNX Runtime session the server
opens (``ranker_cpu_model.open_session``), on batches of the same size the dynamic batcher formed at that best
point (users per execution, from Triton's statistics), packed as the server packs them. Both are measured in one
run on one machine. What the ratio leaves out is the cost of serving: gRPC, (de)serialization, the Python
backend's shared-memory hop, queueing, and on a small machine the load generator's own CPU.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tritonrec.bench.endpoint import local_endpoint
from tritonrec.bench.loadgen import LoadMode, PointSettings, PreparedRequest, measure_point, prepare_requests
from tritonrec.bench.report import Progress, Report, markdown_header, new_record, quiet, write_report
from tritonrec.bench.traffic import CandidateCounts, TrafficSpec, load_user_pool
from tritonrec.client import RankingClient
from tritonrec.contract import CANDIDATES, DEFAULT_MODEL, HISTORY, SCORES
from tritonrec.repository import VARIANTS
from tritonrec.repository.ranker_cpu_model import open_session, pack_requests

__all__ = ["EfficiencySettings", "in_process_throughput", "run_efficiency_bench", "write_markdown"]

MODEL = DEFAULT_MODEL


@dataclass(frozen=True, slots=True, kw_only=True)
class EfficiencySettings:
    """N candidates per user, the concurrencies searched, distinct requests, in-process time per batch size."""

    n_candidates: int = 200
    concurrencies: tuple[int, ...] = (4, 8, 16, 32)
    requests: int = 1024
    in_process_s: float = 6.0
    point: PointSettings = field(default_factory=PointSettings)


def in_process_throughput(
    export_dir: Path, requests: list[PreparedRequest], batch_users: int, duration_s: float, history_len: int
) -> dict[str, Any]:
    """Candidates/s of the serving session run in process on packed batches of ``batch_users`` users."""
    session = open_session(export_dir / "model.onnx")
    batches: list[tuple[dict[str, Any], int]] = []
    for lo in range(0, len(requests) - batch_users + 1, batch_users):
        group = requests[lo : lo + batch_users]
        history, candidates = pack_requests([(r.history[None, :], r.candidates[None, :]) for r in group], history_len)
        batches.append(({HISTORY: history, CANDIDATES: candidates}, sum(r.n_candidates for r in group)))
    session.run([SCORES], batches[0][0])  # warm up
    runs, candidates_done, started = 0, 0, time.perf_counter()
    while time.perf_counter() - started < duration_s:
        k = runs % len(batches)
        session.run([SCORES], batches[k][0])
        candidates_done += batches[k][1]
        runs += 1
    elapsed = time.perf_counter() - started
    return {
        "batch_users": batch_users,
        "session_runs": runs,
        "elapsed_s": round(elapsed, 2),
        "candidates_per_second": round(candidates_done / elapsed, 1),
        "users_per_second": round(runs * batch_users / elapsed, 1),
    }


def run_efficiency_bench(
    export_dir: Path,
    out_dir: Path,
    settings: EfficiencySettings,
    *,
    command: str,
    url: str | None = None,
    progress: Progress = quiet,
) -> Report:
    """Measure Triton at each concurrency, then the session in process at the best point's batch size.

    Args:
        export_dir: the ONNX export the server serves (the in-process side runs its ``model.onnx``).
        out_dir: results folder.
        settings: what to measure.
        command: the command line, recorded.
        url: a running Triton serving that export as ``ranker_cpu``; None serves it on the bundled server here.
        progress: where to say what is being measured.
    """
    traffic = TrafficSpec(candidates=CandidateCounts.fixed(settings.n_candidates))
    with contextlib.ExitStack() as stack:
        target = url or stack.enter_context(local_endpoint(export_dir)).grpc_url
        with RankingClient(target, model=MODEL) as client:
            limits = client.limits()
            server_version = client.server_version()
        pool = load_user_pool(traffic, history_len=limits.max_history)
        requests = prepare_requests(pool.sample(settings.requests), limits)
        points = []
        for c in settings.concurrencies:
            progress(f"Triton, concurrency {c} ...")
            points.append(measure_point(target, MODEL, requests, LoadMode.CLOSED, c, settings.point))
    best = max(points, key=lambda p: p["candidates_per_second"])
    batch = max(1, round(best["server"]["mean_batch_users"] or 1))
    sizes = sorted({1, batch, VARIANTS[MODEL].batching.max_batch_size})
    in_process = {}
    for b in sizes:
        progress(f"in-process ONNX Runtime, {b} users per run ...")
        in_process[str(b)] = in_process_throughput(
            export_dir, requests, b, settings.in_process_s, history_len=limits.max_history
        )
    report = {
        **new_record(command, tritonserver=server_version),
        "url": url or "local (bundled tritonserver)",
        "settings": asdict(settings),
        "traffic": {"source": traffic.source.value, "n_candidates": settings.n_candidates},
        "triton": points,
        "best": {"concurrency": best["level"], "batch_users": batch},
        "in_process": in_process,
        "efficiency": round(best["candidates_per_second"] / in_process[str(batch)]["candidates_per_second"], 3),
    }
    return write_report(out_dir, "efficiency", report, write_markdown(report))


def write_markdown(report: dict[str, Any]) -> str:
    """Render the efficiency report (every figure from ``report``)."""
    n = report["traffic"]["n_candidates"]
    best = report["best"]
    lines = [
        *markdown_header(f"Serving efficiency: {MODEL}, N={n} candidates per user", report),
        "| concurrency | req/s | cand/s | p50 ms | p99 ms | users per execution | server queue / infer ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in report["triton"]:
        s = p["server"]
        lines.append(
            f"| {p['level']:g} | {p['requests_per_second']:,} | {p['candidates_per_second']:,.0f} "
            f"| {p['latency_ms']['p50']} | {p['latency_ms']['p99']} | {s['mean_batch_users']} "
            f"| {s['queue_ms']:.2f} / {s['compute_infer_ms']:.2f} |"
        )
    lines += ["", "| in process: users per session run | cand/s | session runs |", "|---|---|---|"]
    for b, r in report["in_process"].items():
        lines.append(f"| {b} | {r['candidates_per_second']:,.0f} | {r['session_runs']:,} |")
    best_point = next(p for p in report["triton"] if p["level"] == best["concurrency"])
    lines += [
        "",
        f"**Serving efficiency: {report['efficiency']:.2f}** = {best_point['candidates_per_second']:,.0f} cand/s "
        f"through Triton at concurrency {best['concurrency']:g} / "
        f"{report['in_process'][str(best['batch_users'])]['candidates_per_second']:,.0f} cand/s in process at "
        f"{best['batch_users']} users per run (the batch Triton formed at that point).",
        "",
    ]
    return "\n".join(lines)
