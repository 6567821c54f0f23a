"""``tritonrec select --spec``: a team's own model through the same selection as the bundled one.

The steps of :mod:`tritonrec.select.run`, keyed by a model spec instead of a checkpoint:

1. plan the candidates (:func:`tritonrec.select.spec_candidates.spec_plan`): the spec's export and the graphs given;
2. in-process speed of every measurable candidate on the spec's own evaluation queries, repeated trials in a
   shuffled order, one process per trial (:func:`tritonrec.select.inprocess.measure_in_process`);
3. quality of every in-process candidate on the evaluation rows by the shared metrics module
   (:func:`tritonrec.metrics.evaluate_rows`, the path of ``tritonrec evaluate --spec``);
4. the served candidates in one local Triton, each a ``<name>_cpu`` variant of its own (explicit model control):
   quality with one request per evaluation query over gRPC, latency at a fixed rate, and throughput within the SLA
   by perf_analyzer on requests drawn from the evaluation rows (:mod:`tritonrec.measure.spec_traffic`), then side by
   side in shuffled rounds (:class:`tritonrec.measure.served_configs.ServedModels`);
5. the pick under the same constraints and rules, the Pareto frontiers, the same report.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from tritonrec.errors import ConfigError
from tritonrec.measure.loadgen import LoadMode, measure_point
from tritonrec.measure.points import Target
from tritonrec.measure.served_configs import ServedModels, SpecContender
from tritonrec.measure.spec_traffic import FeatureRequest, SpecTraffic, served_spec_requests, spec_traffic_record
from tritonrec.metrics import score_rows, spec_quality
from tritonrec.records import Progress, Report, new_record, quiet
from tritonrec.repository.spec_variants import SpecVariant, SpecVariantKind
from tritonrec.select.candidates import Candidate, Runtime
from tritonrec.select.inprocess import measure_in_process, write_spec_inputs
from tritonrec.select.peers import Peer
from tritonrec.select.report import write_select_report
from tritonrec.select.run import SelectSettings, frontiers, judge, settings_dict
from tritonrec.select.served_figures import rate_point
from tritonrec.select.spec_candidates import eager_artifact, spec_plan
from tritonrec.serving.endpoint import empty_endpoint
from tritonrec.serving.server import LocalTriton
from tritonrec.spec.model_spec import ModelSpec
from tritonrec.spec.rows import SpecRows

__all__ = [
    "check_export_matches",
    "run_spec_select",
    "sample_queries",
    "selected_spec_variant",
    "served_contender",
]


def sample_queries(rows: SpecRows, n: int, seed: int) -> SpecRows:
    """``n`` queries of ``rows`` drawn at random (seeded), their rows in the file's order; all of them if n is 0."""
    ids = np.unique(rows.query_ids)
    if n <= 0 or n >= len(ids):
        return rows
    keep = np.random.default_rng(seed).choice(ids, size=n, replace=False)
    return rows.take(np.flatnonzero(np.isin(rows.query_ids, keep)))


def _quality(spec: ModelSpec, c: Candidate, rows: SpecRows, threads: int) -> dict[str, float]:
    from tritonrec.scorers.rows import spec_scorer

    scorer = spec_scorer(spec, c.runtime.rows_runtime, c.artifact, threads=threads)
    return spec_quality(spec, score_rows(scorer, rows), rows)


STALE_EXPORT_ATOL = 1e-3
"""Largest |eager - exported FP32| score on the first queries before the export counts as made from other weights."""


def check_export_matches(spec: ModelSpec, export_dir: Path, rows: SpecRows, *, queries: int = 64) -> float:
    """The largest |eager - ``model.onnx``| score over the first ``queries`` queries (0.0 if the spec has no module).

    Raises:
        ConfigError: it exceeds :data:`STALE_EXPORT_ATOL`: the export was made from other weights (retrained since),
            so its quality would be judged against the wrong reference.
    """
    from tritonrec.scorers.rows import spec_scorer

    if eager_artifact(spec) is None:
        return 0.0
    head = rows.head_queries(queries)
    eager = score_rows(spec_scorer(spec, "eager"), head)
    exported = score_rows(spec_scorer(spec, "onnxruntime", export_dir / "model.onnx"), head)
    difference = float(np.abs(eager - exported).max(initial=0.0))
    if difference > STALE_EXPORT_ATOL:
        raise ConfigError(
            f"{export_dir / 'model.onnx'} scores up to {difference:.3g} away from the spec's model on its first "
            f"{queries} evaluation queries: it was exported from other weights. Re-export: tritonrec export onnx "
            f"--spec {spec.path} --out {export_dir}"
        )
    return difference


