"""``tritonrec bench sweep``: closed- and open-loop sweeps of a running endpoint, perf_analyzer beside each point.

Every point (a concurrency, or an open-loop rate) runs ``repeats`` times, the points in a seeded random order, each
run once by our generator (:func:`tritonrec.measure.loadgen.measure_point`: warm-up, stable windows, Triton's own
queue/compute breakdown from its statistics and metrics endpoints, CPU accounting) and once by perf_analyzer on
the same requests. The report gives each figure as median (min-max), ours / perf_analyzer with the verdict, and
which tool's figure is the headline (perf_analyzer's where ours was the bottleneck). Writes ``sweep.json`` (every
run), ``sweep.md`` (tables) and ``sweep.png`` (latency against throughput, medians).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tritonrec.client import RankingClient
from tritonrec.contract import DEFAULT_MODEL
from tritonrec.errors import ConfigError
from tritonrec.measure.loadgen import LoadMode, PointSettings, PreparedRequest, prepare_requests
from tritonrec.measure.plots import plot_latency_throughput
from tritonrec.measure.points import PaSettings, Target, run_ours, run_theirs, side_by_side, summarize_runs
from tritonrec.measure.spec_traffic import FeatureRequest, SpecTraffic, served_spec_requests, spec_traffic_record
from tritonrec.measure.traffic import TrafficSpec, load_user_pool
from tritonrec.records import Progress, Report, markdown_header, new_record, quiet, write_report
from tritonrec.spec.model_spec import ModelSpec
from tritonrec.spread import Spread, shuffled_trials

__all__ = ["PointSummary", "SweepSettings", "best_point", "run_sweep", "write_markdown"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepSettings:
    """What to sweep: closed-loop ``concurrencies``, open-loop ``rates`` (requests/s), over ``requests`` users.

    Attributes:
        model: the served model.
        concurrencies: closed-loop points.
        rates: open-loop points (mean requests per second).
        requests: distinct requests drawn from the traffic and cycled.
        repeats: runs per point and tool (in a seeded random order of points).
        seed: seeds that order.
        point: our generator's warm-up, windows and stability rule.
        perf_analyzer: perf_analyzer's window and stability rule.
    """

    model: str = DEFAULT_MODEL
    concurrencies: tuple[int, ...] = (1, 4, 8, 16, 32)
    rates: tuple[float, ...] = ()
    requests: int = 1024
    repeats: int = 3
    seed: int = 0
    point: PointSettings = field(default_factory=PointSettings)
    perf_analyzer: PaSettings = field(default_factory=PaSettings)

    def __post_init__(self) -> None:
        if not self.concurrencies and not self.rates:
            raise ConfigError("a sweep needs at least one concurrency or rate")
        if any(c < 1 for c in self.concurrencies) or any(r <= 0 for r in self.rates):
            raise ConfigError("concurrencies must be >= 1 and rates > 0")
        if self.repeats < 1:
            raise ConfigError(f"repeats must be >= 1, got {self.repeats}")


@dataclass(frozen=True, slots=True, kw_only=True)
class PointSummary:
    """The headline figures of one point (medians over the repeats)."""

    level: float
    requests_per_second: float
    candidates_per_second: float
    p99_ms: float | None
    headline_tool: str


def best_point(record: dict[str, Any], mode: LoadMode = LoadMode.CLOSED) -> PointSummary:
    """The point of ``mode`` whose headline requests/s (median) is highest.

    Raises:
        ConfigError: the sweep measured no point of that mode.
    """
    points = [p for p in record["points"] if p["mode"] == mode.value and p["headline_requests_per_second"]]
    if not points:
        raise ConfigError(f"the sweep has no measured {mode.value}-loop point")
    best = max(points, key=lambda p: p["headline_requests_per_second"]["median"])
    tool = best[best["headline_tool"]]["summary"]
    return PointSummary(
        level=best["level"],
        requests_per_second=tool["requests_per_second"]["median"],
        candidates_per_second=tool["candidates_per_second"]["median"],
        p99_ms=tool["p99_ms"]["median"] if "p99_ms" in tool else None,
        headline_tool=best["headline_tool"],
    )


def _traffic_record(traffic: TrafficSpec, requests: list[Any]) -> dict[str, Any]:
    return {
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
    }


def run_sweep(
    target: Target,
    traffic: TrafficSpec,
    settings: SweepSettings,
    out_dir: Path,
    *,
    command: str,
    progress: Progress = quiet,
    spec: ModelSpec | None = None,
    spec_traffic: SpecTraffic | None = None,
) -> Report:
    """Sweep ``settings.model`` at ``target``; write the report into ``out_dir``.

    The traffic is drawn from ``traffic`` (the bundled model's), or with ``spec`` from the spec's evaluation rows
    (``spec_traffic``; in the rows layout with perf_analyzer beside us, every request the median query's rows).
    """
    with RankingClient(target.url, model=settings.model) as client:
        metadata = client.model_metadata()
        server_version = client.server_version()
        limits = None if spec is not None else client.limits()
    requests: list[PreparedRequest] | list[FeatureRequest]
    if spec is not None:
        requests, spec_traffic = served_spec_requests(
            target.url,
            settings.model,
            spec,
            settings.requests,
            spec_traffic or SpecTraffic(seed=settings.seed),
            one_batch_size=bool(target.perf_analyzer),
        )
        traffic_record = spec_traffic_record(spec, spec_traffic, requests)
    else:
        assert limits is not None
        pool = load_user_pool(traffic, history_len=limits.max_history or 50)
        requests = prepare_requests(pool.sample(settings.requests), limits, settings.model)
        traffic_record = _traffic_record(traffic, requests)
    levels = [(LoadMode.CLOSED, float(c)) for c in settings.concurrencies]
    levels += [(LoadMode.OPEN, float(r)) for r in settings.rates]
    tools = ["tritonrec", *(["perf_analyzer"] if target.perf_analyzer else [])]
    runs: dict[tuple[str, float, str], list[dict[str, Any]]] = {(m.value, lv, t): [] for m, lv in levels for t in tools}
    for (mode, level, tool), repeat in shuffled_trials(
        [(m, lv, t) for m, lv in levels for t in tools], settings.repeats, settings.seed
    ):
        progress(f"{mode.value} loop {level:g}, {tool}, run {repeat + 1}/{settings.repeats} ...")
        if tool == "tritonrec":
            run = run_ours(target, settings.model, requests, mode, level, settings.point, seed=settings.seed + repeat)
        else:
            run = run_theirs(target, settings.model, requests, mode, level, settings.perf_analyzer)
        runs[(mode.value, level, tool)].append({"repeat": repeat, **run})
    points = []
    for mode, level in levels:
        ours = runs[(mode.value, level, "tritonrec")]
        theirs = runs.get((mode.value, level, "perf_analyzer"), [])
        summaries = {"tritonrec": summarize_runs(ours), "perf_analyzer": summarize_runs(theirs) if theirs else None}
        points.append(
            {
                "mode": mode.value,
                "level": level,
                "tritonrec": {"summary": summaries["tritonrec"], "runs": ours},
                "perf_analyzer": {"summary": summaries["perf_analyzer"], "runs": theirs} if theirs else None,
                **side_by_side(summaries["tritonrec"], summaries["perf_analyzer"]),
            }
        )
    report: dict[str, Any] = {
        **new_record(command, tritonserver=server_version, perf_analyzer=target.perf_analyzer is not None),
        "url": target.url,
        "metrics_url": target.metrics_url,
        "server_cpu_measured": target.cpu.server is not None,
        "model": {"name": settings.model, "versions": metadata.get("versions", [])},
        "traffic": traffic_record,
        "settings": asdict(settings),
        "points": points,
    }
    plots = {"sweep.png": lambda path: plot_latency_throughput(report, path)}
    return write_report(out_dir, "sweep", report, write_markdown(report), plots)


def _text(summary: dict[str, Any] | None, key: str, fmt: str) -> str:
    if summary is None or key not in summary:
        return "-"
    return Spread.from_dict(summary[key]).text(fmt)


def _row(point: dict[str, Any]) -> str:
    ours = point["tritonrec"]["summary"]
    runs = point["tritonrec"]["runs"]
    pa = point["perf_analyzer"]["summary"] if point["perf_analyzer"] else None
    last = runs[-1]
    kinds: dict[str, int] = {}
    for r in runs:
        for kind, n in r.get("error_kinds", {}).items():
            kinds[kind] = kinds.get(kind, 0) + n
    # queue-full refusals (ServerOverloadedError) are counted here: Triton's statistics and metrics count none
    errors = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())) or "0"
    stable = f"{ours.get('stable_runs', 0)}/{ours['runs']}" if ours else "-"
    server = last.get("server", {})
    compute = sum(server.get(k, 0.0) for k in ("compute_input_ms", "compute_infer_ms", "compute_output_ms"))
    comparison = point["comparison"]
    verdict = "-" if comparison is None else comparison["verdict"]
    bound = {True: "ours (generator-bound)", False: "server", None: "-"}[point["generator_bound"]]
    return (
        f"| {point['level']:g} | {_text(ours, 'requests_per_second', ',.1f')} "
        f"| {_text(ours, 'candidates_per_second', ',.0f')} "
        f"| {_text(ours, 'p50_ms', '.2f')} | {_text(ours, 'p99_ms', '.2f')} | {errors} | {stable} "
        f"| {_text(ours, 'generator_cpu_ms_per_request', '.3f')} "
        f"| {server.get('queue_ms', 0.0):.2f} / {compute:.2f} | {server.get('mean_batch_users')} "
        f"| {_text(pa, 'requests_per_second', ',.1f')} | {_text(pa, 'p99_ms', '.2f')} | {verdict} | {bound} |"
    )


def write_markdown(report: dict[str, Any]) -> str:
    """Render the sweep as Markdown tables (every figure from ``report``)."""
    t, s = report["traffic"], report["settings"]
    if "layout" in t:  # a spec's model
        title = f"{t['source']}, queries skewed {t['query_skew']}, rows per request: {t['rows_per_request']}"
        drawn = f"{t['distinct_requests']} distinct requests ({t['layout']} layout), mean {t['mean_candidates']} rows."
    else:
        title = (f"{t['source']} users (Zipf {t['user_zipf']}), {t['candidates']['low']}-{t['candidates']['high']} "
                 f"candidates ({t['candidates']['distribution']})")  # fmt: skip
        drawn = (f"{t['distinct_requests']} distinct requests, mean {t['mean_candidates']} candidates and "
                 f"{t['mean_history']} history items.")  # fmt: skip
    lines = markdown_header(f"Sweep: {report['model']['name']} at {report['url']}, {title}", report)
    lines += [
        f"{drawn} Each point ran {s['repeats']} time(s) per tool, points in a random order; figures are "
        "median (min-max) over the runs. Our latency in the open loop counts from the scheduled send time. Server "
        "columns are Triton's statistics over our last run's measured windows (per request averages). A comparison "
        'whose ranges overlap is "no measurable difference"; where perf_analyzer served > 10% more, our generator '
        "was the bottleneck and perf_analyzer's figure is the headline.",
        "",
    ]
    head = (
        "| {level} | ours req/s | ours cand/s | ours p50 ms | ours p99 ms | errors | stable runs "
        "| ours CPU ms/request | server queue / compute ms | users per execution | perf_analyzer req/s "
        "| perf_analyzer p99 ms | ours / perf_analyzer | bottleneck |"
    )
    for mode, level in (("closed", "concurrency"), ("open", "offered req/s")):
        points = [p for p in report["points"] if p["mode"] == mode]
        if not points:
            continue
        lines += [f"## {mode.capitalize()} loop", "", head.format(level=level), "|---" * 14 + "|"]
        lines += [_row(p) for p in points]
        lines.append("")
    failed = [
        (p["level"], r)
        for p in report["points"]
        if p["perf_analyzer"]
        for r in p["perf_analyzer"]["runs"]
        if "error" in r
    ]
    for level, run in failed:
        lines += [f"perf_analyzer at {level:g} failed: `{run['error'][-300:].strip()}`", ""]
    unstable = [
        (p["level"], r["unstable_reason"])
        for p in report["points"]
        for r in p["tritonrec"]["runs"]
        if r.get("unstable_reason")
    ]
    for level, reason in unstable:
        lines += [f"Unstable run at {level:g}: {reason}.", ""]
    return "\n".join(lines)
