"""NVIDIA's perf_analyzer, fed with real requests, its CSV read back into the same figures our harness reports.

perf_analyzer (C++, from the tritonclient 2.50 wheel; ``bench/tools/install_perf_analyzer.sh``) is the reference
load generator. It gets the very requests our sweep sends (``--input-data`` JSON: for the bundled model one entry per
request with its own shape, histories of real lengths, varying candidate counts; for a spec's model
:func:`~tritonrec.measure.spec_traffic.feature_input_data`), at a fixed concurrency or a Poisson request rate, and
reports throughput, latency percentiles and Triton's server-side averages for the same requests.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from tritonrec.errors import ConfigError

if TYPE_CHECKING:
    from tritonrec.measure.loadgen import PreparedRequest
    from tritonrec.measure.spec_traffic import FeatureRequest

__all__ = ["PaInput", "find_perf_analyzer", "input_data", "pa_input", "run_perf_analyzer"]

IntArray = npt.NDArray[np.int64]
LOCAL_INSTALL = Path(".tools/perf_analyzer/perf_analyzer")


def find_perf_analyzer(path: Path | None = None) -> Path | None:
    """The perf_analyzer to run: ``path``, else ``.tools/perf_analyzer/perf_analyzer``, else on ``PATH``."""
    if path is not None:
        if not path.exists():
            raise ConfigError(f"no perf_analyzer at {path}; install: bash bench/tools/install_perf_analyzer.sh")
        return path
    if LOCAL_INSTALL.exists():
        return LOCAL_INSTALL.resolve()
    found = shutil.which("perf_analyzer")
    return Path(found) if found else None


def input_data(requests: list[tuple[IntArray, IntArray]]) -> dict[str, Any]:
    """perf_analyzer's ``--input-data`` JSON for requests ``(history [L], candidates [N])`` (batch 1 each)."""
    rows = [
        {
            "history": {"content": h.tolist(), "shape": [int(h.size)]},
            "candidates": {"content": c.tolist(), "shape": [int(c.size)]},
        }
        for h, c in requests
    ]
    return {"data": rows}


@dataclass(frozen=True, slots=True)
class PaInput:
    """What perf_analyzer replays: its ``--input-data`` JSON, the batch size ``-b`` and the candidates per request."""

    data: dict[str, Any]
    batch: int
    candidates_per_request: float


def pa_input(requests: list[PreparedRequest] | list[FeatureRequest]) -> PaInput:
    """The :class:`PaInput` of our generator's requests (the bundled model's, or a spec's)."""
    from tritonrec.measure.spec_traffic import FeatureRequest, feature_input_data

    mean = float(np.mean([r.n_candidates for r in requests]))
    if requests and isinstance(requests[0], FeatureRequest):
        data, batch = feature_input_data([r for r in requests if isinstance(r, FeatureRequest)])
        return PaInput(data, batch, mean)
    return PaInput(input_data([(r.history, r.candidates) for r in requests]), 1, mean)  # type: ignore[union-attr]


def run_perf_analyzer(
    binary: Path,
    url: str,
    model: str,
    requests: PaInput,
    *,
    concurrency: int | None = None,
    request_rate: float | None = None,
    measurement_ms: int = 4000,
    stability_pct: int = 25,
    timeout_s: float = 600,
) -> dict[str, Any]:
    """Run perf_analyzer once at ``concurrency`` (closed loop) or ``request_rate`` (Poisson, open loop).

    Returns requests/s, candidates/s, p50/p90/p95/p99 ms and Triton's queue/compute averages, or ``{"error": ...}``
    with the tail of its output when it fails (for example when it never reaches stability).
    """
    if (concurrency is None) == (request_rate is None):
        raise ConfigError("give exactly one of concurrency and request_rate")
    with tempfile.TemporaryDirectory(prefix="tritonrec-pa-") as work:
        data = Path(work) / "input.json"
        data.write_text(json.dumps(requests.data))
        report = Path(work) / "pa.csv"
        load = (
            ["--concurrency-range", f"{concurrency}:{concurrency}"]
            if concurrency is not None
            else ["--request-rate-range", f"{request_rate}:{request_rate}", "--request-distribution", "poisson"]
        )
        cmd = [
            str(binary), "-m", model, "-u", url, "-i", "grpc", "-b", str(requests.batch), "--input-data", str(data),
            *load,
            "-p", str(measurement_ms), "-f", str(report),
            # stability is judged on throughput and average latency (no --percentile: a p99 is too noisy to
            # converge on a shared machine); the CSV still carries p50-p99. Accept more spread than the default 10%.
            "--stability-percentage", str(stability_pct), "--max-trials", "10",
        ]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        if done.returncode != 0 or not report.exists():
            return {"error": (done.stdout + done.stderr)[-800:], "command": _shown(cmd)}
        row = next(csv.DictReader(report.open()))
    rps = float(row["Inferences/Second"]) / requests.batch  # perf_analyzer counts inferences: batch x requests
    mean_candidates = requests.candidates_per_request
    return {
        "requests_per_second": round(rps, 1),
        "candidates_per_second": round(rps * mean_candidates, 1),
        "latency_ms": {f"p{q}": round(float(row[f"p{q} latency"]) / 1e3, 2) for q in (50, 90, 95, 99)},
        # Triton's own averages for the same requests: where the time went on the server
        "server": {
            "queue_ms": round(float(row["Server Queue"]) / 1e3, 3),
            "compute_input_ms": round(float(row["Server Compute Input"]) / 1e3, 3),
            "compute_infer_ms": round(float(row["Server Compute Infer"]) / 1e3, 3),
            "compute_output_ms": round(float(row["Server Compute Output"]) / 1e3, 3),
        },
        "command": _shown(cmd),
    }


def _shown(cmd: list[str]) -> str:
    """The command as recorded in reports, temporary paths replaced by their names."""
    return " ".join(["perf_analyzer", *(f"<{Path(a).name}>" if a.startswith("/") else a for a in cmd[1:])])
