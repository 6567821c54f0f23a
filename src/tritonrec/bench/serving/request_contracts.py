"""The request-contract measurement: does a user's history travel once per request, or once per candidate row?

Both contracts feed the same ONNX graph, measured side by side in one run on one machine:

- ``per_request``: one request = one user; ``history [1, L]`` + ``candidates [1, N]``; the model encodes the
  history once and scores all N candidates against it;
- ``per_row``: one request = N rows; ``history [N, L]`` (the same history copied onto every row) +
  ``candidates [N, 1]``; the model encodes the history N times.

Measured: bytes of the gRPC ``ModelInferRequest`` (the protobuf Triton receives), in-process ONNX Runtime
throughput (candidates/s, ``users_per_call`` users per session run), and end-to-end throughput through the real
tritonserver (``ranker_cpu``, dynamic batching) at a fixed client concurrency.
"""

from __future__ import annotations

import dataclasses
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import tritonclient.grpc as grpcclient
from tritonclient.grpc import service_pb2

from tritonrec.client.core import infer_inputs
from tritonrec.contract import DEFAULT_MODEL, SCORES
from tritonrec.data.feature_spec import FeatureSpec
from tritonrec.export.manifest import read_export_spec
from tritonrec.records import Report, markdown_header, new_record, write_report
from tritonrec.repository import VARIANTS, Batching, VariantName, build_repository
from tritonrec.serving.server import LocalTriton

__all__ = ["ContractSettings", "request_bytes", "run_contract_bench", "write_markdown"]

IntArray = npt.NDArray[np.int64]
CONTRACTS = ("per_request", "per_row")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ContractSettings:
    """What to measure.

    Attributes:
        n_candidates: ``N`` candidates per user.
        history_len: ``L`` history items per user (the graph's L; histories are full).
        users: distinct synthetic users (random real item ids) cycled through.
        users_per_call: users per in-process session run.
        in_process_s: time budget per in-process measurement.
        triton_requests: users sent through Triton per contract.
        concurrency: gRPC requests in flight.
        seed: seeds the random ids.
    """

    n_candidates: int = 200
    history_len: int = 50
    users: int = 256
    users_per_call: int = 32
    in_process_s: float = 8.0
    triton_requests: int = 600
    concurrency: int = 8
    seed: int = 0


def _arrays(contract: str, history: IntArray, candidates: IntArray) -> dict[str, IntArray]:
    """Inputs of one batch of users ``history [U, L]``, ``candidates [U, N]`` under ``contract``."""
    if contract == "per_request":
        return {"history": history, "candidates": candidates}
    n = candidates.shape[1]
    return {"history": np.repeat(history, n, axis=0), "candidates": candidates.reshape(-1, 1)}


def request_bytes(inputs: dict[str, IntArray], model: str = DEFAULT_MODEL) -> int:
    """Serialized size of the gRPC ``ModelInferRequest`` carrying ``inputs`` (raw tensor contents)."""
    request = service_pb2.ModelInferRequest(model_name=model)
    for name, arr in inputs.items():
        request.inputs.add(name=name, datatype="INT64", shape=list(arr.shape))
        request.raw_input_contents.append(np.ascontiguousarray(arr).tobytes())
    return int(request.ByteSize())


def _timed(run: Callable[[int], None], n_batches: int, budget_s: float) -> tuple[int, float]:
    run(0)  # warm up
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < budget_s:
        run(calls % n_batches)
        calls += 1
    return calls, time.perf_counter() - started


def _in_process(path: Path, users: tuple[IntArray, IntArray], settings: ContractSettings) -> dict[str, Any]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    step = settings.users_per_call
    n_batches = len(users[0]) // step
    out: dict[str, Any] = {}
    for contract in CONTRACTS:
        batches = [
            _arrays(contract, users[0][i * step : (i + 1) * step], users[1][i * step : (i + 1) * step])
            for i in range(n_batches)
        ]

        def run(i: int, batches: list[dict[str, IntArray]] = batches) -> None:
            session.run([SCORES], batches[i])

        calls, elapsed_s = _timed(run, n_batches, settings.in_process_s)
        out[contract] = {
            "candidates_per_second": round(calls * step * settings.n_candidates / elapsed_s),
            "session_runs": calls,
            "elapsed_s": round(elapsed_s, 2),
        }
    return out


