"""``tritonrec select``: plan the candidates, measure each the same way, pick one, write the report.

Steps (each reported on the progress line):

1. export every model to ONNX (or reuse its export folder) and plan the candidates
   (:mod:`tritonrec.select.candidates`);
2. in-process speed of every measurable candidate, repeated trials in a shuffled order
   (:mod:`tritonrec.select.inprocess`);
3. quality of every in-process candidate on the test split through the shared metrics module
   (:func:`tritonrec.metrics.evaluate`, the same path as ``tritonrec evaluate``);
4. the served candidates in one local Triton: quality over gRPC, latency at a fixed rate, throughput within the
   SLA side by side (:mod:`tritonrec.select.served_figures`);
5. the pick under the constraints and the Pareto frontiers (:mod:`tritonrec.select.selection`);
6. the report: JSON, Markdown, PNG plots and a self-contained HTML page (:mod:`tritonrec.select.report`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tritonrec.data.registry import PreparedData
from tritonrec.data.splits import EvalSet
from tritonrec.errors import ConfigError
from tritonrec.measure.spec_traffic import SpecTraffic
from tritonrec.measure.traffic import TrafficSpec
from tritonrec.metrics import evaluate
from tritonrec.records import Progress, Report, new_record, quiet
from tritonrec.select.candidates import Candidate, ModelArtifacts, Precision, Runtime, plan
from tritonrec.select.inprocess import InProcessSettings, measure_in_process, write_inputs
from tritonrec.select.peers import Peer
from tritonrec.select.report import write_select_report
from tritonrec.select.runtimes import open_scorer
from tritonrec.select.selection import Constraints, choose, pareto
from tritonrec.select.served_figures import ServedSettings, measure_served
from tritonrec.serving.endpoint import local_endpoint

__all__ = [
    "ModelSource",
    "SelectSettings",
    "candidate_row",
    "frontiers",
    "judge",
    "mark_reference",
    "run_select",
    "settings_dict",
]

QUALITY_KEYS = ("auc", "ndcg@10", "hr@10", "logloss")


@dataclass(frozen=True, slots=True)
class ModelSource:
    """A model to consider: its checkpoint, and optionally its export folder and INT8 graph.

    Attributes:
        name: ``base`` or the compressed checkpoint's name.
        checkpoint: the checkpoint folder.
        export_dir: its ``tritonrec export onnx`` folder (None: exported by select into its work folder).
        int8: the INT8 graphs ``tritonrec quantize`` wrote (``model_int8.onnx`` and/or ``model_int8.xml``, padded
            graphs; empty: no INT8
            candidates).
    """

    name: str
    checkpoint: Path
    export_dir: Path | None = None
    int8: tuple[Path, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SelectSettings:
    """The constraints, the traffic and how each figure is measured.

    Attributes:
        constraints: SLA, quality budget and memory cap.
        traffic: the requests of every speed figure (Beauty users, 50-500 candidates by default; for a model spec, a
            :class:`~tritonrec.measure.spec_traffic.SpecTraffic` over its evaluation queries).
        quality_users: test users (a spec's evaluation queries) scored per candidate (0 = all): a random sample
            seeded by ``seed``, and the reference is scored on all of them too (its figure beside the sample's).
        price_per_hour: machine price per hour, for the cost per million candidates.
        in_process: in-process trials.
        served: served measurements.
        runtimes: only these runtimes (None = all).
        precisions: only these precisions (None = all).
        seed: seeds the traffic and every shuffled order.
    """

    constraints: Constraints
    traffic: TrafficSpec | SpecTraffic = field(default_factory=TrafficSpec)
    quality_users: int = 0
    price_per_hour: float = 1.0
    in_process: InProcessSettings = field(default_factory=InProcessSettings)
    served: ServedSettings = field(default_factory=ServedSettings)
    runtimes: tuple[Runtime, ...] | None = None
    precisions: tuple[Precision, ...] | None = None
    seed: int = 0


def _export(source: ModelSource, data: PreparedData, work: Path, progress: Progress) -> ModelArtifacts:
    export_dir = source.export_dir
    if export_dir is None or not (export_dir / "model_ragged.onnx").is_file():
        from tritonrec.pipeline.steps import export_step

        export_dir = work / "exports" / source.name
        if not (export_dir / "model_ragged.onnx").is_file():
            progress(f"exporting {source.name} to ONNX ...")
            export_step(source.checkpoint, data, export_dir)
    return ModelArtifacts(source.name, source.checkpoint, export_dir, _int8_beside_export(source, export_dir, work))


def _int8_beside_export(source: ModelSource, export_dir: Path, work: Path) -> tuple[Path, ...]:
    """The INT8 files in a folder with the export's ``export.json``, as ``repo build`` wants a served graph.

    A file already beside an ``export.json`` (``tritonrec quantize``'s OUT folder) is used where it is; one from
    elsewhere (its ``variants/``) is copied with its external data or ``.bin`` into the work folder.
    """
    import shutil

    out = []
    for path in source.int8:
        if (path.parent / "export.json").is_file():
            out.append(path)
            continue
        folder = work / "int8" / source.name
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy2(export_dir / "export.json", folder / "export.json")
        for extra in (path.with_suffix(".bin"), path.with_name(path.name + ".data")):
            if extra.is_file():
                shutil.copy2(extra, folder / extra.name)
        out.append(Path(shutil.copy2(path, folder / path.name)))
    return tuple(out)


def _bytes(c: Candidate) -> int:
    """The bytes the runtime loads: the checkpoint's weights, or the graph with its external data or ``.bin``."""
    if c.artifact.is_dir():
        return sum(p.stat().st_size for p in c.artifact.glob("*.pt"))
    parts = (c.artifact, c.artifact.with_name(c.artifact.name + ".data"), c.artifact.with_suffix(".bin"))
    return sum(p.stat().st_size for p in dict.fromkeys(parts) if p.is_file())


def _quality(c: Candidate, rows: EvalSet, threads: int) -> dict[str, float]:
    return evaluate(open_scorer(c.runtime, c.precision, c.artifact, threads=threads), rows)


def candidate_row(
    c: Candidate,
    inproc: dict[str, Any] | None,
    quality: dict[str, float] | None,
    served: dict[str, Any] | None,
    price: float,
) -> dict[str, Any]:
    """One candidate's row of the report: its figures, where they were measured, or why it was not measured."""
    row: dict[str, Any] = {
        "name": c.name,
        "model": c.model.name,
        "runtime": c.runtime.value,
        "precision": c.precision.value,
        "artifact": str(c.artifact),
        "served": c.runtime.served,
        "lineage": dict(c.model.lineage),
    }
    failed = c.skip or (None if inproc and inproc["measured"] else "; ".join((inproc or {}).get("errors", [])))
    throughput = (served or {}).get("throughput")
    if throughput is not None and not throughput["candidates_per_second"]:
        failed = "served: " + ("; ".join(throughput["errors"][:1]) or "no successful perf_analyzer run")
    if failed or quality is None or inproc is None:
        row.update(measured=False, reason=f"not measured: {failed or 'no quality figures'}", bytes=None)
        row.update({k: None for k in (*QUALITY_KEYS, "p99_ms", "cand_per_s", "peak_rss_mib", "cost_per_million")})
        return row
    row.update(measured=True, bytes=_bytes(c), in_process=inproc, peak_rss_mib=inproc["peak_rss_mib"])
    row.update({k: quality[k] for k in QUALITY_KEYS}, quality=quality)
    if served is not None and served.get("throughput") is not None:
        t = served["throughput"]
        row.update(served_figures=served, cand_per_s=t["candidates_per_second"], p99_ms=t["p99_ms"]["median"])
        row["where"] = f"served ({t['tool']}, best concurrency within the SLA)"
    else:  # in process: throughput at the serving batch, p99 of one-user calls
        row.update(cand_per_s=inproc["batch_cand_per_s"], p99_ms=inproc["latency_p99_ms"]["median"])
        row["where"] = "in process"
        if served is not None:  # served, but perf_analyzer did not measure its throughput
            row.update(served=False, served_figures=served, where="in process (served throughput not measured)")
    median = row["cand_per_s"]["median"]
    row["cost_per_million"] = round(price / (median * 3600.0) * 1e6, 6) if median else None
    return row


def mark_reference(rows: list[dict[str, Any]]) -> str | None:
    """Give every row its quality ``delta`` from the FP32 reference (base eager, else base FP32); its name."""
    measured = [r for r in rows if r["measured"]]
    ref = next((r for r in measured if r["name"] == "base/pytorch-eager/fp32"), None)
    ref = ref or next((r for r in measured if r["model"] == "base" and r["precision"] == "fp32"), None)
    for r in rows:
        r["delta"] = (
            {k: round(r[k] - ref[k], 6) for k in QUALITY_KEYS} if ref and r["measured"] else dict.fromkeys(QUALITY_KEYS)
        )
    return ref["name"] if ref else None


def judge(
    candidates: Sequence[Candidate],
    inproc: dict[str, dict[str, Any]],
    quality: dict[str, dict[str, float]],
    served: dict[str, dict[str, Any]],
    settings: SelectSettings,
) -> tuple[list[dict[str, Any]], str | None, str | None]:
    """Every candidate's row with its quality delta from the reference; the reference's name; the pick's name."""
    rows = [
        candidate_row(c, inproc.get(c.name), quality.get(c.name), served.get(c.name), settings.price_per_hour)
        for c in candidates
    ]
    reference = mark_reference(rows)
    return rows, reference, choose(rows, settings.constraints)


def run_select(
    models: Sequence[ModelSource],
    data: PreparedData,
    out_dir: Path,
    settings: SelectSettings,
    *,
    perf_analyzer: Path | None,
    command: str,
    peers: Sequence[Peer] = (),
    progress: Progress = quiet,
) -> Report:
    """Measure every candidate of ``models`` on ``data``'s test split and the traffic; pick; write the report.

    ``peers`` (:mod:`tritonrec.select.peers`) run after the pick, each given the rows, the pick and the
    reference's quality, so a peer tool's pick is judged by the same quality budget.
    """
    if not isinstance(settings.traffic, TrafficSpec):
        raise ConfigError("the bundled model's selection draws Beauty users: give a TrafficSpec")
    traffic = settings.traffic
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    artifacts = [_export(m, data, out_dir / "work", progress) for m in models]
    candidates = plan(artifacts, runtimes=settings.runtimes, precisions=settings.precisions)
    runnable = [c for c in candidates if c.skip is None]
    rows_eval = data.test.sample(settings.quality_users, seed=settings.seed)

    inputs = write_inputs(out_dir / "work" / "inputs.npz", traffic, settings.in_process, data.spec.history_len)
    inproc = measure_in_process(runnable, inputs, settings.in_process, seed=settings.seed, progress=progress)
    quality: dict[str, dict[str, float]] = {}
    for c in runnable:
        if not c.runtime.served and inproc[c.name]["measured"]:
            progress(f"quality of {c.name} ({len(rows_eval):,} users) ...")
            quality[c.name] = _quality(c, rows_eval, settings.in_process.threads)
    served_candidates = [c for c in runnable if c.runtime.served and inproc[c.name]["measured"]]
    served: dict[str, dict[str, Any]] = {}
    server_version = None
    if served_candidates:
        with local_endpoint(served_candidates[0].model.export_dir) as server:
            from tritonrec.client import RankingClient

            with RankingClient(server.grpc_url) as client:
                server_version = client.server_version()
            served = measure_served(
                served_candidates,
                server,
                traffic,
                rows_eval,
                settings.served,
                perf_analyzer=perf_analyzer,
                progress=progress,
            )
        quality |= {name: s["quality"] for name, s in served.items()}

    rows, reference, chosen = judge(candidates, inproc, quality, served, settings)
    measured = [r for r in rows if r["measured"]]
    reference_quality = next((r["quality"] for r in measured if r["name"] == reference), None)
    sample: dict[str, Any] = {"users": len(rows_eval), "of": len(data.test), "seed": settings.seed}
    sample["reference_all_users"] = None
    if len(rows_eval) < len(data.test):  # the reference on every test user, beside its figure on the sample
        ref = next((c for c in runnable if c.name == reference and not c.runtime.served), None)
        if ref is not None:
            progress(f"quality of the reference {ref.name} on all {len(data.test):,} test users ...")
            sample["reference_all_users"] = _quality(ref, data.test, settings.in_process.threads)
    peer_entries = []
    for peer in peers:
        progress(f"peer: {type(peer).__name__} ...")
        peer_entries.append(peer(rows, chosen, reference_quality))
    record = {
        **new_record(command, tritonserver=server_version, perf_analyzer=perf_analyzer is not None),
        "settings": settings_dict(settings, {"source": traffic.source.value, "candidates": asdict(traffic.candidates)}),
        "reference": reference,
        "chosen": chosen,
        "chosen_row": next((r for r in rows if r["name"] == chosen), None),
        "candidates": rows,
        "pareto": frontiers(measured),
        "quality_users": len(rows_eval),
        "quality_sample": sample,
        "peers": peer_entries,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    return write_select_report(out_dir, record)


def frontiers(measured: list[dict[str, Any]]) -> dict[str, dict[str, list[str]]]:
    """Pareto frontiers per group: served figures and in-process figures are not on the same scale."""
    out: dict[str, dict[str, list[str]]] = {}
    for group, rows in (
        ("served", [r for r in measured if r["served"]]),
        ("in_process", [r for r in measured if not r["served"]]),
    ):
        out[group] = {
            "quality_vs_throughput": pareto(
                [(r["name"], r["cand_per_s"]["median"], r["ndcg@10"]) for r in rows], maximize_y=True
            ),
            "latency_vs_throughput": pareto(
                [(r["name"], r["cand_per_s"]["median"], r["p99_ms"]) for r in rows if r["p99_ms"] is not None],
                maximize_y=False,
            ),
        }
    return out


def settings_dict(settings: SelectSettings, traffic: dict[str, Any]) -> dict[str, Any]:
    """The settings as the record keeps them, with what the report says of the ``traffic``."""
    out = asdict(settings)
    out["runtimes"] = [r.value for r in settings.runtimes] if settings.runtimes else None
    out["precisions"] = [p.value for p in settings.precisions] if settings.precisions else None
    out["traffic"] = traffic
    return out
