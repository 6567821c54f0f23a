"""Serving studies: ``tritonrec bench sweep / perf-analyzer / locust / efficiency / batching / contract / client``."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from tritonrec.cli.bench.options import (
    add_export_out,
    add_point,
    add_repeats,
    add_spec_traffic,
    add_target,
    endpoint_url,
    finish,
    measured_target,
    point_settings,
)
from tritonrec.cli.common import (
    Console,
    add_perf_analyzer,
    add_traffic,
    command_line,
    names,
    numbers,
    perf_analyzer_from_args,
    traffic_from_args,
)
from tritonrec.errors import ConfigError

if TYPE_CHECKING:
    from tritonrec.bench.serving.efficiency import EfficiencySettings
    from tritonrec.cli.bench.options import Subparsers

__all__ = ["register"]


def register(sub: Subparsers) -> None:
    """Add this group's subcommands to ``tritonrec bench``."""
    _contract(sub)
    _client(sub)
    _sweep(sub)
    _locust(sub)
    _efficiency(sub)
    _batching(sub)


def _contract(sub: Subparsers) -> None:
    p = sub.add_parser(
        "contract", help="history once per request vs once per candidate row: bytes and throughput, side by side"
    )
    add_export_out(p, "contract.json, contract.md")
    p.add_argument("--candidates", type=int, default=200, help="candidates per user (default 200)")
    p.add_argument("--requests", type=int, default=600, help="users sent through Triton per contract")
    p.add_argument("--concurrency", type=int, default=8, help="gRPC requests in flight (default 8)")
    p.set_defaults(handler=run_contract)


def run_contract(args: argparse.Namespace) -> int:
    """Measure the two request contracts side by side; print contract.md."""
    from tritonrec.bench.serving.request_contracts import ContractSettings, run_contract_bench

    settings = ContractSettings(
        n_candidates=args.candidates, triton_requests=args.requests, concurrency=args.concurrency
    )
    return finish(run_contract_bench(args.export, args.out, settings, command=command_line()))


def _client(sub: Subparsers) -> None:
    p = sub.add_parser(
        "client", help="sync and asyncio RankingClient beside perf_analyzer on ranker_cpu, same requests, one run"
    )
    add_export_out(p, "client.json, client.md")
    p.add_argument("--concurrency", default="1,8,32", help="comma-separated concurrencies (default 1,8,32)")
    p.add_argument("--requests", type=int, default=1500, help="requests per client run (default 1500)")
    p.add_argument("--candidates", type=int, default=200, help="candidates per user (default 200)")
    p.add_argument(
        "--baseline-src",
        type=Path,
        default=None,
        help="another checkout's src/ folder: its clients run too, for a before/after (e.g. a git worktree)",
    )
    add_repeats(p)
    add_perf_analyzer(p)
    p.set_defaults(handler=run_client)


def run_client(args: argparse.Namespace) -> int:
    """Measure the sync and asyncio clients beside perf_analyzer; print client.md."""
    from tritonrec.bench.serving.client_bench import ClientBenchSettings, run_client_bench

    settings = ClientBenchSettings(
        concurrencies=tuple(int(c) for c in numbers(args.concurrency)),
        requests=args.requests,
        n_candidates=args.candidates,
        repeats=args.repeats,
        seed=args.seed,
    )
    report = run_client_bench(
        args.export,
        args.out,
        settings,
        perf_analyzer=perf_analyzer_from_args(args.perf_analyzer),
        command=command_line(),
        baseline_src=args.baseline_src,
        progress=Console().show,
    )
    return finish(report)


def _sweep(sub: Subparsers) -> None:
    from tritonrec.contract import DEFAULT_MODEL

    sweep = sub.add_parser(
        "sweep", help="closed-loop (concurrency) and open-loop (Poisson rate) sweep, perf_analyzer beside it"
    )
    pa = sub.add_parser(
        "perf-analyzer", help="NVIDIA perf_analyzer on real requests at each concurrency, beside our harness"
    )
    for p, concurrency in ((sweep, "1,4,8,16,32"), (pa, "8,32")):
        add_target(p)
        p.add_argument(
            "--metrics-url",
            default=None,
            help="with --url: Triton's metrics endpoint (default http://<host>:8002/metrics)",
        )
        p.add_argument("--out", type=Path, required=True, help="results folder (sweep.json, sweep.md, sweep.png)")
        p.add_argument("--model", default=None, help=f"model name (default: the scenario's, else {DEFAULT_MODEL})")
        p.add_argument("--concurrency", default=concurrency, help=f"closed-loop concurrencies (default {concurrency})")
        p.add_argument("--requests", type=int, default=1024, help="distinct requests drawn (default 1024)")
        add_traffic(p)
        add_spec_traffic(
            p,
            "requests from its evaluation rows (one query each) instead of Beauty users; give --model, the served name",
        )
        p.add_argument(
            "--rows-per-request",
            type=int,
            default=0,
            help="with --spec, rows layout: every request this many rows (default: each query's own; the median "
            "query's when perf_analyzer runs, as it sends one batch size)",
        )
        add_point(p)
        add_repeats(p)
        add_perf_analyzer(p)
        p.set_defaults(handler=run_sweep)
    sweep.add_argument("--rates", default="", help="open-loop request rates per second, comma-separated")


