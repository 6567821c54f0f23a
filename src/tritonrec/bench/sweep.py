"""``tritonrec bench sweep``: closed- and open-loop sweeps of a running endpoint, perf_analyzer beside them.

Each point is measured by :func:`tritonrec.bench.loadgen.measure_point` (warm-up, stable windows, Triton's own
queue/compute breakdown over the same span). With a perf_analyzer binary, the same requests are sent by
perf_analyzer at the same concurrencies (and rates), and the report puts both side by side. Writes
``sweep.json`` (every figure), ``sweep.md`` (tables) and ``sweep.png`` (latency against throughput).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tritonrec.bench.loadgen import LoadMode, PointSettings, measure_point, prepare_requests
from tritonrec.bench.perf_analyzer import run_perf_analyzer
from tritonrec.bench.plots import plot_latency_throughput
from tritonrec.bench.report import Progress, Report, markdown_header, new_record, quiet, write_report
from tritonrec.bench.traffic import TrafficSpec, load_user_pool
from tritonrec.client import RankingClient
from tritonrec.contract import DEFAULT_MODEL
from tritonrec.errors import ConfigError

__all__ = ["PointSummary", "SweepSettings", "best_point", "run_sweep", "write_markdown"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepSettings:
    """What to sweep: closed-loop ``concurrencies``, open-loop ``rates`` (requests/s), over ``requests`` users."""

    model: str = DEFAULT_MODEL
    concurrencies: tuple[int, ...] = (1, 4, 8, 16, 32)
    rates: tuple[float, ...] = ()
    requests: int = 1024
    point: PointSettings = field(default_factory=PointSettings)
    perf_analyzer_ms: int = 4000
    perf_analyzer_stability_pct: int = 25

    def __post_init__(self) -> None:
        if not self.concurrencies and not self.rates:
            raise ConfigError("a sweep needs at least one concurrency or rate")
        if any(c < 1 for c in self.concurrencies) or any(r <= 0 for r in self.rates):
            raise ConfigError("concurrencies must be >= 1 and rates > 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class PointSummary:
    """The headline figures of one measured point."""

    level: float
    requests_per_second: float
    candidates_per_second: float
    p99_ms: float | None
    errors: int


def best_point(record: dict[str, Any], mode: LoadMode = LoadMode.CLOSED) -> PointSummary:
    """The point of ``mode`` that served the most requests per second.

    Raises:
        ConfigError: the sweep measured no point of that mode.
    """
    points = record[mode.value]
    if not points:
        raise ConfigError(f"the sweep has no {mode.value}-loop point")
    best = max(points, key=lambda p: p["requests_per_second"])
    return PointSummary(
        level=best["level"],
        requests_per_second=best["requests_per_second"],
        candidates_per_second=best["candidates_per_second"],
        p99_ms=best["latency_ms"]["p99"],
        errors=best["errors"],
    )


def run_sweep(
    url: str,
    traffic: TrafficSpec,
    settings: SweepSettings,
    out_dir: Path,
    *,
    command: str,
    perf_analyzer: Path | None = None,
    progress: Progress = quiet,
) -> Report:
    """Sweep ``settings.model`` at ``url`` with traffic drawn from ``traffic``; write the report into ``out_dir``."""
    with RankingClient(url, model=settings.model) as client:
        limits = client.limits()
        metadata = client.model_metadata()
        server_version = client.server_version()
    pool = load_user_pool(traffic, history_len=limits.max_history or 50)
    pairs = pool.sample(settings.requests)
    requests = prepare_requests(pairs, limits)
    shaped = [(r.history, r.candidates) for r in requests]
    report: dict[str, Any] = {
        **new_record(command, tritonserver=server_version, perf_analyzer=perf_analyzer is not None),
        "url": url,
        "model": {"name": settings.model, "versions": metadata.get("versions", [])},
        "traffic": {
            "source": traffic.source.value,
            "user_zipf": traffic.user_zipf,
            "candidates": {
                "low": traffic.candidates.low,
                "high": traffic.candidates.high,
                "distribution": traffic.candidates.distribution.value,
            },
            "distinct_requests": len(requests),
            "mean_candidates": round(sum(r.n_candidates for r in requests) / len(requests), 1),
            "mean_history": round(sum(int((r.history != 0).sum()) for r in requests) / len(requests), 1),
        },
        "settings": asdict(settings),
        "closed": [],
        "open": [],
        "perf_analyzer": {"closed": {}, "open": {}},
    }
    levels = [(LoadMode.CLOSED, float(c)) for c in settings.concurrencies]
    levels += [(LoadMode.OPEN, float(r)) for r in settings.rates]
    for mode, level in levels:
        progress(f"{mode.value} loop {level:g}: tritonrec ...")
        point = measure_point(url, settings.model, requests, mode, level, settings.point)
        report[mode.value].append(point)
        if perf_analyzer is not None:
            progress(f"{mode.value} loop {level:g}: perf_analyzer ...")
            load = {"concurrency": int(level)} if mode is LoadMode.CLOSED else {"request_rate": level}
            report["perf_analyzer"][mode.value][f"{level:g}"] = run_perf_analyzer(
                perf_analyzer,
                url,
                settings.model,
                shaped,
                measurement_ms=settings.perf_analyzer_ms,
                stability_pct=settings.perf_analyzer_stability_pct,
                **load,
            )
    plots = {"sweep.png": lambda path: plot_latency_throughput(report, path)}
    return write_report(out_dir, "sweep", report, write_markdown(report), plots)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _row(point: dict[str, Any], pa: dict[str, Any] | None) -> str:
    lat, server = point["latency_ms"], point["server"]
    compute = server["compute_input_ms"] + server["compute_infer_ms"] + server["compute_output_ms"]
    ours = point["requests_per_second"]
    if pa is None:
        pa_cells = "| | |"
    elif "error" in pa:
        pa_cells = "| failed | |"
    else:
        theirs = pa["requests_per_second"]
        pa_cells = f"| {theirs:,} (p99 {pa['latency_ms']['p99']}) | {ours / theirs:.2f} |"
    errors = f"{point['errors']}" + (f" ({', '.join(point['error_kinds'])})" if point["errors"] else "")
    return (
        f"| {point['level']:g} | {ours:,} | {point['candidates_per_second']:,.0f} | {_ms(lat['p50'])} "
        f"| {_ms(lat['p90'])} | {_ms(lat['p95'])} | {_ms(lat['p99'])} | {errors} "
        f"| {server['queue_ms']:.2f} / {compute:.2f} | {_ms(server['mean_batch_users'])} "
        f"| {'yes' if point['stable'] else 'no'} {pa_cells}"
    )


def write_markdown(report: dict[str, Any]) -> str:
    """Render the sweep as Markdown tables (every figure from ``report``)."""
    t = report["traffic"]
    lines = markdown_header(
        f"Sweep: {report['model']['name']} at {report['url']}, {t['source']} users (Zipf {t['user_zipf']}), "
        f"{t['candidates']['low']}-{t['candidates']['high']} candidates ({t['candidates']['distribution']})",
        report,
    )
    lines += [
        f"{t['distinct_requests']} distinct requests, mean {t['mean_candidates']} candidates and "
        f"{t['mean_history']} history items. Each point: the last stable windows after warm-up; server columns are "
        "Triton's statistics over the same span (per request averages).",
        "",
    ]
    head = (
        "| {level} | req/s | cand/s | p50 ms | p90 ms | p95 ms | p99 ms | errors | server queue / compute ms "
        "| users per execution | stable | perf_analyzer req/s | ours / perf_analyzer |"
    )
    for mode, level in (("closed", "concurrency"), ("open", "offered req/s")):
        if not report[mode]:
            continue
        lines += [f"## {mode.capitalize()} loop", "", head.format(level=level), "|---" * 13 + "|"]
        for point in report[mode]:
            pa = report["perf_analyzer"][mode].get(f"{point['level']:g}")
            lines.append(_row(point, pa))
        lines.append("")
    failed = {k: v for m in ("closed", "open") for k, v in report["perf_analyzer"][m].items() if "error" in v}
    for level, result in failed.items():
        lines += [f"perf_analyzer at {level} failed: `{result['error'][-300:].strip()}`", ""]
    return "\n".join(lines)
