"""The served half of ``bench gpu``: ``ranker_gpu`` on the bundled tritonserver, driven over gRPC.

Steps: export the model as a ``torch.export`` program; build a repository with ``ranker_gpu`` (``KIND_GPU`` on a
CUDA device, ``KIND_CPU`` on the CPU) in the asked precision; start the server; check that served scores equal
the in-process scores of the same precision on real Beauty users (the parity); then, at each concurrency, drive
it with perf_analyzer (C++, its own threads) or, without one or where perf_analyzer finds no stable measurement,
the project's load generator (:func:`tritonrec.measure.loadgen.measure_point`), N candidates per request. Each
point records throughput, latency percentiles, Triton's batch size, and what it cost: GPU busy %
(``nvidia-smi``), CPU cores used by the server with its Python stubs, and by the load generator.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tritonclient.grpc as grpcclient

from tritonrec.client import RankingClient
from tritonrec.data.splits import EvalSet
from tritonrec.errors import ConfigError, TritonRecError
from tritonrec.export.torch_export import export_program
from tritonrec.measure.gpu_monitor import GpuSampler, children_cpu_s, process_group_cpu_s, self_cpu_s
from tritonrec.measure.loadgen import (
    LoadMode,
    PointSettings,
    PreparedRequest,
    measure_point,
    prepare_requests,
    server_breakdown,
)
from tritonrec.measure.perf_analyzer import pa_input, run_perf_analyzer
from tritonrec.measure.traffic import CandidateCounts, TrafficSpec, load_user_pool
from tritonrec.metrics import score_eval_set
from tritonrec.model.ranker import RankingModel
from tritonrec.records import Progress, quiet
from tritonrec.repository import VARIANTS, Batching, VariantName, build_repository
from tritonrec.scorers.torch_device import CastMode, DeviceSettings, Execution, Precision, device_scorer
from tritonrec.scorers.triton import triton_scorer
from tritonrec.serving.server import LocalTriton

__all__ = ["SLA_P99_MS", "ServedSettings", "best_within_sla", "measure_served"]

SLA_P99_MS = 20.0
"""The latency bound the issue's goal is stated at: candidates/s served within a 20 ms p99."""
_PARITY_TOLERANCE = {"fp32": 1e-4, "bf16": 5e-2, "fp16": 1e-2}


@dataclass(frozen=True, slots=True, kw_only=True)
class ServedSettings:
    """How ``ranker_gpu`` is served and driven.

    Attributes:
        precision: what the served model computes in (autocast).
        cuda_graphs: replay CUDA graphs per bucketed batch shape (CUDA only).
        instances: model instances on the device.
        max_batch_size: most users per execution.
        max_queue_delay_us: the dynamic batcher's delay.
        concurrencies: closed-loop concurrencies, in order.
        n_candidates: candidates per request (one user each).
        requests: distinct requests drawn from real Beauty users.
        parity_users: Beauty test users scored both served and in process.
        measurement_ms: perf_analyzer's window; the load generator's window is the same.
        startup_timeout_s: how long the server may take to load the model.
    """

    precision: str = "bf16"
    cuda_graphs: bool = True
    instances: int = 2
    max_batch_size: int = 512
    max_queue_delay_us: int = 1_000
    concurrencies: tuple[int, ...] = (16, 64, 128, 256, 512)
    n_candidates: int = 200
    requests: int = 512
    parity_users: int = 512
    measurement_ms: int = 2_000
    startup_timeout_s: float = 300.0
    point: PointSettings = field(default_factory=lambda: PointSettings(warmup_s=1.0, window_s=2.0, max_windows=4))

    def __post_init__(self) -> None:
        if self.precision not in _PARITY_TOLERANCE:
            raise ConfigError(f"served precision must be one of {sorted(_PARITY_TOLERANCE)}, got {self.precision!r}")
        if not self.concurrencies or any(c < 1 for c in self.concurrencies):
            raise ConfigError("served concurrencies must be >= 1, at least one")
        if min(self.instances, self.max_batch_size, self.n_candidates, self.requests) < 1 or self.parity_users < 0:
            raise ConfigError("instances, max_batch_size, n_candidates and requests must be >= 1, parity_users >= 0")


