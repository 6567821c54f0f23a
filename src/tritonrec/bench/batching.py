"""``tritonrec bench batching``: the same load with dynamic batching off, on, and a few batcher settings.

Every setting is a copy of ``ranker_cpu`` under its own name, all loaded in one server, measured in turn with
the same requests (closed loop at one concurrency), for small requests (N=8 candidates: per-request overhead
dominates, batching should pay most) and large ones (N=200). Writes ``batching.json``, ``batching.md`` and
``batching.png``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tritonrec.bench.endpoint import local_endpoint
from tritonrec.bench.loadgen import LoadMode, PointSettings, measure_point, prepare_requests
from tritonrec.bench.perf_analyzer import run_perf_analyzer
from tritonrec.bench.plots import plot_batching
from tritonrec.bench.report import Progress, Report, markdown_header, new_record, quiet, write_report
from tritonrec.bench.traffic import CandidateCounts, TrafficSpec, load_user_pool
from tritonrec.client import RankingClient
from tritonrec.repository import VARIANTS, Batching, Variant, VariantName

__all__ = ["BATCHER_SETTINGS", "BatchingSettings", "batching_variants", "run_batching_bench", "write_markdown"]

BASELINE = "no_batching"
# name -> (what it is, changes to ranker_cpu)
BATCHER_SETTINGS: dict[str, tuple[str, dict[str, Any]]] = {
    BASELINE: ("default scheduler: one request per execution (2 instances)", {"batching": Batching(dynamic=False)}),
    "dynamic": ("dynamic batching as shipped: 2 instances, preferred 16/32/64, 2 ms delay", {}),
    "dynamic_no_delay": ("dynamic batching, no queue delay", {"batching": Batching(max_queue_delay_us=0)}),
    "dynamic_delay_5ms": ("dynamic batching, 5 ms queue delay", {"batching": Batching(max_queue_delay_us=5_000)}),
    "dynamic_no_preferred": ("dynamic batching, no preferred sizes", {"batching": Batching(preferred_batch_sizes=())}),
    "dynamic_queue_timeout_2s": (
        "dynamic batching with a 2 s queue timeout",
        {"batching": Batching(queue_timeout_us=2_000_000)},
    ),
    "dynamic_1_instance": ("dynamic batching, 1 instance using every core (the earlier default)", {"instances": 1}),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchingSettings:
    """Candidate counts to compare, the closed-loop concurrency, distinct requests, the point rule."""

    candidate_counts: tuple[int, ...] = (8, 200)
    concurrency: int = 16
    requests: int = 1024
    settings: tuple[str, ...] = tuple(BATCHER_SETTINGS)
    point: PointSettings = field(default_factory=PointSettings)
    perf_analyzer_ms: int = 4000
    perf_analyzer_stability_pct: int = 25


def batching_variants(names: tuple[str, ...]) -> list[Variant]:
    """One ``ranker_cpu`` copy per batcher setting, named ``batching_<setting>``."""
    base = VARIANTS[VariantName.CPU]
    return [dataclasses.replace(base, name=f"batching_{n}", **BATCHER_SETTINGS[n][1]) for n in names]


def run_batching_bench(
    export_dir: Path,
    out_dir: Path,
    settings: BatchingSettings,
    *,
    command: str,
    perf_analyzer: Path | None = None,
    progress: Progress = quiet,
) -> Report:
    """Measure every batcher setting at every candidate count; write the report into ``out_dir``.

    With ``perf_analyzer``, it also drives each setting with the same requests at the same concurrency, right
    after our point: a second, independent load generator on the same server.
    """
    variants = batching_variants(settings.settings)
    results: dict[str, dict[str, Any]] = {str(n): {} for n in settings.candidate_counts}
    with local_endpoint(export_dir, variants) as server:
        with RankingClient(server.grpc_url, model=variants[0].name) as client:
            limits = client.limits()
        for n in settings.candidate_counts:
            pool = load_user_pool(TrafficSpec(candidates=CandidateCounts.fixed(n)), history_len=limits.max_history)
            requests = prepare_requests(pool.sample(settings.requests), limits)
            for name, variant in zip(settings.settings, variants, strict=True):
                progress(f"N={n}, {name} ...")
                point = measure_point(
                    server.grpc_url, variant.name, requests, LoadMode.CLOSED, settings.concurrency, settings.point
                )
                if perf_analyzer is not None:
                    point["perf_analyzer"] = run_perf_analyzer(
                        perf_analyzer,
                        server.grpc_url,
                        variant.name,
                        [(r.history, r.candidates) for r in requests],
                        concurrency=settings.concurrency,
                        measurement_ms=settings.perf_analyzer_ms,
                        stability_pct=settings.perf_analyzer_stability_pct,
                    )
                results[str(n)][name] = point
    report = {
        **new_record(command, perf_analyzer=perf_analyzer is not None),
        "settings": asdict(settings),
        "descriptions": {n: BATCHER_SETTINGS[n][0] for n in settings.settings},
        "results": results,
    }
    plots = {"batching.png": lambda path: plot_batching(report, path, baseline=BASELINE)}
    return write_report(out_dir, "batching", report, write_markdown(report), plots)


def write_markdown(report: dict[str, Any]) -> str:
    """Render the batching comparison (every figure from ``report``)."""
    s = report["settings"]
    title = f"Dynamic batching: {VariantName.CPU.value}, closed loop at concurrency {s['concurrency']}"
    lines = markdown_header(title, report)
    for n, by_setting in report["results"].items():
        base = by_setting.get(BASELINE)
        lines += [
            f"## N={n} candidates per request",
            "",
            "| setting | req/s | vs no batching | p50 ms | p95 ms | p99 ms | users per execution | errors "
            "| perf_analyzer req/s | perf_analyzer p95 / p99 ms |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, p in by_setting.items():
            ratio = f"{p['requests_per_second'] / base['requests_per_second']:.2f}x" if base else "-"
            lat = p["latency_ms"]
            pa = p.get("perf_analyzer")
            if pa is None:
                pa_cells = "| - | - |"
            elif "error" in pa:
                pa_cells = "| failed | |"
            else:
                pa_cells = f"| {pa['requests_per_second']:,} | {pa['latency_ms']['p95']} / {pa['latency_ms']['p99']} |"
            lines.append(
                f"| {name}: {report['descriptions'][name]} | {p['requests_per_second']:,} | {ratio} | {lat['p50']} "
                f"| {lat['p95']} | {lat['p99']} | {p['server']['mean_batch_users']} | {p['errors']} {pa_cells}"
            )
        lines.append("")
    return "\n".join(lines)
