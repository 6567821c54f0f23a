"""``tritonrec bench efficiency``: what share of the model's own speed survives serving, like for like.

Serving efficiency = candidates/s served through Triton over gRPC / candidates/s of the same model run in
process the way the server runs it:

- **same code and session options**: the ONNX Runtime session ``ranker_cpu``'s ``model.py`` opens
  (``ranker_cpu_model.open_session``), as many sessions as the served variant has instances, each with the
  variant's threads, run side by side in threads (``session.run`` releases the GIL);
- **same batches**: the batch sizes Triton's dynamic batcher actually formed during the served run (its
  statistics, executions per batch size) are replayed, each batch packed as ``model.py`` packs it (its layout:
  ragged or padded), from the same traffic; only real candidates count;
- **same traffic**: realistic Beauty traffic (50-500 candidates) and a fixed N=200;
- **the server's capacity**: every listed concurrency is measured once and the one with the most served
  candidates/s is used (stopping at the first one that did not rise was fooled by plateaus: two runs of the same
  command picked concurrency 4 and 32 at N=200); the curve is recorded, and a best at the largest concurrency
  tried is flagged as possibly still rising. Served throughput is perf_analyzer's where our generator is the
  bottleneck (see ``tritonrec.measure.points``).

Where the gap comes from: on a machine where the server shares its cores with the load generator, the
throughput ratio also charges the server for the generator's CPU. ``cpu_efficiency`` removes that share: the
in-process CPU seconds per candidate (``time.process_time``) over the server's (tritonserver and its Python
stubs, psutil, from our generator's runs): the share of the server's CPU that is the model's own work.
``cpu_breakdown`` accounts for the whole machine during those runs, per 1,000 served candidates: the model's own
work (its in-process CPU), the rest of the Python stubs (``model.py``'s checks, packing and answers, the stub's
side of the shared-memory hand-off), tritonserver's own process (gRPC, the batcher, the backend's side), the load
generator, and what is left of the cores (idle or other processes). The model's share of the machine is the
efficiency this machine could reach if the in-process side were as busy; the other parts say what stands between.

Served and in-process runs alternate ``repeats`` times; each pair gives one efficiency, reported as median and
min-max.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tritonrec.backends.ranker_cpu_model import (
    open_session,
    pack_ragged,
    pack_requests,
    serving_cpus,
    session_threads,
)
from tritonrec.client import RankingClient
from tritonrec.contract import CANDIDATES, DEFAULT_MODEL, HISTORY, REAL_INDEX, SCORES
from tritonrec.errors import ConfigError
from tritonrec.measure.loadgen import LoadMode, PointSettings, PreparedRequest, prepare_requests, server_breakdown
from tritonrec.measure.points import PaSettings, Target, run_ours, run_theirs, side_by_side, summarize_runs
from tritonrec.measure.spec_traffic import FeatureRequest
from tritonrec.measure.traffic import CandidateCounts, Distribution, TrafficSpec, load_user_pool
from tritonrec.records import Progress, Report, markdown_header, new_record, quiet, write_report
from tritonrec.serving.endpoint import local_endpoint
from tritonrec.spread import Spread, spread

__all__ = [
    "EfficiencySettings",
    "InProcess",
    "ServingShape",
    "cpu_breakdown",
    "drawn_batch_sizes",
    "in_process_throughput",
    "measure_pairs",
    "run_efficiency_bench",
    "sessions_side_by_side",
    "write_markdown",
]

MODEL = DEFAULT_MODEL


@dataclass(frozen=True, slots=True, kw_only=True)
class EfficiencySettings:
    """What to measure.

    Attributes:
        traffics: candidate counts per request, ``N`` or ``LOW-HIGH`` (uniform), each a separate result.
        concurrencies: each measured once; the one with the most served candidates/s is used.
        repeats: served + in-process pairs at the chosen concurrency.
        requests: distinct requests drawn from the traffic.
        in_process_s: time per in-process measurement.
        seed: seeds the traffic and the replayed batch order.
        point: our generator's warm-up, windows and stability rule.
        perf_analyzer: perf_analyzer's window and stability rule.
    """

    traffics: tuple[str, ...] = ("50-500", "200")
    concurrencies: tuple[int, ...] = (4, 8, 16, 32, 64)
    repeats: int = 3
    requests: int = 1024
    in_process_s: float = 6.0
    seed: int = 0
    point: PointSettings = field(default_factory=PointSettings)
    perf_analyzer: PaSettings = field(default_factory=PaSettings)

    def __post_init__(self) -> None:
        if not self.traffics or not self.concurrencies or self.repeats < 1 or self.in_process_s <= 0:
            raise ConfigError("efficiency needs traffics, concurrencies, repeats >= 1 and in_process_s > 0")
        for text in self.traffics:
            _counts(text)


@dataclass(frozen=True, slots=True)
class ServingShape:
    """How the served variant runs the model: instances, threads each, the history length, layout, file, runtime."""

    instances: int
    threads: int
    history_len: int
    layout: str = "padded"
    onnx_file: str = "model.onnx"
    runtime: str = "onnxruntime"

    @classmethod
    def of(cls, config: dict[str, Any], history_len: int) -> ServingShape:
        """Read from the served config (JSON), resolving ``intra_op_threads`` 0 as ``model.py`` does here."""
        instances = sum(int(g.get("count", 1)) for g in config.get("instance_group", [])) or 1
        params = {k: v.get("string_value", "0") for k, v in config.get("parameters", {}).items()}
        threads = session_threads(config)
        layout, onnx_file = params.get("layout", "padded"), params.get("onnx_file", "model.onnx")
        return cls(instances, threads, history_len, layout, onnx_file, params.get("runtime", "onnxruntime"))


def _counts(text: str) -> CandidateCounts:
    low, _, high = text.partition("-")
    if not (low.isdigit() and (high.isdigit() or not high)):
        raise ConfigError(f"a traffic is N or LOW-HIGH candidates, got {text!r}")
    if not high:
        return CandidateCounts.fixed(int(low))
    return CandidateCounts(low=int(low), high=int(high), distribution=Distribution.UNIFORM)


def drawn_batch_sizes(batch_sizes: dict[str, int], seed: int) -> list[int]:
    """Batch sizes drawn with the frequencies Triton formed them (its executions per batch size), at least 64."""
    sizes = np.array([int(b) for b in batch_sizes], dtype=np.int64)
    weights = np.array(list(batch_sizes.values()), dtype=np.float64)
    rng = np.random.default_rng(seed)
    drawn: list[int] = rng.choice(sizes, size=max(64, int(weights.sum())), p=weights / weights.sum()).tolist()
    return drawn


def _replayed_batches(
    requests: list[PreparedRequest], batch_sizes: dict[str, int], shape: ServingShape, seed: int
) -> list[tuple[dict[str, Any], int]]:
    """Batches drawn with the batch-size frequencies Triton formed, filled in order, packed as the server packs."""
    batches, at = [], 0
    for b in drawn_batch_sizes(batch_sizes, seed):
        group = [requests[(at + k) % len(requests)] for k in range(b)]
        at += b
        pairs = [(r.history[None, :], r.candidates[None, :]) for r in group]
        if shape.layout == "ragged":
            history, grid, real = pack_ragged(pairs)
            feeds = {HISTORY: history, CANDIDATES: grid, REAL_INDEX: real}
        else:
            history, candidates = pack_requests(pairs, shape.history_len)
            feeds = {HISTORY: history, CANDIDATES: candidates}
        batches.append((feeds, sum(r.n_candidates for r in group)))
    return batches


def in_process_throughput(
    model_path: Path,
    requests: list[PreparedRequest],
    batch_sizes: dict[str, int],
    shape: ServingShape,
    duration_s: float,
    *,
    seed: int = 0,
) -> dict[str, Any]:
    """Real candidates/s of ``shape.instances`` serving sessions run side by side on the replayed batches."""
    if not batch_sizes:
        raise ConfigError("no batch sizes to replay: the served run executed nothing")
    batches = _replayed_batches(requests, batch_sizes, shape, seed)
    sessions = [open_session(model_path, shape.threads, shape.runtime) for _ in range(shape.instances)]
    mean_users = round(float(np.mean([len(b[0][HISTORY]) for b in batches])), 2)
    return {**sessions_side_by_side(sessions, SCORES, batches, duration_s), "mean_batch_users": mean_users}


def sessions_side_by_side(
    sessions: list[Any], output: str, batches: list[tuple[dict[str, Any], int]], duration_s: float
) -> dict[str, Any]:
    """Real candidates/s of ``sessions`` run side by side in threads over ``batches`` (feeds, real candidates).

    One thread per session, as one per served instance; ``session.run`` releases the GIL. Also the process's CPU
    seconds over the run and per 1,000 candidates (the model's own work, for ``cpu_efficiency``).
    """
    instances = len(sessions)
    for session in sessions:
        session.run([output], batches[0][0])  # warm up
    done = [0] * instances
    runs = [0] * instances
    start = threading.Barrier(instances + 1)
    deadline: list[float] = []

    def work(k: int) -> None:
        start.wait()
        i = k
        while time.perf_counter() < deadline[0]:
            feeds, n = batches[i % len(batches)]
            sessions[k].run([output], feeds)
            done[k] += n
            runs[k] += 1
            i += instances

    threads = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(instances)]
    for t in threads:
        t.start()
    deadline.append(time.perf_counter() + duration_s)
    started, cpu_started = time.perf_counter(), time.process_time()
    start.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    cpu_s = time.process_time() - cpu_started
    return {
        "candidates_per_second": round(sum(done) / elapsed, 1),
        "cpu_s": round(cpu_s, 3),
        "cpu_ms_per_1k_candidates": round(1e6 * cpu_s / max(sum(done), 1), 4),
        "session_runs": sum(runs),
        "elapsed_s": round(elapsed, 2),
    }


Requests = list[PreparedRequest] | list[FeatureRequest]
InProcess = Callable[[dict[str, int], int], dict[str, Any]]
"""The in-process side of a pair: (the batch sizes Triton formed, the pair's index) -> its measurement."""


def _search(
    target: Target, model: str, requests: Requests, settings: EfficiencySettings, progress: Progress
) -> tuple[int, list[dict[str, Any]]]:
    """The concurrency with the most served candidates/s (perf_analyzer's view where available), and the curve."""
    curve = []
    for c in settings.concurrencies:
        progress(f"  searching: concurrency {c} ...")
        run = (
            run_theirs(target, model, requests, LoadMode.CLOSED, c, settings.perf_analyzer)
            if target.perf_analyzer
            else run_ours(target, model, requests, LoadMode.CLOSED, c, settings.point)
        )
        if "error" in run:
            run = run_ours(target, model, requests, LoadMode.CLOSED, c, settings.point)
        curve.append({"concurrency": c, "candidates_per_second": float(run["candidates_per_second"])})
    best = max(curve, key=lambda point: point["candidates_per_second"])
    return int(best["concurrency"]), curve


def _server_cpu_per_1k(ours: dict[str, Any]) -> float | None:
    """The server's CPU ms per 1,000 served candidates in our generator's run (None where not measured)."""
    served_ms = (ours.get("cpu") or {}).get("server_ms_per_request")
    if not served_ms or not ours.get("mean_candidates"):
        return None
    return round(1000 * float(served_ms) / float(ours["mean_candidates"]), 4)


_PART_NAMES = {
    "model": "the model (its in-process CPU)",
    "stubs_other": "rest of the Python stubs",
    "tritonserver": "tritonserver (gRPC, batcher, hand-off)",
    "generator": "load generator",
    "idle_or_other": "idle or other processes",
}


def cpu_breakdown(ours: dict[str, Any], model_ms_per_1k: float, cores: int) -> dict[str, Any] | None:
    """Where the machine's CPU went in our generator's served run, per 1,000 served candidates, and as shares.

    ``model`` is the model's own work (``model_ms_per_1k``: its CPU per candidate in process), ``stubs_other`` the
    rest of the stubs' CPU, ``tritonserver`` its own process, ``generator`` our load generator, ``idle_or_other``
    what is left of ``cores`` over the run. None where the server's CPU was not measured (it runs on another
    machine); ``cores`` are this machine's, which the server and the generator share.
    """
    cpu, mean, cps = ours.get("cpu") or {}, ours.get("mean_candidates"), ours.get("candidates_per_second")
    needed = ("generator_ms_per_request", "tritonserver_ms_per_request", "stubs_ms_per_request")
    if not mean or not cps or any(cpu.get(k) is None for k in needed):
        return None
    per_1k = {k: 1000.0 * float(cpu[k]) / float(mean) for k in needed}
    machine = cores * 1e6 / float(cps)  # CPU-ms the cores offer per 1,000 candidates served at this rate
    parts = {
        "model": model_ms_per_1k,
        "stubs_other": per_1k["stubs_ms_per_request"] - model_ms_per_1k,
        "tritonserver": per_1k["tritonserver_ms_per_request"],
        "generator": per_1k["generator_ms_per_request"],
    }
    parts["idle_or_other"] = machine - sum(parts.values())
    return {
        "cores": cores,
        "machine_ms_per_1k_candidates": round(machine, 4),
        "ms_per_1k_candidates": {k: round(v, 4) for k, v in parts.items()},
        "shares": {k: round(v / machine, 4) for k, v in parts.items()},
    }


def _theirs_with_batches(
    target: Target, client: RankingClient, requests: Requests, c: int, settings: EfficiencySettings
) -> dict[str, Any]:
    before = client.raw_statistics()
    run = run_theirs(target, client.model, requests, LoadMode.CLOSED, c, settings.perf_analyzer)
    run["server_statistics"] = server_breakdown(before, client.raw_statistics())
    return run


def _one_traffic(
    target: Target,
    model_dir: Path,
    text: str,
    shape: ServingShape,
    settings: EfficiencySettings,
    client: RankingClient,
    progress: Progress,
) -> dict[str, Any]:
    limits = client.limits()
    traffic = TrafficSpec(candidates=_counts(text), seed=settings.seed)
    requests = prepare_requests(
        load_user_pool(traffic, history_len=limits.max_history).sample(settings.requests), limits, MODEL
    )
    progress(f"traffic {text} candidates:")

    def local(batches: dict[str, int], repeat: int) -> dict[str, Any]:
        return in_process_throughput(
            model_dir / shape.onnx_file, requests, batches, shape, settings.in_process_s, seed=repeat
        )

    label = f"beauty users, {text} candidates" + (" (uniform)" if "-" in text else "")
    return measure_pairs(target, client, requests, label, settings, local, progress)


def measure_pairs(
    target: Target,
    client: RankingClient,
    requests: Requests,
    label: str,
    settings: EfficiencySettings,
    local: InProcess,
    progress: Progress,
) -> dict[str, Any]:
    """Served + in-process pairs of ``client.model`` on ``requests`` at its best concurrency (``label``: the traffic).

    The served side is our generator and perf_analyzer (where given) at the concurrency :func:`_search` finds; the
    in-process side is ``local`` on the batch sizes Triton formed in the run the headline is read from.
    """
    c, curve = _search(target, client.model, requests, settings, progress)
    ours_runs, theirs_runs, pairs = [], [], []
    for repeat in range(settings.repeats):
        progress(f"  concurrency {c}, run {repeat + 1}/{settings.repeats}: served ...")
        ours = run_ours(target, client.model, requests, LoadMode.CLOSED, c, settings.point, seed=settings.seed + repeat)
        ours_runs.append(ours)
        theirs = _theirs_with_batches(target, client, requests, c, settings) if target.perf_analyzer else None
        if theirs is not None:
            theirs_runs.append(theirs)
        served = side_by_side(summarize_runs([ours]), summarize_runs([theirs]) if theirs else None)
        use_pa = served["headline_tool"] == "perf_analyzer" and theirs is not None
        served_cand = float(theirs["candidates_per_second"] if use_pa and theirs else ours["candidates_per_second"])
        batches = (theirs["server_statistics"] if use_pa and theirs else ours["server"])["batch_sizes"]
        progress(f"  concurrency {c}, run {repeat + 1}/{settings.repeats}: in process ...")
        in_process = local(batches, repeat)
        served_cpu = _server_cpu_per_1k(ours)  # cpu_efficiency: in-process CPU per candidate over the server's
        breakdown = cpu_breakdown(ours, in_process["cpu_ms_per_1k_candidates"], serving_cpus())
        pairs.append(
            {
                "served_tool": "perf_analyzer" if use_pa else "tritonrec",
                "served_cand_per_s": served_cand,
                "in_process": in_process,
                "batch_sizes": batches,
                "efficiency": round(served_cand / in_process["candidates_per_second"], 4),
                "cpu_efficiency": (
                    None if served_cpu is None else round(in_process["cpu_ms_per_1k_candidates"] / served_cpu, 4)
                ),
                "server_cpu_ms_per_1k_candidates": served_cpu,
                "cpu_breakdown": breakdown,
            }
        )
    eff = spread([p["efficiency"] for p in pairs])
    cpu_values = [p["cpu_efficiency"] for p in pairs if p["cpu_efficiency"] is not None]
    cpu_eff = spread(cpu_values) if cpu_values else None
    breakdowns = [p["cpu_breakdown"] for p in pairs if p["cpu_breakdown"]]
    summary_ours, summary_theirs = summarize_runs(ours_runs), summarize_runs(theirs_runs) if theirs_runs else None
    return {
        "traffic": label,
        "efficiency": round(eff.median, 4),
        "efficiency_min": round(eff.min, 4),
        "efficiency_max": round(eff.max, 4),
        "served_cand_per_s": spread([p["served_cand_per_s"] for p in pairs]).median,
        "in_process_cand_per_s": spread([p["in_process"]["candidates_per_second"] for p in pairs]).median,
        "cpu_efficiency": round(cpu_eff.median, 4) if cpu_eff else None,
        "cpu_efficiency_min": round(cpu_eff.min, 4) if cpu_eff else None,
        "cpu_efficiency_max": round(cpu_eff.max, 4) if cpu_eff else None,
        "cpu_breakdown_shares": (
            {k: spread([b["shares"][k] for b in breakdowns]).to_dict() for k in _PART_NAMES} if breakdowns else None
        ),
        "concurrency": c,
        "search": curve,
        "best_at_largest_concurrency": c == max(settings.concurrencies),
        "mean_candidates": round(float(np.mean([r.n_candidates for r in requests])), 1),
        "pairs": pairs,
        "tritonrec": {"summary": summary_ours, "runs": ours_runs},
        "perf_analyzer": {"summary": summary_theirs, "runs": theirs_runs} if theirs_runs else None,
        **side_by_side(summary_ours, summary_theirs),
    }


def run_efficiency_bench(
    export_dir: Path,
    out_dir: Path,
    settings: EfficiencySettings,
    *,
    command: str,
    url: str | None = None,
    perf_analyzer: Path | None = None,
    progress: Progress = quiet,
) -> Report:
    """Measure serving efficiency for each traffic; write ``efficiency.json`` and ``efficiency.md``.

    Args:
        export_dir: the ONNX export the server serves (the in-process side runs its ``model.onnx``).
        out_dir: results folder.
        settings: what to measure.
        command: the command line, recorded.
        url: a running Triton serving that export as ``ranker_cpu``; None serves it on the bundled server here.
        perf_analyzer: the perf_analyzer binary (None: our generator only).
        progress: where to say what is being measured.
    """
    with contextlib.ExitStack() as stack:
        if url is None:
            server = stack.enter_context(local_endpoint(export_dir))
            target = Target.at(server.grpc_url, metrics_url=server.metrics_url, perf_analyzer=perf_analyzer)
        else:
            target = Target.at(url, perf_analyzer=perf_analyzer)
        client = stack.enter_context(RankingClient(target.url, model=MODEL))
        shape = ServingShape.of(client.model_config(), client.limits().max_history)
        server_version = client.server_version()
        results = [
            _one_traffic(target, export_dir, text, shape, settings, client, progress) for text in settings.traffics
        ]
    report = {
        **new_record(command, tritonserver=server_version, perf_analyzer=perf_analyzer is not None),
        "model": MODEL,
        "url": url or "local (bundled tritonserver)",
        "server_cpu_measured": target.cpu.server is not None,
        "settings": asdict(settings),
        "serving_shape": asdict(shape),
        "results": results,
    }
    return write_report(out_dir, "efficiency", report, write_markdown(report))


_RUNTIME_NAMES = {"onnxruntime": "ONNX Runtime", "openvino": "OpenVINO"}


def write_markdown(report: dict[str, Any]) -> str:
    """Render the efficiency report (every figure from ``report``)."""
    shape, s = report["serving_shape"], report["settings"]
    lines = [
        *markdown_header(f"Serving efficiency: {report.get('model', MODEL)}, like for like", report),
        f"In process: {shape['instances']} {_RUNTIME_NAMES.get(shape.get('runtime', ''), 'ONNX Runtime')} "
        f"session(s) x {shape['threads']} thread(s) side by side, as "
        f"the served variant runs, on the batch sizes Triton formed, packed as `model.py` packs them. "
        f"{s['repeats']} served + in-process pair(s) per traffic; efficiency is median (min-max) over the pairs.",
        "",
        "| traffic | mean candidates | concurrency | served cand/s (tool) | in-process cand/s | efficiency "
        "| CPU efficiency | ours vs perf_analyzer | bottleneck |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        tools = sorted({p["served_tool"] for p in r["pairs"]})
        comparison = r["comparison"]["verdict"] if r.get("comparison") else "-"
        bound = {True: "ours (generator-bound)", False: "server", None: "-"}[r.get("generator_bound")]
        cpu = (
            f"{r['cpu_efficiency']:.2f} ({r['cpu_efficiency_min']:.2f}-{r['cpu_efficiency_max']:.2f})"
            if r.get("cpu_efficiency") is not None
            else "not measured"
        )
        lines.append(
            f"| {r['traffic']} | {r['mean_candidates']} | {r['concurrency']} | {r['served_cand_per_s']:,.0f} "
            f"({', '.join(tools)}) | {r['in_process_cand_per_s']:,.0f} "
            f"| **{r['efficiency']:.2f}** ({r['efficiency_min']:.2f}-{r['efficiency_max']:.2f}) "
            f"| {cpu} | {comparison} | {bound} |"
        )
    lines += [
        "",
        "CPU efficiency: in-process CPU seconds per candidate over the server's (tritonserver and its Python stubs, "
        "from our generator's runs): the share of the server's CPU that is the model's own work; unlike the "
        "throughput ratio it does not charge the server for the load generator sharing its cores.",
        "",
        *_breakdown_lines(report),
        "Concurrency search (served candidates/s, one run each; the highest is used):",
        "",
    ]
    for r in report["results"]:
        curve = ", ".join(f"{p['concurrency']}: {p['candidates_per_second']:,.0f}" for p in r.get("search", []))
        flag = (
            " (best at the largest concurrency tried: it may still rise)"
            if r.get("best_at_largest_concurrency")
            else ""
        )
        lines.append(f"- {r['traffic']}: {curve}{flag}")
    unit = report.get("batch_unit", "users")
    lines += ["", f"Batch sizes replayed (executions per {unit}-per-batch), per pair:", ""]
    for r in report["results"]:
        for i, p in enumerate(r["pairs"], start=1):
            shown = ", ".join(f"{b}: {n}" for b, n in sorted(p["batch_sizes"].items(), key=lambda kv: int(kv[0])))
            lines.append(f"- {r['traffic']}, pair {i}: {shown}")
    lines.append("")
    return "\n".join(lines)


def _breakdown_lines(report: dict[str, Any]) -> list[str]:
    rows = [r for r in report["results"] if r.get("cpu_breakdown_shares")]
    if not rows:
        return []
    cores = next(p["cpu_breakdown"]["cores"] for p in rows[0]["pairs"] if p["cpu_breakdown"])
    lines = [
        f"Where the machine's {cores} cores went during our generator's served runs (share of the cores' time, "
        "median (min-max) over the pairs); the model's share is the efficiency these cores could reach if serving "
        "cost nothing else:",
        "",
        "| traffic | " + " | ".join(_PART_NAMES.values()) + " |",
        "|---|" + "---|" * len(_PART_NAMES),
    ]
    for r in rows:
        shares = r["cpu_breakdown_shares"]
        cells = [Spread.from_dict(shares[k]).text(".2f") for k in _PART_NAMES]
        lines.append(f"| {r['traffic']} | " + " | ".join(cells) + " |")
    return [*lines, ""]
