"""One benchmark setting measured by both load generators, repeated: spreads, CPU costs and the bottleneck.

Every served figure is measured twice in the same run: by our generator (:func:`tritonrec.measure.loadgen
.measure_point`) and by NVIDIA's perf_analyzer on the very same requests. Each run records the CPU seconds of the
generator and of tritonserver. Over the repeats, each tool's figures become :class:`~tritonrec.spread
.Spread` s; when perf_analyzer serves more than 10% more requests than we do, our generator was the bottleneck
and the headline figure is perf_analyzer's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tritonrec.measure.cpu import CpuMeter, server_process
from tritonrec.measure.loadgen import LoadMode, PointSettings, PreparedRequest, measure_point
from tritonrec.measure.perf_analyzer import pa_input, run_perf_analyzer
from tritonrec.measure.prometheus import default_metrics_url, scrape
from tritonrec.measure.spec_traffic import FeatureRequest
from tritonrec.spread import Spread, compare, spread

__all__ = ["GENERATOR_BOUND_RATIO", "PaSettings", "Target", "run_ours", "run_theirs", "side_by_side", "summarize_runs"]

GENERATOR_BOUND_RATIO = 1.10
"""perf_analyzer serving this much more than our generator means ours was the bottleneck."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PaSettings:
    """perf_analyzer's window (``-p``) and the spread it accepts between windows (``--stability-percentage``)."""

    measurement_ms: int = 4000
    stability_pct: int = 25


@dataclass(frozen=True, slots=True)
class Target:
    """The endpoint under measurement and how to watch it.

    Attributes:
        url: Triton's gRPC endpoint.
        metrics_url: its Prometheus endpoint (None when it does not answer).
        cpu: CPU accounting of this process and of the server process (when it runs here).
        perf_analyzer: the perf_analyzer binary (None: ours only).
    """

    url: str
    metrics_url: str | None
    cpu: CpuMeter
    perf_analyzer: Path | None

    @classmethod
    def at(cls, url: str, *, metrics_url: str | None = None, perf_analyzer: Path | None = None) -> Target:
        """Watch ``url``: its metrics at ``metrics_url`` (default: port 8002 of its host, if it answers)."""
        candidate = metrics_url or default_metrics_url(url)
        answering = scrape(candidate, "__probe__") is not None
        return cls(url, candidate if answering else None, CpuMeter(server_process(url)), perf_analyzer)


def run_ours(
    target: Target,
    model: str,
    requests: list[PreparedRequest] | list[FeatureRequest],
    mode: LoadMode,
    level: float,
    settings: PointSettings,
    *,
    seed: int = 0,
) -> dict[str, Any]:
    """One run of our generator at ``level``, with the server's metrics and the CPU accounting."""
    return measure_point(
        target.url, model, requests, mode, level, settings, seed=seed, metrics_url=target.metrics_url, cpu=target.cpu
    )


def run_theirs(
    target: Target,
    model: str,
    requests: list[PreparedRequest] | list[FeatureRequest],
    mode: LoadMode,
    level: float,
    settings: PaSettings,
) -> dict[str, Any]:
    """One perf_analyzer run on the same requests at ``level``, with the CPU it and the server used."""
    if target.perf_analyzer is None:
        return {"error": "perf_analyzer not used"}
    load = {"concurrency": int(level)} if mode is LoadMode.CLOSED else {"request_rate": level}
    with target.cpu.measure() as usage:
        result = run_perf_analyzer(
            target.perf_analyzer,
            target.url,
            model,
            pa_input(requests),
            measurement_ms=settings.measurement_ms,
            stability_pct=settings.stability_pct,
            **load,
        )
    wall = max(usage.wall_s, 1e-9)
    result["cpu"] = {
        "perf_analyzer_s": round(usage.children_s, 3),
        "perf_analyzer_cores": round(usage.children_s / wall, 3),
        "server_s": None if usage.server_s is None else round(usage.server_s, 3),
        "wall_s": round(usage.wall_s, 3),
    }
    return result


def _figures(run: dict[str, Any]) -> dict[str, float | None]:
    latency = run["latency_ms"]
    return {
        "requests_per_second": run["requests_per_second"],
        "candidates_per_second": run["candidates_per_second"],
        "p50_ms": latency.get("p50"),
        "p99_ms": latency.get("p99"),
    }


def summarize_runs(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Median and min-max of each headline figure over the runs that produced figures (None: no run did)."""
    good = [r for r in runs if "error" not in r]
    if not good:
        return None
    figures = [_figures(r) for r in good]
    out: dict[str, Any] = {}
    for name in figures[0]:
        values = [v for f in figures if (v := f[name]) is not None]
        if values:
            out[name] = spread(values).to_dict()
    out["runs"] = len(good)
    out["failed_runs"] = len(runs) - len(good)
    stable = [r.get("stable") for r in good if "stable" in r]
    if stable:
        out["stable_runs"] = sum(bool(s) for s in stable)
    cpu = [
        r["cpu"]["generator_ms_per_request"] for r in good if r.get("cpu") and r["cpu"].get("generator_ms_per_request")
    ]
    if cpu:
        out["generator_cpu_ms_per_request"] = spread(cpu).to_dict()
    return out


def side_by_side(ours: dict[str, Any] | None, theirs: dict[str, Any] | None) -> dict[str, Any]:
    """Ours vs perf_analyzer on requests/s: the comparison, whether our generator was the bottleneck, the headline.

    The headline requests/s is perf_analyzer's when it served more than :data:`GENERATOR_BOUND_RATIO` times ours
    (our generator, not the server, set the pace), else ours.
    """
    if ours is None or theirs is None:
        headline = ours or theirs
        return {
            "comparison": None,
            "generator_bound": None,
            "headline_tool": "tritonrec" if ours else ("perf_analyzer" if theirs else None),
            "headline_requests_per_second": headline["requests_per_second"] if headline else None,
        }
    a, b = (Spread.from_dict(s["requests_per_second"]) for s in (ours, theirs))
    bound = b.median > GENERATOR_BOUND_RATIO * a.median
    return {
        "comparison": compare(a, b, a_name="tritonrec", b_name="perf_analyzer").to_dict(),
        "generator_bound": bound,
        "headline_tool": "perf_analyzer" if bound else "tritonrec",
        "headline_requests_per_second": (theirs if bound else ours)["requests_per_second"],
    }