def run_sweep(args: argparse.Namespace) -> int:
    """``bench sweep`` and ``bench perf-analyzer``: measure the endpoint; print sweep.md."""
    from tritonrec.bench.serving.sweep import SweepSettings
    from tritonrec.bench.serving.sweep import run_sweep as sweep
    from tritonrec.contract import DEFAULT_MODEL

    only_pa = args.bench_command == "perf-analyzer"
    traffic, scenario_model = traffic_from_args(args)
    settings = SweepSettings(
        model=args.model or scenario_model or DEFAULT_MODEL,
        concurrencies=tuple(int(c) for c in numbers(args.concurrency)),
        rates=() if only_pa else tuple(numbers(args.rates)),
        requests=args.requests,
        repeats=args.repeats,
        seed=args.seed,
        point=point_settings(args),
    )
    perf_analyzer = perf_analyzer_from_args(args.perf_analyzer, required=only_pa)
    spec, spec_traffic = None, None
    if args.spec is not None:
        from tritonrec.measure.spec_traffic import SpecTraffic
        from tritonrec.spec import load_spec

        if args.model is None:
            raise ConfigError("--spec needs --model, the served model's name (e.g. <spec name>_cpu)")
        spec = load_spec(args.spec)
        spec_traffic = SpecTraffic(skew=args.query_skew, seed=args.seed, rows_per_request=args.rows_per_request)
    with contextlib.ExitStack() as stack:
        target = measured_target(args, stack, perf_analyzer)
        report = sweep(target, traffic, settings, args.out, command=command_line(), progress=Console().show,
                       spec=spec, spec_traffic=spec_traffic)  # fmt: skip
    return finish(report)


def _locust(sub: Subparsers) -> None:
    p = sub.add_parser(
        "locust", help="one headless locust run of a scenario: CSV/HTML, SLA exit code, locust's own CPU cost"
    )
    add_target(p)
    p.add_argument("--scenario", type=Path, required=True, help="scenario TOML (bench/scenarios/)")
    p.add_argument("--processes", type=int, default=0, help="locust worker processes (default 0: one process)")
    p.add_argument("--out", type=Path, required=True, help="results folder (locust.json, .md, CSV, HTML)")
    p.set_defaults(handler=run_locust)


def run_locust(args: argparse.Namespace) -> int:
    """Run the scenario headless; print locust.md; the exit code is locust's (1 when the SLA is missed)."""
    from tritonrec.measure.locust_run import run_locust as locust

    if args.processes < 0:
        raise ConfigError(f"--processes must be >= 0, got {args.processes}")
    with contextlib.ExitStack() as stack:
        url = endpoint_url(args, stack)
        report = locust(url, args.scenario, args.out, processes=args.processes, command=command_line())
    return finish(report)


def _efficiency(sub: Subparsers) -> None:
    p = sub.add_parser(
        "efficiency", help="candidates/s through Triton over gRPC / in-process ONNX Runtime at the same batch sizes"
    )
    add_export_out(p, "efficiency.json, .md")
    p.add_argument("--url", default=None, help="measure this running Triton (serving --export) instead of a local one")
    p.add_argument(
        "--traffics",
        default="50-500,200",
        help="candidates per request, N or LOW-HIGH, comma-separated (default 50-500,200)",
    )
    p.add_argument("--concurrency", default="4,8,16,32,64", help="each measured; the best is used")
    p.add_argument("--in-process-s", type=float, default=6.0, help="time per in-process measurement (default 6 s)")
    add_spec_traffic(
        p,
        "its <name>_cpu (--export: its `export onnx --spec` folder) served here on requests drawn from its "
        "evaluation rows, against its own sessions in process (--traffics and --url do not apply)",
    )
    p.add_argument(
        "--tuned",
        type=Path,
        default=None,
        help="with --spec: serve the configuration a `bench tune --spec` report chose",
    )
    add_point(p)
    add_repeats(p)
    add_perf_analyzer(p)
    p.set_defaults(handler=run_efficiency)