def _variant(settings: ServedSettings, device: str) -> Any:
    sizes = tuple(b for b in (64, 128, 256, 512, 1024) if b <= settings.max_batch_size) or (settings.max_batch_size,)
    return dataclasses.replace(
        VARIANTS[VariantName.GPU],
        gpu=device != "cpu",
        precision=settings.precision,
        cuda_graphs=settings.cuda_graphs and device != "cpu",
        instances=settings.instances,
        batching=Batching(
            max_batch_size=settings.max_batch_size,
            preferred_batch_sizes=sizes[-3:],
            max_queue_delay_us=settings.max_queue_delay_us,
            max_queue_size=4_096,
        ),
    )


def _parity(model: RankingModel, rows: EvalSet, url: str, settings: ServedSettings, device: str) -> dict[str, Any]:
    local = DeviceSettings(
        device=device, precision=Precision(settings.precision), cast=CastMode.AUTOCAST, execution=Execution.EAGER
    )
    with RankingClient(url, model=VariantName.GPU.value) as client:
        served = score_eval_set(triton_scorer(client, concurrency=16), rows)
    expected = score_eval_set(device_scorer(model, local), rows)
    diff = np.abs(served - expected)
    tolerance = _PARITY_TOLERANCE[settings.precision]
    return {
        "users": len(rows),
        "reference": f"in process, {local.label}",
        "max_abs_diff": float(f"{diff.max():.3g}"),
        "mean_abs_diff": float(f"{diff.mean():.3g}"),
        "tolerance": tolerance,
        "passed": bool(diff.max() <= tolerance),
    }


def _statistics(url: str, model: str) -> dict[str, Any]:
    client = grpcclient.InferenceServerClient(url)
    try:
        stats: dict[str, Any] = client.get_inference_statistics(model, as_json=True)
    finally:
        client.close()
    return stats


def _drive(
    url: str,
    requests: list[PreparedRequest],
    concurrency: int,
    settings: ServedSettings,
    perf_analyzer: Path | None,
    timeout_s: float,
) -> tuple[dict[str, Any], float]:
    """One point by perf_analyzer (or the load generator); returns its figures and the generator's CPU seconds."""
    model = VariantName.GPU.value
    if perf_analyzer is not None:
        before = children_cpu_s()
        result = run_perf_analyzer(
            perf_analyzer,
            url,
            model,
            pa_input(requests),
            concurrency=concurrency,
            measurement_ms=settings.measurement_ms,
            timeout_s=timeout_s,
        )
        if "error" not in result:
            return {"generator": "perf_analyzer", **result}, children_cpu_s() - before
        failed = result  # e.g. no stable measurement: the load generator measures the point instead
    else:
        failed = None
    before = self_cpu_s()
    point = measure_point(url, model, requests, LoadMode.CLOSED, float(concurrency), settings.point)
    keep = ("requests_per_second", "candidates_per_second", "latency_ms", "errors", "stable", "first_errors")
    figures = {"generator": "tritonrec loadgen", **{k: point[k] for k in keep}}
    if failed is not None:
        figures["perf_analyzer_error"] = str(failed["error"])[-400:]
    return figures, self_cpu_s() - before


def _measure_point(
    server: LocalTriton,
    requests: list[PreparedRequest],
    concurrency: int,
    settings: ServedSettings,
    perf_analyzer: Path | None,
    timeout_s: float,
) -> dict[str, Any]:
    model, pgid = VariantName.GPU.value, server.pid or 0
    stats_before, server_before, started = (
        _statistics(server.grpc_url, model),
        process_group_cpu_s(pgid),
        time.perf_counter(),
    )
    with GpuSampler() as gpu:
        figures, generator_cpu = _drive(server.grpc_url, requests, concurrency, settings, perf_analyzer, timeout_s)
    wall = time.perf_counter() - started
    server_cpu = process_group_cpu_s(pgid) - server_before
    batch = server_breakdown(stats_before, _statistics(server.grpc_url, model))
    return {
        "concurrency": concurrency,
        **figures,
        "mean_batch_users": batch["mean_batch_users"],
        "executions": batch["executions"],
        "gpu": gpu.summary(),
        "server_cpu_cores": round(server_cpu / wall, 2),
        "generator_cpu_cores": round(generator_cpu / wall, 2),
        "wall_s": round(wall, 1),
    }


