"""``tritonrec bench batching``: the same load with dynamic batching off, on, and a few batcher settings.

Every setting is a copy of ``ranker_cpu`` under its own name, all loaded in one server, measured with the same
requests (closed loop at one concurrency), for small requests (N=8 candidates: per-request overhead dominates,
batching should pay most) and large ones (N=200). Each setting runs ``repeats`` times per tool (our generator
and perf_analyzer), all runs in a seeded random order; each setting is compared with ``no_batching`` as
median (min-max) ratios, and a ratio whose ranges overlap is "no measurable difference". The headline ratio is
perf_analyzer's where our generator was the bottleneck of either setting. Writes ``batching.json``,
``batching.md`` and ``batching.png``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tritonrec.client import RankingClient
from tritonrec.measure.loadgen import LoadMode, PointSettings, prepare_requests
from tritonrec.measure.plots import plot_batching
from tritonrec.measure.points import PaSettings, Target, run_ours, run_theirs, side_by_side, summarize_runs
from tritonrec.measure.traffic import CandidateCounts, TrafficSpec, load_user_pool
from tritonrec.records import Progress, Report, markdown_header, new_record, quiet, write_report
from tritonrec.repository import VARIANTS, Batching, Variant, VariantName
from tritonrec.serving.endpoint import local_endpoint
from tritonrec.spread import Spread, compare, shuffled_trials

__all__ = [
    "BATCHER_SETTINGS",
    "BatchingSettings",
    "batching_variants",
    "ratio_text",
    "run_batching_bench",
    "write_markdown",
]

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
    "dynamic_cancel_check": (
        "dynamic batching as shipped, plus asking Triton per request whether it was cancelled",
        {"cancel_check": True},
    ),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchingSettings:
    """Candidate counts to compare, the closed-loop concurrency, distinct requests, repeats, the point rules."""

    candidate_counts: tuple[int, ...] = (8, 200)
    concurrency: int = 16
    requests: int = 1024
    settings: tuple[str, ...] = tuple(BATCHER_SETTINGS)
    repeats: int = 3
    seed: int = 0
    point: PointSettings = field(default_factory=PointSettings)
    perf_analyzer: PaSettings = field(default_factory=PaSettings)


def batching_variants(names: tuple[str, ...]) -> list[Variant]:
    """One ``ranker_cpu`` copy per batcher setting, named ``batching_<setting>``."""
    base = VARIANTS[VariantName.CPU]
    return [dataclasses.replace(base, name=f"batching_{n}", **BATCHER_SETTINGS[n][1]) for n in names]


def _versus_baseline(entry: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """This setting / no_batching on requests/s, per tool, and the headline (perf_analyzer's when generator-bound)."""
    out: dict[str, Any] = {}
    for tool in ("tritonrec", "perf_analyzer"):
        mine, theirs = entry.get(tool), base.get(tool)
        if mine and theirs and mine["summary"] and theirs["summary"]:
            a = Spread.from_dict(mine["summary"]["requests_per_second"])
            b = Spread.from_dict(theirs["summary"]["requests_per_second"])
            out[tool] = compare(a, b, a_name="setting", b_name=BASELINE).to_dict()
    bound = bool(entry.get("generator_bound")) or bool(base.get("generator_bound"))
    out["headline_tool"] = "perf_analyzer" if bound and "perf_analyzer" in out else "tritonrec"
    out["headline"] = out.get(out["headline_tool"])
    return out


def run_batching_bench(
    export_dir: Path,
    out_dir: Path,
    settings: BatchingSettings,
    *,
    command: str,
    perf_analyzer: Path | None = None,
    progress: Progress = quiet,
) -> Report:
    """Measure every batcher setting at every candidate count with both tools; write the report into ``out_dir``."""
    variants = batching_variants(settings.settings)
    by_name = dict(zip(settings.settings, variants, strict=True))
    tools = ["tritonrec", *(["perf_analyzer"] if perf_analyzer else [])]
    runs: dict[tuple[int, str, str], list[dict[str, Any]]] = {}
    with local_endpoint(export_dir, variants) as server:
        target = Target.at(server.grpc_url, metrics_url=server.metrics_url, perf_analyzer=perf_analyzer)
        with RankingClient(server.grpc_url, model=variants[0].name) as client:
            limits = client.limits()
            server_version = client.server_version()
        requests = {}
        for n in settings.candidate_counts:
            pool = load_user_pool(TrafficSpec(candidates=CandidateCounts.fixed(n)), history_len=limits.max_history)
            requests[n] = prepare_requests(pool.sample(settings.requests), limits)
        trials = [(n, name, tool) for n in settings.candidate_counts for name in settings.settings for tool in tools]
        for (n, name, tool), repeat in shuffled_trials(trials, settings.repeats, settings.seed):
            progress(f"N={n}, {name}, {tool}, run {repeat + 1}/{settings.repeats} ...")
            model = by_name[name].name
            if tool == "tritonrec":
                run = run_ours(target, model, requests[n], LoadMode.CLOSED, settings.concurrency, settings.point)
            else:
                run = run_theirs(
                    target, model, requests[n], LoadMode.CLOSED, settings.concurrency, settings.perf_analyzer
                )
            runs.setdefault((n, name, tool), []).append({"repeat": repeat, **run})
    results: dict[str, dict[str, Any]] = {}
    for n in settings.candidate_counts:
        by_setting: dict[str, Any] = {}
        for name in settings.settings:
            entry: dict[str, Any] = {}
            for tool in tools:
                tool_runs = runs.get((n, name, tool), [])
                entry[tool] = {"summary": summarize_runs(tool_runs), "runs": tool_runs}
            pa = entry.get("perf_analyzer")
            entry.update(side_by_side(entry["tritonrec"]["summary"], pa["summary"] if pa else None))
            by_setting[name] = entry
        base = by_setting.get(BASELINE)
        if base is not None:
            for entry in by_setting.values():
                entry["vs_no_batching"] = _versus_baseline(entry, base)
        results[str(n)] = by_setting
    report = {
        **new_record(command, tritonserver=server_version, perf_analyzer=perf_analyzer is not None),
        "server_cpu_measured": target.cpu.server is not None,
        "settings": asdict(settings),
        "descriptions": {n: BATCHER_SETTINGS[n][0] for n in settings.settings},
        "results": results,
    }
    plots = {"batching.png": lambda path: plot_batching(report, path, baseline=BASELINE)}
    return write_report(out_dir, "batching", report, write_markdown(report), plots)


def _cell(entry: dict[str, Any] | None, key: str, fmt: str) -> str:
    if not entry or not entry.get("summary") or key not in entry["summary"]:
        return "-"
    return Spread.from_dict(entry["summary"][key]).text(fmt)


def ratio_text(comparison: dict[str, Any] | None) -> str:
    """A ratio against the baseline as the tables show it: median (min-max), and the verdict when it is none."""
    if not comparison:
        return "-"
    c = comparison
    return f"{c['ratio']:.2f}x ({c['ratio_min']:.2f}-{c['ratio_max']:.2f})" + (
        "" if c["measurable"] else ", no measurable difference"
    )


def _ratio(versus: dict[str, Any] | None, tool: str) -> str:
    return ratio_text(versus.get(tool) if versus else None)


def write_markdown(report: dict[str, Any]) -> str:
    """Render the batching comparison (every figure from ``report``)."""
    s = report["settings"]
    title = f"Dynamic batching: {VariantName.CPU.value}, closed loop at concurrency {s['concurrency']}"
    lines = markdown_header(title, report)
    lines += [
        f"Each setting ran {s['repeats']} time(s) per tool, in a random order; figures are median (min-max). "
        'Ratios are against `no_batching` with the same tool; "no measurable difference" where the ranges overlap. '
        "The headline ratio is perf_analyzer's where our generator was the bottleneck (perf_analyzer > 1.1x ours).",
        "",
    ]
    for n, by_setting in report["results"].items():
        lines += [
            f"## N={n} candidates per request",
            "",
            "| setting | ours req/s | ours p99 ms | perf_analyzer req/s | perf_analyzer p99 ms | users per execution "
            "| ours vs no batching | perf_analyzer vs no batching | bottleneck |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, entry in by_setting.items():
            runs = entry["tritonrec"]["runs"]
            users = runs[-1]["server"]["mean_batch_users"] if runs and "server" in runs[-1] else None
            versus = entry.get("vs_no_batching")
            bound = {True: "ours (generator-bound)", False: "server", None: "-"}[entry.get("generator_bound")]
            ours, pa = entry["tritonrec"], entry.get("perf_analyzer")
            lines.append(
                f"| {name}: {report['descriptions'][name]} | {_cell(ours, 'requests_per_second', ',.0f')} "
                f"| {_cell(ours, 'p99_ms', '.1f')} | {_cell(pa, 'requests_per_second', ',.0f')} "
                f"| {_cell(pa, 'p99_ms', '.1f')} | {users} | {_ratio(versus, 'tritonrec')} "
                f"| {_ratio(versus, 'perf_analyzer')} | {bound} |"
            )
        lines.append("")
    return "\n".join(lines)