def run_efficiency(args: argparse.Namespace) -> int:
    """Triton over gRPC vs in-process ONNX Runtime; print efficiency.md."""
    from tritonrec.bench.serving.efficiency import EfficiencySettings, run_efficiency_bench

    if args.spec is None and args.tuned is not None:
        raise ConfigError("--tuned needs --spec (the bundled ranker_cpu is measured as served at --url or shipped)")
    settings = EfficiencySettings(
        traffics=tuple(names(args.traffics)),
        concurrencies=tuple(int(c) for c in numbers(args.concurrency)),
        repeats=args.repeats,
        seed=args.seed,
        in_process_s=args.in_process_s,
        point=point_settings(args),
    )
    if args.spec is not None:
        return _spec_efficiency(args, settings)
    report = run_efficiency_bench(
        args.export,
        args.out,
        settings,
        command=command_line(),
        url=args.url,
        perf_analyzer=perf_analyzer_from_args(args.perf_analyzer),
        progress=Console().show,
    )
    return finish(report)


def _batching(sub: Subparsers) -> None:
    p = sub.add_parser("batching", help="dynamic batching on/off and a few batcher settings, N=8 and N=200")
    add_export_out(p, "batching.json, .md, .png")
    p.add_argument("--candidates", default="8,200", help="candidate counts (default 8,200)")
    p.add_argument("--concurrency", type=int, default=16, help="closed-loop concurrency (default 16)")
    p.add_argument("--settings", default="", help="comma-separated batcher settings (default: all)")
    add_spec_traffic(
        p,
        "the settings applied to its <name>_cpu (--export: its `export onnx --spec` folder), side by side on "
        "requests drawn from its evaluation rows (--candidates does not apply)",
    )
    p.add_argument("--requests", type=int, default=512, help="with --spec: distinct requests drawn (default 512)")
    add_point(p)
    add_repeats(p)
    add_perf_analyzer(p)
    p.set_defaults(handler=run_batching)


def run_batching(args: argparse.Namespace) -> int:
    """Dynamic batching settings side by side; print batching.md."""
    from tritonrec.bench.serving.batching import BATCHER_SETTINGS, BatchingSettings, run_batching_bench

    chosen = tuple(names(args.settings)) or tuple(BATCHER_SETTINGS)
    unknown = sorted(set(chosen) - set(BATCHER_SETTINGS))
    if unknown:
        raise ConfigError(f"unknown batcher setting(s) {unknown}; known: {list(BATCHER_SETTINGS)}")
    if args.spec is not None:
        return _spec_batching(args, chosen)
    settings = BatchingSettings(
        settings=chosen,
        candidate_counts=tuple(int(n) for n in numbers(args.candidates)),
        concurrency=args.concurrency,
        repeats=args.repeats,
        seed=args.seed,
        point=point_settings(args),
    )
    report = run_batching_bench(
        args.export,
        args.out,
        settings,
        command=command_line(),
        perf_analyzer=perf_analyzer_from_args(args.perf_analyzer),
        progress=Console().show,
    )
    return finish(report)


def _spec_batching(args: argparse.Namespace, chosen: tuple[str, ...]) -> int:
    from tritonrec.bench.serving.spec_batching import SpecBatchingSettings, run_spec_batching_bench
    from tritonrec.measure.points import PaSettings
    from tritonrec.measure.spec_traffic import SpecTraffic
    from tritonrec.spec import load_spec

    point = point_settings(args)
    settings = SpecBatchingSettings(
        settings=chosen,
        concurrency=args.concurrency,
        requests=args.requests,
        repeats=args.repeats,
        point=point,
        perf_analyzer=PaSettings(measurement_ms=round(point.window_s * 1000), stability_pct=round(point.stability_pct)),
    )
    report = run_spec_batching_bench(
        args.export,
        args.out,
        load_spec(args.spec),
        settings,
        SpecTraffic(skew=args.query_skew, seed=args.seed),
        command=command_line(),
        perf_analyzer=perf_analyzer_from_args(args.perf_analyzer),
        progress=Console().show,
    )
    return finish(report)


def _spec_efficiency(args: argparse.Namespace, settings: EfficiencySettings) -> int:
    from tritonrec.bench.serving.spec_efficiency import run_spec_efficiency_bench
    from tritonrec.measure.spec_traffic import SpecTraffic
    from tritonrec.spec import load_spec

    if args.url is not None:
        raise ConfigError("--spec serves the spec's model here from --export: --url does not apply")
    spec = load_spec(args.spec)
    variant = None
    if args.tuned is not None:
        from tritonrec.bench.tuning.tune import spec_tuned_variant

        variant = spec_tuned_variant(args.tuned, spec)
    report = run_spec_efficiency_bench(
        args.export,
        args.out,
        spec,
        settings,
        SpecTraffic(skew=args.query_skew, seed=args.seed),
        command=command_line(),
        variant=variant,
        perf_analyzer=perf_analyzer_from_args(args.perf_analyzer),
        progress=Console().show,
    )
    return finish(report)