def served_contender(spec: ModelSpec, c: Candidate, warmup: SpecRows) -> SpecContender:
    """The ``<name>_cpu`` variant that serves ``c``'s graph (its file, precision and runtime)."""
    variant = SpecVariant(
        kind=SpecVariantKind.CPU, precision=c.precision.value, runtime=c.runtime.cpu_runtime, file=c.artifact.name
    )
    return SpecContender(variant, c.artifact.parent, spec, c.name, warmup)


def selected_spec_variant(report: Path, spec: ModelSpec) -> tuple[SpecVariant, Path]:
    """The ``<name>_cpu`` variant of the candidate a ``select --spec`` report on ``spec`` chose, and its graph's folder.

    Raises:
        ConfigError: the file is not a ``select --spec`` report, it is another spec's, it chose nothing, or the
            pick's graph is gone.
    """
    import json

    try:
        record = json.loads(report.read_text())
        row, spec_name = record["chosen_row"], record["spec"]["name"]
    except (OSError, KeyError, TypeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{report} is not a `tritonrec select --spec` report: {e}") from e
    if spec_name != spec.name:
        raise ConfigError(f"{report} selected for the spec {spec_name!r}, not {spec.name!r}")
    if row is None:
        raise ConfigError(f"{report}: no candidate met every constraint, so there is nothing to build")
    artifact = Path(row["artifact"])
    if not artifact.is_file():
        raise ConfigError(f"{report}: the pick's graph {artifact} is gone; rerun `tritonrec select --spec`")
    runtime = Runtime(row["runtime"])
    variant = SpecVariant(
        kind=SpecVariantKind.CPU, precision=row["precision"], runtime=runtime.cpu_runtime, file=artifact.name
    )
    return variant, artifact.parent


def _measure_served(
    spec: ModelSpec,
    candidates: Sequence[Candidate],
    server: LocalTriton,
    rows: SpecRows,
    settings: SelectSettings,
    traffic: SpecTraffic,
    *,
    perf_analyzer: Path | None,
    progress: Progress,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Each served candidate's quality, latency at the fixed rate and throughput within the SLA; the traffic."""
    from tritonrec.scorers.rows import served_query_scores

    s = settings.served
    target = Target.at(server.grpc_url, metrics_url=server.metrics_url, perf_analyzer=perf_analyzer)
    models = ServedModels(
        server, target, [], s.perf_analyzer, concurrencies=s.concurrencies, p99_ms=s.p99_ms, point=s.point
    )
    for c in candidates:
        models.add(c.name, served_contender(spec, c, rows))
    traffic_record: dict[str, Any] = {}

    def draw(name: str) -> list[FeatureRequest]:
        requests, drawn = served_spec_requests(
            server.grpc_url, name, spec, s.requests, traffic, one_batch_size=perf_analyzer is not None
        )
        traffic_record.update(spec_traffic_record(spec, drawn, requests))
        return requests

    models.requests_from(candidates[0].name, draw)
    out: dict[str, dict[str, Any]] = {}
    for c in candidates:
        name = models.load(c.name)
        try:
            progress(f"served {c.name}: quality over gRPC ({rows.n_queries:,} queries) ...")
            quality = spec_quality(spec, served_query_scores(server.grpc_url, name, rows), rows)
            progress(f"served {c.name}: {s.rate:g} requests/s, open loop ...")
            point = measure_point(
                server.grpc_url, name, models.requests, LoadMode.OPEN, s.rate, s.point, seed=settings.seed
            )
        finally:
            models.unload(c.name)
        out[c.name] = {"quality": quality, "rate_point": rate_point(point, s.rate)}
    confirmed = models.confirm({c.name: c.name for c in candidates}, s.repeats, progress, baseline=candidates[0].name)
    for c in candidates:
        out[c.name] |= {"sweep": models.measured[c.name], "throughput": confirmed[c.name]}
    return out, traffic_record


def run_spec_select(
    spec: ModelSpec,
    export_dir: Path,
    out_dir: Path,
    settings: SelectSettings,
    *,
    graphs: Mapping[str, Path] | None = None,
    perf_analyzer: Path | None,
    command: str,
    peers: Sequence[Callable[[SpecRows], Peer]] = (),
    progress: Progress = quiet,
) -> Report:
    """Measure every candidate of the spec's model and of ``graphs`` (name -> file) on its evaluation rows; pick.

    ``peers`` make a peer tool's run (:class:`~tritonrec.select.peers.SpecNavigatorPeer`) from the evaluation rows
    every candidate is judged on; each runs after the pick and is held to the same quality budget.

    Raises:
        ConfigError: the export or a graph is missing (:func:`~tritonrec.select.spec_candidates.spec_plan`).
        DataError: the spec's rows cannot be read.
    """
    from tritonrec.pipeline.spec_steps import spec_rows

    if not isinstance(settings.traffic, SpecTraffic):
        raise ConfigError("a spec's selection draws its requests from its evaluation rows: give a SpecTraffic")
    spec_traffic = settings.traffic
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    candidates = spec_plan(spec, export_dir, graphs, runtimes=settings.runtimes, precisions=settings.precisions)
    runnable = [c for c in candidates if c.skip is None]
    every = spec_rows(spec)
    progress("checking the export against the spec's model ...")
    export_difference = check_export_matches(spec, export_dir, every)
    rows = sample_queries(every, settings.quality_users, settings.seed)
    inputs = write_spec_inputs(out_dir / "work" / "inputs.npz", every, settings.in_process)
    inproc = measure_in_process(
        runnable, inputs, settings.in_process, seed=settings.seed, spec=spec.path, progress=progress
    )
    threads = settings.in_process.threads
    quality: dict[str, dict[str, float]] = {}
    for c in runnable:
        if not c.runtime.served and inproc[c.name]["measured"]:
            progress(f"quality of {c.name} ({rows.n_queries:,} queries) ...")
            quality[c.name] = _quality(spec, c, rows, threads)
    served_candidates = [c for c in runnable if c.runtime.served and inproc[c.name]["measured"]]
    served: dict[str, dict[str, Any]] = {}
    traffic: dict[str, Any] = {}
    server_version = None
    if served_candidates:
        with empty_endpoint() as server:
            from tritonrec.client import RankingClient

            with RankingClient(server.grpc_url) as client:
                server_version = client.server_version()
            served, traffic = _measure_served(
                spec,
                served_candidates,
                server,
                rows,
                settings,
                spec_traffic,
                perf_analyzer=perf_analyzer,
                progress=progress,
            )
        quality |= {name: s["quality"] for name, s in served.items()}

    table, reference, chosen = judge(candidates, inproc, quality, served, settings)
    measured = [r for r in table if r["measured"]]
    sample: dict[str, Any] = {
        "unit": "evaluation queries",
        "users": rows.n_queries,
        "of": every.n_queries,
        "seed": settings.seed,
        "reference_all_users": None,
    }
    if rows.n_queries < every.n_queries:
        ref = next((c for c in runnable if c.name == reference and not c.runtime.served), None)
        if ref is not None:
            progress(f"quality of the reference {ref.name} on all {every.n_queries:,} evaluation queries ...")
            sample["reference_all_users"] = _quality(spec, ref, every, threads)
    reference_quality = next((r["quality"] for r in measured if r["name"] == reference), None)
    peer_entries = []
    for make in peers:
        peer = make(rows)
        progress(f"peer: {type(peer).__name__} ...")
        peer_entries.append(peer(table, chosen, reference_quality))
    record = {
        **new_record(command, tritonserver=server_version, perf_analyzer=perf_analyzer is not None),
        "spec": {"name": spec.name, "path": str(spec.path), "layout": spec.layout.value, "export": str(export_dir)}
        | {"export_max_abs_diff": export_difference},
        "settings": settings_dict(settings, traffic or {"source": f"spec {spec.name}", **asdict(spec_traffic)}),
        "reference": reference,
        "chosen": chosen,
        "chosen_row": next((r for r in table if r["name"] == chosen), None),
        "candidates": table,
        "pareto": frontiers(measured),
        "quality_users": rows.n_queries,
        "quality_sample": sample,
        "peers": peer_entries,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    return write_select_report(out_dir, record)