def _drive(url: str, model: str, requests: list[dict[str, IntArray]], concurrency: int) -> dict[str, Any]:
    client = grpcclient.InferenceServerClient(url)
    window = threading.BoundedSemaphore(concurrency)
    latencies: list[float] = []
    errors: list[str] = []
    finished = threading.Event()
    lock = threading.Lock()

    def send(arrays: dict[str, IntArray]) -> None:
        inputs = infer_inputs(arrays)
        sent = time.perf_counter()

        def done(result: Any, error: Any) -> None:
            with lock:
                latencies.append(time.perf_counter() - sent)
                if error is not None:
                    errors.append(str(error))
                if len(latencies) == len(requests):
                    finished.set()
            window.release()

        client.async_infer(model, inputs, done)

    started = time.perf_counter()
    for arrays in requests:
        window.acquire()
        send(arrays)
    finished.wait(timeout=600)
    elapsed_s = time.perf_counter() - started
    stats = client.get_inference_statistics(model, as_json=True)["model_stats"][0]
    client.close()
    ms = np.asarray(latencies) * 1e3
    return {
        "requests": len(requests),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "elapsed_s": round(elapsed_s, 2),
        "requests_per_second": round(len(requests) / elapsed_s, 1),
        "latency_ms": {"p50": round(float(np.percentile(ms, 50)), 2), "p99": round(float(np.percentile(ms, 99)), 2)},
        "executions": int(stats.get("execution_count", 0)),
    }


def _through_triton(
    export_dir: Path, spec: FeatureSpec, users: tuple[IntArray, IntArray], settings: ContractSettings, work: Path
) -> dict[str, Any]:
    n = settings.n_candidates
    base = VARIANTS[VariantName.CPU]
    # per_row requests carry N rows each, so its batch limit is N times larger: both batch up to 64 users.
    models = {
        "per_request": dataclasses.replace(base, name="contract_per_request"),
        "per_row": dataclasses.replace(
            base,
            name="contract_per_row",
            batching=Batching(max_batch_size=64 * n, preferred_batch_sizes=(16 * n, 32 * n, 64 * n)),
        ),
    }
    build_repository(work, spec, list(models.values()), export_dir=export_dir)
    out: dict[str, Any] = {}
    with LocalTriton(
        work, log_file=work / "server.log", startup_timeout_s=300, models=[v.name for v in models.values()]
    ) as server:
        for contract, variant in models.items():
            requests = [
                _arrays(contract, users[0][i : i + 1], users[1][i : i + 1])
                for i in (k % len(users[0]) for k in range(settings.triton_requests))
            ]
            result = _drive(server.grpc_url, variant.name, requests, settings.concurrency)
            result["candidates_per_second"] = round(result["requests_per_second"] * n)
            out[contract] = result
    return out


def run_contract_bench(export_dir: Path, out_dir: Path, settings: ContractSettings, *, command: str) -> Report:
    """Measure both contracts for the model exported in ``export_dir``; write contract.json and contract.md."""
    spec = read_export_spec(export_dir / "model.onnx")
    if spec.history_len != settings.history_len:
        settings = dataclasses.replace(settings, history_len=spec.history_len)
    rng = np.random.default_rng(settings.seed)
    users = (
        rng.integers(1, spec.n_items + 1, (settings.users, settings.history_len), dtype=np.int64),
        rng.integers(1, spec.n_items + 1, (settings.users, settings.n_candidates), dtype=np.int64),
    )
    one_user = (users[0][:1], users[1][:1])
    report: dict[str, Any] = {
        **new_record(command),
        "settings": dataclasses.asdict(settings),
        "model": {"export_dir": str(export_dir), "feature_spec": spec.to_dict()},
        "request_bytes": {c: request_bytes(_arrays(c, *one_user)) for c in CONTRACTS},
        "in_process_onnxruntime": _in_process(export_dir / "model.onnx", users, settings),
    }
    with tempfile.TemporaryDirectory(prefix="tritonrec-contract-") as work:
        report["triton"] = _through_triton(export_dir, spec, users, settings, Path(work))
    return write_report(out_dir, "contract", report, write_markdown(report))


def _ratio(report: dict[str, Any], section: str) -> float:
    part = report[section]
    return float(part["per_request"]["candidates_per_second"] / max(part["per_row"]["candidates_per_second"], 1))


def write_markdown(report: dict[str, Any]) -> str:
    """Render the contract report as a Markdown table (every figure from ``report``)."""
    s = report["settings"]
    lines = [
        *markdown_header(
            f"Request contract: N={s['n_candidates']} candidates, L={s['history_len']} history items",
            report,
        ),
        "| contract | request bytes | in-process ORT cand/s | Triton cand/s | Triton p50 ms | Triton p99 ms "
        "| Triton executions |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in CONTRACTS:
        t, local = report["triton"][c], report["in_process_onnxruntime"][c]
        lines.append(
            f"| {c} | {report['request_bytes'][c]:,} | {local['candidates_per_second']:,} "
            f"| {t['candidates_per_second']:,} | {t['latency_ms']['p50']} | {t['latency_ms']['p99']} "
            f"| {t['executions']:,} |"
        )
    per_request, per_row = report["request_bytes"]["per_request"], report["request_bytes"]["per_row"]
    lines += [
        "",
        f"per_row sends {per_row / per_request:.1f}x the bytes; per_request scores "
        f"{_ratio(report, 'in_process_onnxruntime'):.1f}x the candidates/s in process and "
        f"{_ratio(report, 'triton'):.1f}x through Triton (concurrency {s['concurrency']}).",
        "",
    ]
    return "\n".join(lines)
