"""``tritonrec bench client``: what our clients cost per request, side by side with perf_analyzer, one server.

Every tool sends the same requests (one user: ``history [1, L]``, ``candidates [1, N]``, real Beauty users) to
the same ``ranker_cpu`` on the bundled tritonserver, at each concurrency, ``repeats`` times in a seeded random
order. Each client run is its own process (``tritonrec.measure.client_worker``), so its CPU seconds are its own:
the report gives requests/s, latency and client CPU milliseconds per request, as median (min-max), and each
tool's requests/s relative to perf_analyzer's (NVIDIA's C++ generator: the reference for what the server takes).
With ``baseline_src`` (another checkout's ``src/``), the same clients of that tree run too: a before/after.
One more run per client under cProfile shows where its CPU goes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tritonrec.client import RankingClient
from tritonrec.contract import DEFAULT_MODEL
from tritonrec.errors import ConfigError
from tritonrec.measure import client_worker
from tritonrec.measure.loadgen import LoadMode, prepare_requests
from tritonrec.measure.points import PaSettings, Target, run_theirs
from tritonrec.measure.traffic import CandidateCounts, TrafficSpec, load_user_pool
from tritonrec.records import Progress, Report, markdown_header, new_record, quiet, write_report
from tritonrec.repository import VARIANTS
from tritonrec.serving.endpoint import local_endpoint
from tritonrec.spread import Spread, compare, shuffled_trials, spread

__all__ = ["ClientBenchSettings", "run_client_bench", "write_markdown"]

IntArray = npt.NDArray[np.int64]
MODEL = DEFAULT_MODEL
SRC = Path(__file__).resolve().parents[3]  # the src/ folder this tritonrec runs from
FLOOR = "grpc.aio floor"  # no client: bare grpc.aio calls on pre-serialized requests (client_worker's docstring)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientBenchSettings:
    """What to measure.

    Attributes:
        concurrencies: requests in flight.
        requests: requests per client run.
        n_candidates: ``N`` per user.
        users: distinct Beauty users cycled.
        repeats: runs per tool and concurrency, in a seeded random order.
        seed: seeds the users and the order.
        perf_analyzer: perf_analyzer's window and stability rule.
        profile_concurrency: concurrency of the profiled run of each client (0: no profile).
    """

    concurrencies: tuple[int, ...] = (1, 8, 32)
    requests: int = 1500
    n_candidates: int = 200
    users: int = 64
    repeats: int = 3
    seed: int = 0
    perf_analyzer: PaSettings = field(default_factory=PaSettings)
    profile_concurrency: int = 32

    def __post_init__(self) -> None:
        if not self.concurrencies or min(self.concurrencies) < 1 or self.requests < 1 or self.repeats < 1:
            raise ConfigError("client bench needs concurrencies >= 1, requests >= 1 and repeats >= 1")


def _worker(
    src: Path, url: str, tool: str, users: Path, requests: int, concurrency: int, profile: bool
) -> dict[str, Any]:
    """Run one client in its own process with ``src`` first on its path; its JSON answer (or the error)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(src), os.environ.get("PYTHONPATH", "")]))}
    cmd = [
        sys.executable, client_worker.__file__, "--url", url, "--model", MODEL, "--tool", tool,
        "--users", str(users), "--requests", str(requests), "--concurrency", str(concurrency),
        *(["--profile"] if profile else []),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    if done.returncode != 0:
        return {"error": (done.stdout + done.stderr)[-800:]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _tools(baseline_src: Path | None) -> dict[str, tuple[Path, str]]:
    tools = {"sync_client": (SRC, "sync"), "async_client": (SRC, "async"), FLOOR: (SRC, "floor")}
    if baseline_src is not None:
        tools |= {"sync_client (before)": (baseline_src, "sync"), "async_client (before)": (baseline_src, "async")}
    return tools


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    good = [r for r in runs if "error" not in r]
    if not good:
        return None
    out: dict[str, Any] = {
        key: spread([r[key] for r in good]).to_dict() for key in ("requests_per_second", "p50_ms", "p99_ms")
    }
    cpu = [r["cpu_ms_per_request"] for r in good if r.get("cpu_ms_per_request") is not None]
    if cpu:
        out["cpu_ms_per_request"] = spread(cpu).to_dict()
    out["runs"], out["failed_runs"] = len(good), len(runs) - len(good)
    return out


def _pa_figures(run: dict[str, Any]) -> dict[str, Any]:
    if "error" in run:
        return run
    cpu = run["cpu"]
    served = run["requests_per_second"] * cpu["wall_s"]  # perf_analyzer's windows run at about its measured rate
    return {
        "requests_per_second": run["requests_per_second"],
        "p50_ms": run["latency_ms"]["p50"],
        "p99_ms": run["latency_ms"]["p99"],
        "cpu_ms_per_request": round(cpu["perf_analyzer_s"] * 1e3 / max(served, 1.0), 4),
        "server_queue_ms": run["server"]["queue_ms"],
        "command": run["command"],
    }


def run_client_bench(
    export_dir: Path,
    out_dir: Path,
    settings: ClientBenchSettings,
    *,
    perf_analyzer: Path | None,
    command: str,
    baseline_src: Path | None = None,
    progress: Progress = quiet,
) -> Report:
    """Measure every client (and perf_analyzer when given) at each concurrency; write client.json + client.md."""
    tools = _tools(baseline_src)
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="tritonrec-client-") as work,
        local_endpoint(export_dir, [VARIANTS[MODEL]]) as server,
    ):
        with RankingClient(server.grpc_url, model=MODEL) as client:
            limits = client.limits()
            server_version = client.server_version()
        traffic = TrafficSpec(candidates=CandidateCounts.fixed(settings.n_candidates), seed=settings.seed)
        pairs = load_user_pool(traffic, history_len=limits.max_history).sample(settings.users)
        requests = prepare_requests(pairs, limits, MODEL)
        users = Path(work) / "users.npz"
        np.savez(
            users,
            history=np.stack([r.history for r in requests])
            if limits.pad_history
            else _padded(requests, limits.max_history),
            candidates=np.stack([r.candidates for r in requests]),
        )
        target = Target.at(server.grpc_url, metrics_url=server.metrics_url, perf_analyzer=perf_analyzer)
        names = [*tools, *(["perf_analyzer"] if perf_analyzer else [])]
        trials = [(tool, c) for c in settings.concurrencies for tool in names]
        for (tool, c), repeat in shuffled_trials(trials, settings.repeats, settings.seed):
            progress(f"concurrency {c}: {tool}, run {repeat + 1}/{settings.repeats} ...")
            if tool == "perf_analyzer":
                run = _pa_figures(run_theirs(target, MODEL, requests, LoadMode.CLOSED, c, settings.perf_analyzer))
            else:
                src, kind = tools[tool]
                run = _worker(src, server.grpc_url, kind, users, settings.requests, c, profile=False)
            runs.setdefault((tool, c), []).append({"repeat": repeat, **run})
        profiles = {}
        if settings.profile_concurrency:
            for tool, (src, kind) in tools.items():
                progress(f"profiling {tool} at concurrency {settings.profile_concurrency} ...")
                run = _worker(src, server.grpc_url, kind, users, settings.requests, settings.profile_concurrency, True)
                profiles[tool] = run.get("profile", run)
    results: dict[str, dict[str, Any]] = {tool: {} for tool in names}
    for (tool, c), tool_runs in runs.items():
        results[tool][str(c)] = {"summary": _summary(tool_runs), "runs": tool_runs}
    for tool in tools:
        for level in map(str, settings.concurrencies):
            mine = results[tool][level]["summary"]
            ref = results.get("perf_analyzer", {}).get(level, {}).get("summary")
            if mine and ref:
                a, b = (Spread.from_dict(x["requests_per_second"]) for x in (mine, ref))
                versus = compare(a, b, a_name=tool, b_name="perf_analyzer")
                results[tool][level]["vs_perf_analyzer"] = versus.to_dict()
    report = {
        **new_record(command, tritonserver=server_version, perf_analyzer=perf_analyzer is not None),
        "settings": asdict(settings),
        "baseline_src": str(baseline_src) if baseline_src else None,
        "model": {"name": MODEL, "export_dir": str(export_dir)},
        "results": results,
        "profiles": profiles,
    }
    return write_report(out_dir, "client", report, write_markdown(report))


