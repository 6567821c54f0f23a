"""``tritonrec bench efficiency``: what share of the model's own speed survives serving.

Serving efficiency = candidates/s served through Triton over gRPC (``ranker_cpu``, closed loop, the best of a few
concurrencies) / candidates/s of the same ONNX model run in process, by the same ONNX Runtime session the server
opens (``ranker_cpu_model.open_session``), on batches of the same size the dynamic batcher formed at that best
point (users per execution, from Triton's statistics), packed as the server packs them. Both are measured in one
run on one machine. What the ratio leaves out is the cost of serving: gRPC, (de)serialization, the Python
backend's shared-memory hop, queueing, and on a small machine the load generator's own CPU.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tritonrec.bench.endpoint import local_endpoint
from tritonrec.bench.loadgen import LoadMode, PointSettings, PreparedRequest, measure_point, prepare_requests
from tritonrec.bench.quality import host_info, markdown_header
from tritonrec.bench.traffic import CandidateCounts, TrafficSpec, load_user_pool
from tritonrec.client import RankingClient
from tritonrec.repository import VARIANTS
from tritonrec.repository.ranker_cpu_model import open_session, pack_requests

__all__ = ["EfficiencySettings", "in_process_throughput", "run_efficiency_bench", "write_markdown"]

MODEL = "ranker_cpu"


@dataclass(frozen=True, slots=True, kw_only=True)
class EfficiencySettings:
    """N candidates per user, the concurrencies searched, distinct requests, in-process time per batch size."""

    n_candidates: int = 200
    concurrencies: tuple[int, ...] = (4, 8, 16, 32)
    requests: int = 1024
    in_process_s: float = 6.0
    point: PointSettings = field(default_factory=PointSettings)


def in_process_throughput(
    export_dir: Path, requests: list[PreparedRequest], batch_users: int, seconds: float, history_len: int
) -> dict[str, Any]:
    """Candidates/s of the serving session run in process on packed batches of ``batch_users`` users."""
    session = open_session(export_dir / "model.onnx")
    batches: list[tuple[dict[str, Any], int]] = []
    for lo in range(0, len(requests) - batch_users + 1, batch_users):
        group = requests[lo : lo + batch_users]
        history, candidates = pack_requests([(r.history[None, :], r.candidates[None, :]) for r in group], history_len)
        batches.append(({"history": history, "candidates": candidates}, sum(r.n_candidates for r in group)))
    session.run(["scores"], batches[0][0])  # warm up
    runs, candidates_done, started = 0, 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        k = runs % len(batches)
        session.run(["scores"], batches[k][0])
        candidates_done += batches[k][1]
        runs += 1
    elapsed = time.perf_counter() - started
    return {
        "batch_users": batch_users,
        "session_runs": runs,
        "seconds": round(elapsed, 2),
        "candidates_per_second": round(candidates_done / elapsed, 1),
        "users_per_second": round(runs * batch_users / elapsed, 1),
    }


def run_efficiency_bench(
    export_dir: Path, out_dir: Path, settings: EfficiencySettings, *, command: str
) -> dict[str, Any]:
    """Measure Triton at each concurrency, then the session in process at the best point's batch size."""
    traffic = TrafficSpec(candidates=CandidateCounts.fixed(settings.n_candidates))
    with local_endpoint(export_dir) as server:
        with RankingClient(server.grpc_url, model=MODEL) as client:
            limits = client.limits()
        pool = load_user_pool(traffic, history_len=limits.max_history)
        requests = prepare_requests(pool.sample(settings.requests), limits)
        points = []
        for c in settings.concurrencies:
            print(f"Triton, concurrency {c} ...", flush=True)
            points.append(measure_point(server.grpc_url, MODEL, requests, LoadMode.CLOSED, c, settings.point))
    best = max(points, key=lambda p: p["candidates_per_second"])
    batch = max(1, round(best["server"]["mean_batch_users"] or 1))
    sizes = sorted({1, batch, VARIANTS[MODEL].batching.max_batch_size})
    in_process = {}
    for b in sizes:
        print(f"in-process ONNX Runtime, {b} users per run ...", flush=True)
        in_process[str(b)] = in_process_throughput(
            export_dir, requests, b, settings.in_process_s, history_len=limits.max_history
        )
    report = {
        "command": command,
        "host": host_info(),
        "settings": asdict(settings),
        "traffic": {"source": traffic.source.value, "n_candidates": settings.n_candidates},
        "triton": points,
        "best": {"concurrency": best["level"], "batch_users": batch},
        "in_process": in_process,
        "efficiency": round(best["candidates_per_second"] / in_process[str(batch)]["candidates_per_second"], 3),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "efficiency.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    (out_dir / "efficiency.md").write_text(write_markdown(report))
    return report


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