def measure_served(
    model: RankingModel,
    rows: EvalSet,
    work_dir: Path,
    settings: ServedSettings,
    *,
    device: str,
    perf_analyzer: Path | None = None,
    time_left: Callable[[], float] = lambda: float("inf"),
    progress: Progress = quiet,
) -> dict[str, Any]:
    """Serve ``model`` as ``ranker_gpu`` on ``device`` and measure it (see the module docstring).

    Args:
        model: the ranker to serve (exported here).
        rows: evaluation rows for the parity check (their first ``settings.parity_users``).
        work_dir: export, repository and server log go here.
        settings: how to serve and drive it.
        device: ``cuda`` (``KIND_GPU``) or ``cpu`` (``KIND_CPU``).
        perf_analyzer: its binary; None drives with the project's load generator.
        time_left: seconds left of the caller's budget; concurrencies past it are skipped.
        progress: where to say what is running.

    Returns:
        ``export`` (parity of the program), ``variant``, ``parity``, ``points`` and the server log's path; with
        ``error`` (and the log's tail) when the server did not start.
    """
    progress("served: exporting the torch.export program ...")
    export_dir = work_dir / "export"
    exported = export_program(model, export_dir)
    variant = _variant(settings, device)
    repo = work_dir / "repository"
    build_repository(repo, model.spec, [variant], export_dir=export_dir)
    result: dict[str, Any] = {
        "export": exported.parity.to_dict(),
        "variant": {
            "name": variant.name,
            "precision": variant.precision,
            "kind_gpu": variant.gpu,
            "instances": variant.instances,
            "cuda_graphs": variant.cuda_graphs,
            "max_batch_size": variant.batching.max_batch_size,
            "max_queue_delay_us": variant.batching.max_queue_delay_us,
        },  # fmt: skip
        "server_log": str(work_dir / "server.log"),
        "points": [],
    }
    pool = load_user_pool(
        TrafficSpec(candidates=CandidateCounts.fixed(settings.n_candidates)), history_len=model.spec.history_len
    )
    server = LocalTriton(
        repo,
        log_file=work_dir / "server.log",
        models=[variant.name],
        startup_timeout_s=settings.startup_timeout_s,
        extra_args=["--backend-config=python,shm-default-byte-size=8388608"],
    )
    progress(f"served: starting tritonserver with {variant.name} ({variant.precision}, {device}) ...")
    try:
        server.start()
    except TritonRecError as e:
        result["error"] = f"{type(e).__name__}: {e}"
        result["server_log_tail"] = server.log_tail(60)
        return result
    try:
        progress("served: parity against in-process scores ...")
        try:
            result["parity"] = _parity(model, rows.head(settings.parity_users), server.grpc_url, settings, device)
        except Exception as e:  # noqa: BLE001 - recorded; the load points say whether it serves at all
            result["parity"] = {"error": f"{type(e).__name__}: {e}"[:600]}
        with RankingClient(server.grpc_url, model=variant.name) as client:
            requests = prepare_requests(pool.sample(settings.requests), client.limits(), variant.name)
            result["tritonserver"] = client.server_version()
        for concurrency in settings.concurrencies:
            if time_left() <= 0:
                result["points"].append({"concurrency": concurrency, "skipped": "time budget spent"})
                continue
            progress(f"served: concurrency {concurrency} ...")
            timeout = max(30.0, min(time_left(), 120.0))
            try:
                point = _measure_point(server, requests, concurrency, settings, perf_analyzer, timeout)
            except Exception as e:  # noqa: BLE001 - one failed point is a result; the next one still runs
                point = {"concurrency": concurrency, "error": f"{type(e).__name__}: {e}"[:600]}
            result["points"].append(point)
    finally:
        server.stop()
        result["server_log_tail"] = server.log_tail(30) if result.get("parity", {}).get("error") else None
    return result


def best_within_sla(points: list[dict[str, Any]], p99_ms: float = SLA_P99_MS) -> dict[str, Any] | None:
    """The point with the most candidates/s whose p99 latency is within ``p99_ms`` (None if none is)."""
    ok = [
        p
        for p in points
        if p.get("candidates_per_second") and (p.get("latency_ms") or {}).get("p99") is not None
        and p["latency_ms"]["p99"] <= p99_ms and not p.get("errors")
    ]  # fmt: skip
    return max(ok, key=lambda p: p["candidates_per_second"]) if ok else None