def _padded(requests: list[Any], length: int) -> IntArray:
    """Histories left-padded to ``length`` (the client drops the padding again), so users stack in one array."""
    out = np.zeros((len(requests), length), dtype=np.int64)
    for i, r in enumerate(requests):
        if r.history.size:
            out[i, length - r.history.size :] = r.history
    return out


def _cell(entry: dict[str, Any] | None, key: str, fmt: str) -> str:
    summary = (entry or {}).get("summary")
    if not summary or key not in summary:
        return "-"
    return Spread.from_dict(summary[key]).text(fmt)


def write_markdown(report: dict[str, Any]) -> str:
    """Render the client benchmark as Markdown (every figure from ``report``)."""
    s = report["settings"]
    lines = [
        *markdown_header(
            f"Client cost: {MODEL}, one user per request, N={s['n_candidates']} candidates, {s['repeats']} runs per "
            "tool and concurrency",
            report,
        ),
        "Figures are median (min-max) over the runs, runs in a random order; each client ran in its own process, "
        "so its CPU is its own. perf_analyzer's CPU per request is its CPU seconds over its whole run divided by "
        "its rate times that time (approximate: its warm-up windows count too). "
        f"`{FLOOR}` is no client: bare `grpc.aio` calls on requests serialized before the clock starts, without "
        "checks, deadlines or retries, the floor of any asyncio Python client on grpcio.",
        "",
        "| concurrency | tool | requests/s | vs perf_analyzer | p50 ms | p99 ms | client CPU ms/request |",
        "|---|---|---|---|---|---|---|",
    ]
    results = report["results"]
    for c in map(str, s["concurrencies"]):
        for tool, by_c in results.items():
            entry = by_c.get(c)
            if entry is None:
                continue
            versus = entry.get("vs_perf_analyzer")
            ratio = (
                "-" if not versus else f"{versus['ratio']:.2f}x ({versus['ratio_min']:.2f}-{versus['ratio_max']:.2f})"
            )
            rps = _cell(entry, "requests_per_second", ",.0f")
            lines.append(
                f"| {c} | {tool} | {rps} | {ratio} | {_cell(entry, 'p50_ms', '.2f')} "
                f"| {_cell(entry, 'p99_ms', '.2f')} | {_cell(entry, 'cpu_ms_per_request', '.3f')} |"
            )
    if report["profiles"]:
        parts = [name for name, _ in client_worker.PARTS] + ["other"]
        lines += [
            "",
            f"Where each client's own Python time goes (cProfile, concurrency {s['profile_concurrency']}, share of "
            "profiled time; C code inside gRPC counts where it is called from):",
            "",
            "| tool | " + " | ".join(parts) + " |",
            "|---|" + "---|" * len(parts),
        ]
        for tool, shares in report["profiles"].items():
            if "error" in shares:
                lines.append(f"| {tool} | failed |" + " |" * (len(parts) - 1))
                continue
            lines.append(f"| {tool} | " + " | ".join(f"{shares.get(p, 0.0):.0%}" for p in parts) + " |")
    lines.append("")
    return "\n".join(lines)
