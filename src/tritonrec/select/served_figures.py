"""Served figures of the Triton candidates: quality over gRPC, latency at a fixed rate, throughput within the SLA.

All served candidates run in one local Triton (the bundled server, explicit model control), loaded one at a time
except for the side-by-side rounds, and are measured by the bench harness's own instruments on the same
requests (Beauty users, the traffic's candidate counts):

- quality: every evaluation row sent as its own request through ``RankingClient`` and scored by the shared
  metrics module (``tritonrec.scorers.triton``);
- latency: the open-loop point of ``tritonrec bench sweep`` at ``rate`` requests/s (Poisson arrivals, latency
  from the scheduled time): p50/p95/p99;
- throughput: perf_analyzer (our closed-loop generator where it is not installed) at each concurrency, the best
  point whose p99 meets the SLA, then every served candidate again at its best concurrency in ``repeats``
  shuffled rounds (median and spread), as ``bench tune`` confirms its pick.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tritonrec.client import RankingClient
from tritonrec.data.splits import EvalSet
from tritonrec.errors import ConfigError
from tritonrec.export.manifest import read_export_spec
from tritonrec.measure.loadgen import LoadMode, PointSettings, measure_point, prepare_requests
from tritonrec.measure.points import PaSettings, Target
from tritonrec.measure.served_configs import Contender, ServedModels
from tritonrec.measure.traffic import TrafficSpec, load_user_pool
from tritonrec.metrics import evaluate
from tritonrec.records import Progress, quiet
from tritonrec.repository import VARIANTS, Variant, VariantName, graph_file_layout
from tritonrec.scorers.triton import triton_scorer
from tritonrec.select.candidates import Candidate, Runtime

__all__ = ["ServedSettings", "measure_served", "rate_point", "selected_variant", "served_variant"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ServedSettings:
    """How the served candidates are measured.

    Attributes:
        p99_ms: the SLA: a concurrency whose p99 exceeds it does not count.
        rate: requests/s of the open-loop latency point.
        concurrencies: perf_analyzer's closed-loop concurrencies.
        repeats: side-by-side rounds at each candidate's best concurrency.
        requests: distinct requests drawn from the traffic.
        point: warm-up, windows and stability of the open-loop point.
        perf_analyzer: perf_analyzer's window and stability rule.
    """

    p99_ms: float = 50.0
    rate: float = 100.0
    concurrencies: tuple[int, ...] = (4, 8, 16, 32)
    repeats: int = 3
    requests: int = 512
    point: PointSettings = PointSettings(warmup_s=2.0, window_s=3.0, stable_windows=2, max_windows=6)
    perf_analyzer: PaSettings = PaSettings(measurement_ms=3000, stability_pct=25)


def _cpu_variant(artifact: Path, precision: str, runtime: str) -> Variant:
    """``ranker_cpu`` serving ``artifact`` in the layout its inputs name.

    The INT8 file of ``tritonrec quantize`` is a padded graph, the FP32 ragged graph ``model_ragged.onnx`` ragged.
    """
    base = VARIANTS[VariantName.CPU]
    layout = graph_file_layout(artifact)
    return dataclasses.replace(base, artifact=artifact.name, precision=precision, layout=layout, runtime=runtime)


def served_variant(candidate: Candidate) -> Variant:
    """The ``ranker_cpu`` variant that serves ``candidate``'s graph (its file, precision and layout)."""
    return _cpu_variant(candidate.artifact, candidate.precision.value, candidate.runtime.cpu_runtime)


def selected_variant(report: Path) -> tuple[Variant, Path]:
    """The ``ranker_cpu`` variant of the candidate a ``select.json`` chose, and the folder of its graph.

    Raises:
        ConfigError: the file is not a select report, it chose nothing, or its pick is not a served candidate.
    """
    import json

    try:
        record = json.loads(report.read_text())
        row = record["chosen_row"]
    except (OSError, KeyError, json.JSONDecodeError) as e:
        raise ConfigError(f"{report} is not a `tritonrec select` report: {e}") from e
    if row is None:
        raise ConfigError(f"{report}: no candidate met every constraint, so there is nothing to build")
    runtime = Runtime(row["runtime"])
    if not runtime.served:
        raise ConfigError(f"{report}: the pick {row['name']} is not served by ranker_cpu")
    artifact = Path(row["artifact"])
    if not artifact.is_file():
        raise ConfigError(f"{report}: the pick's graph {artifact} is gone; rerun `tritonrec select`")
    return _cpu_variant(artifact, row["precision"], runtime.cpu_runtime), artifact.parent


def rate_point(point: dict[str, Any], rate: float) -> dict[str, Any]:
    """What the report keeps of the open-loop point at ``rate`` requests/s."""
    keys = ("latency_ms", "stable", "unstable_reason", "errors")
    return {"rate": rate, **{k: point[k] for k in keys}}


def measure_served(
    candidates: Sequence[Candidate],
    server: Any,
    traffic: TrafficSpec,
    eval_rows: EvalSet,
    settings: ServedSettings,
    *,
    perf_analyzer: Path | None,
    progress: Progress = quiet,
) -> dict[str, dict[str, Any]]:
    """Each served candidate's quality, latency at the fixed rate and throughput within the SLA (by name)."""
    if not candidates:
        return {}
    target = Target.at(server.grpc_url, metrics_url=server.metrics_url, perf_analyzer=perf_analyzer)
    with RankingClient(server.grpc_url) as client:
        limits = client.limits()
    pool = load_user_pool(traffic, history_len=limits.max_history)
    requests = prepare_requests(pool.sample(settings.requests), limits)
    models = ServedModels(
        server,
        target,
        requests,
        settings.perf_analyzer,
        concurrencies=settings.concurrencies,
        p99_ms=settings.p99_ms,
        point=settings.point,
    )
    out: dict[str, dict[str, Any]] = {}
    for c in candidates:
        export = c.artifact.parent
        models.add(c.name, Contender(served_variant(c), export, read_export_spec(c.artifact), c.name))
        name = models.load(c.name)
        try:
            progress(f"served {c.name}: quality over gRPC ({len(eval_rows):,} users) ...")
            with RankingClient(server.grpc_url, model=name) as client:
                quality = evaluate(triton_scorer(client), eval_rows)
            progress(f"served {c.name}: {settings.rate:g} requests/s, open loop ...")
            point = measure_point(
                server.grpc_url, name, requests, LoadMode.OPEN, settings.rate, settings.point, seed=traffic.seed
            )
        finally:
            models.unload(c.name)
        out[c.name] = {"quality": quality, "rate_point": rate_point(point, settings.rate)}
    names = {c.name: c.name for c in candidates}
    baseline = candidates[0].name
    confirmed = models.confirm(names, settings.repeats, progress, baseline=baseline)
    for c in candidates:
        out[c.name]["sweep"] = models.measured[c.name]
        out[c.name]["throughput"] = confirmed[c.name]
    return out
