"""``tritonrec bench quality`` (ranking-quality report) and ``tritonrec bench contract`` (request contract)."""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
from pathlib import Path

from tritonrec.bench.loadgen import PointSettings
from tritonrec.bench.quality import run_quality_report
from tritonrec.bench.scenario import load_scenario
from tritonrec.bench.traffic import CandidateCounts, Distribution, TrafficSpec
from tritonrec.data.registry import DatasetName
from tritonrec.errors import ConfigError
from tritonrec.model.config import preset

__all__ = [
    "run_batching",
    "run_client",
    "run_contract",
    "run_efficiency",
    "run_locust",
    "run_quality",
    "run_sweep",
]


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _command() -> str:
    return "tritonrec " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def run_quality(args: argparse.Namespace) -> int:
    """Train the requested presets on the requested datasets and write quality.json + quality.md."""
    datasets, presets = _names(args.datasets), _names(args.presets)
    for name in presets:
        preset(name)
    known = {d.value for d in DatasetName}
    if not datasets or set(datasets) - known:
        raise ConfigError(f"--datasets must name some of {sorted(known)}, got {args.datasets!r}")
    run_quality_report(
        datasets,
        presets,
        args.out,
        max_minutes=args.max_minutes,
        checkpoints_dir=args.checkpoints,
        command=_command(),
        seed=args.seed,
        valid_user_fraction=args.valid_user_fraction,
    )
    print((args.out / "quality.md").read_text())
    return 0


def run_contract(args: argparse.Namespace) -> int:
    """Measure the two request contracts side by side and write contract.json + contract.md."""
    from tritonrec.bench.contract import ContractSettings, run_contract_bench

    settings = ContractSettings(
        n_candidates=args.candidates, triton_requests=args.requests, concurrency=args.concurrency
    )
    run_contract_bench(args.export, args.out, settings, command=_command())
    print((args.out / "contract.md").read_text())
    return 0


def run_client(args: argparse.Namespace) -> int:
    """Measure the sync and asyncio clients beside perf_analyzer and write client.json + client.md."""
    from tritonrec.bench.client_bench import ClientBenchSettings, run_client_bench

    concurrencies = tuple(int(c) for c in _names(args.concurrency))
    settings = ClientBenchSettings(concurrencies=concurrencies, requests=args.requests)
    run_client_bench(args.export, args.out, settings, perf_analyzer=args.perf_analyzer, command=_command())
    print((args.out / "client.md").read_text())
    return 0


def _numbers(text: str) -> list[float]:
    try:
        return [float(v) for v in _names(text)]
    except ValueError:
        raise ConfigError(f"expected comma-separated numbers, got {text!r}") from None


def _point_settings(args: argparse.Namespace) -> PointSettings:
    return PointSettings(
        warmup_s=args.warmup_s,
        window_s=args.window_s,
        max_windows=args.max_windows,
        stable_windows=min(PointSettings().stable_windows, args.max_windows),
        stability_pct=args.stability_pct,
    )


def _traffic(args: argparse.Namespace) -> tuple[TrafficSpec, str | None]:
    """The traffic (and model) of ``--scenario``, else of the traffic flags."""
    if args.scenario is not None:
        scenario = load_scenario(args.scenario)
        return scenario.traffic, scenario.model
    low, _, high = args.candidates.partition("-")
    if not (low.isdigit() and (high.isdigit() or not high)):
        raise ConfigError(f"--candidates must be N or LOW-HIGH, got {args.candidates!r}")
    distribution = Distribution(args.candidate_distribution) if high else Distribution.FIXED
    counts = CandidateCounts(low=int(low), high=int(high or low), distribution=distribution)
    return TrafficSpec(source=args.source, user_zipf=args.user_zipf, candidates=counts), None


def _perf_analyzer_path(value: str | None, *, required: bool) -> Path | None:
    from tritonrec.bench.perf_analyzer import find_perf_analyzer

    if value is None and not required:
        return None
    found = find_perf_analyzer(None if value in (None, "auto") else Path(value))
    if found is None:
        raise ConfigError("perf_analyzer not found; install it: bash bench/tools/install_perf_analyzer.sh")
    return found


def _endpoint_url(args: argparse.Namespace, stack: contextlib.ExitStack) -> str:
    """``--url``, or the gRPC url of a local server for ``--export`` that lives as long as ``stack``."""
    if args.url:
        return str(args.url)
    from tritonrec.bench.endpoint import local_endpoint

    return stack.enter_context(local_endpoint(args.export)).grpc_url


def run_sweep(args: argparse.Namespace) -> int:
    """``bench sweep`` and ``bench perf-analyzer``: measure the endpoint, write sweep.json/.md/.png."""
    from tritonrec.bench.sweep import SweepSettings
    from tritonrec.bench.sweep import run_sweep as sweep

    only_pa = args.bench_command == "perf-analyzer"
    traffic, scenario_model = _traffic(args)
    settings = SweepSettings(
        model=args.model or scenario_model or "ranker_cpu",
        concurrencies=tuple(int(c) for c in _numbers(args.concurrency)),
        rates=() if only_pa else tuple(_numbers(args.rates)),
        requests=args.requests,
        point=_point_settings(args),
    )
    perf_analyzer = _perf_analyzer_path(args.perf_analyzer, required=only_pa)
    with contextlib.ExitStack() as stack:
        url = _endpoint_url(args, stack)
        sweep(url, traffic, settings, args.out, command=_command(), perf_analyzer=perf_analyzer)
    print((args.out / "sweep.md").read_text())
    return 0


def run_efficiency(args: argparse.Namespace) -> int:
    """``bench efficiency``: Triton over gRPC vs in-process ONNX Runtime; write efficiency.json/.md."""
    from tritonrec.bench.efficiency import EfficiencySettings, run_efficiency_bench

    settings = EfficiencySettings(
        n_candidates=args.candidates,
        concurrencies=tuple(int(c) for c in _numbers(args.concurrency)),
        point=_point_settings(args),
    )
    run_efficiency_bench(args.export, args.out, settings, command=_command())
    print((args.out / "efficiency.md").read_text())
    return 0


def run_batching(args: argparse.Namespace) -> int:
    """``bench batching``: dynamic batching settings side by side; write batching.json/.md/.png."""
    from tritonrec.bench.batching import BATCHER_SETTINGS, BatchingSettings, run_batching_bench

    chosen = tuple(_names(args.settings)) or tuple(BATCHER_SETTINGS)
    unknown = sorted(set(chosen) - set(BATCHER_SETTINGS))
    if unknown:
        raise ConfigError(f"unknown batcher setting(s) {unknown}; known: {list(BATCHER_SETTINGS)}")
    settings = BatchingSettings(
        settings=chosen,
        candidate_counts=tuple(int(n) for n in _numbers(args.candidates)),
        concurrency=args.concurrency,
        point=_point_settings(args),
    )
    perf_analyzer = _perf_analyzer_path(args.perf_analyzer, required=False)
    run_batching_bench(args.export, args.out, settings, command=_command(), perf_analyzer=perf_analyzer)
    print((args.out / "batching.md").read_text())
    return 0


def run_locust(args: argparse.Namespace) -> int:
    """``bench locust``: run the scenario headless; the exit code is locust's (1 when the SLA is missed)."""
    from tritonrec.bench.locust_run import run_locust as locust

    if args.processes < 0:
        raise ConfigError(f"--processes must be >= 0, got {args.processes}")
    with contextlib.ExitStack() as stack:
        url = _endpoint_url(args, stack)
        report = locust(url, args.scenario, args.out, processes=args.processes, command=_command())
    print((args.out / "locust.md").read_text())
    return int(report["exit_code"])
