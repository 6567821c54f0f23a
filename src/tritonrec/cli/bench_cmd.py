"""``tritonrec bench ...``: every benchmark; each writes JSON + Markdown (+ PNG) and prints its Markdown.

Only ``bench quality`` and ``bench compression`` train (torch) and ``bench gpu`` runs the model in PyTorch; the
others need the client, the load generators and, with ``--export``, the bundled server. Library imports happen
inside the handlers, so ``bench sweep --url`` runs on a ``tritonrec[bench]`` install.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from tritonrec.cli.common import Console, command_line, names, numbers
from tritonrec.cli.common import add_perf_analyzer as _add_perf_analyzer
from tritonrec.cli.common import add_traffic as _add_traffic
from tritonrec.cli.common import perf_analyzer_from_args as _perf_analyzer_path
from tritonrec.cli.common import traffic_from_args as _traffic
from tritonrec.errors import ConfigError

if TYPE_CHECKING:
    from tritonrec.bench.loadgen import PointSettings
    from tritonrec.bench.points import Target

__all__ = ["register"]


def register(p: argparse.ArgumentParser) -> None:
    """The ``tritonrec bench`` subcommands."""
    sub = p.add_subparsers(dest="bench_command", required=True)
    _quality(sub)
    _contract(sub)
    _client(sub)
    _sweep(sub)
    _locust(sub)
    _efficiency(sub)
    _batching(sub)
    _reliability(sub)
    _tune(sub)
    _model_analyzer(sub)
    _gpu(sub)
    _compression(sub)


# -- shared arguments -----------------------------------------------------------------------------------------


def _add_export_out(p: argparse.ArgumentParser, results: str) -> None:
    p.add_argument("--export", type=Path, required=True, help="folder written by `tritonrec export onnx`")
    p.add_argument("--out", type=Path, required=True, help=f"results folder ({results})")


def _add_target(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", default=None, help="a running Triton's gRPC endpoint, host:port")
    where.add_argument("--export", type=Path, default=None, help="serve this ONNX export locally (ranker_cpu)")


def _add_repeats(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repeats", type=int, default=3, help="runs per point and tool, in random order (default 3)")
    p.add_argument("--seed", type=int, default=0, help="seeds the traffic and the order of the runs (default 0)")


def _add_point(p: argparse.ArgumentParser) -> None:
    p.add_argument("--warmup-s", type=float, default=3.0, help="warm-up before each point (default 3 s)")
    p.add_argument("--window-s", type=float, default=3.0, help="measurement window (default 3 s)")
    p.add_argument("--max-windows", type=int, default=8, help="windows before giving up on stability (default 8)")
    p.add_argument("--stability-pct", type=float, default=15.0, help="spread allowed between windows (default 15)")


def _point_settings(args: argparse.Namespace) -> PointSettings:
    from tritonrec.bench.loadgen import PointSettings

    return PointSettings(
        warmup_s=args.warmup_s,
        window_s=args.window_s,
        max_windows=args.max_windows,
        stable_windows=min(PointSettings().stable_windows, args.max_windows),
        stability_pct=args.stability_pct,
    )


def _endpoint_url(args: argparse.Namespace, stack: contextlib.ExitStack) -> str:
    """``--url``, or the gRPC url of a local server for ``--export`` that lives as long as ``stack``."""
    if args.url:
        return str(args.url)
    from tritonrec.bench.endpoint import local_endpoint

    return stack.enter_context(local_endpoint(args.export)).grpc_url


def _target(args: argparse.Namespace, stack: contextlib.ExitStack, perf_analyzer: Path | None) -> Target:
    """The endpoint to measure (``--url``, or ``--export`` served here) with its metrics and CPU accounting."""
    from tritonrec.bench.points import Target

    if args.url:
        return Target.at(str(args.url), metrics_url=args.metrics_url, perf_analyzer=perf_analyzer)
    from tritonrec.bench.endpoint import local_endpoint

    server = stack.enter_context(local_endpoint(args.export))
    return Target.at(server.grpc_url, metrics_url=server.metrics_url, perf_analyzer=perf_analyzer)


# -- subcommands ----------------------------------------------------------------------------------------------


def _quality(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from tritonrec.data.registry import DatasetName
    from tritonrec.model.config import Preset

    p = sub.add_parser("quality", help="train presets on datasets and write the quality report")
    p.add_argument("--datasets", default=",".join(d.value for d in DatasetName), help="comma-separated datasets")
    p.add_argument("--presets", default="small,base", help=f"comma-separated, of: {', '.join(Preset)}")
    p.add_argument("--max-minutes", type=float, default=14.0, help="training budget per run")
    p.add_argument("--out", type=Path, required=True, help="results folder (quality.json, quality.md)")
    p.add_argument("--checkpoints", type=Path, default=Path("artifacts/quality"), help="checkpoint folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--valid-user-fraction", type=float, default=1.0, help="see `tritonrec train --help`")
    p.set_defaults(handler=run_quality)


def run_quality(args: argparse.Namespace) -> int:
    """Train the requested presets on the requested datasets; print quality.md."""
    from tritonrec.bench.quality import run_quality_report
    from tritonrec.data.registry import DatasetName
    from tritonrec.model.config import Preset

    try:
        presets = [Preset(name) for name in names(args.presets)]
        datasets = [DatasetName(name).value for name in names(args.datasets)]
    except ValueError as e:
        raise ConfigError(f"{e}; presets: {list(Preset)}, datasets: {list(DatasetName)}") from None
    if not datasets or not presets:
        raise ConfigError("--datasets and --presets must name at least one each")
    report = run_quality_report(
        datasets,
        presets,
        args.out,
        max_minutes=args.max_minutes,
        checkpoints_dir=args.checkpoints,
        command=command_line(),
        seed=args.seed,
        valid_user_fraction=args.valid_user_fraction,
        progress=Console().show,
    )
    print(report.markdown)
    return 0


def _contract(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "contract", help="history once per request vs once per candidate row: bytes and throughput, side by side"
    )
    _add_export_out(p, "contract.json, contract.md")
    p.add_argument("--candidates", type=int, default=200, help="candidates per user (default 200)")
    p.add_argument("--requests", type=int, default=600, help="users sent through Triton per contract")
    p.add_argument("--concurrency", type=int, default=8, help="gRPC requests in flight (default 8)")
    p.set_defaults(handler=run_contract)


def run_contract(args: argparse.Namespace) -> int:
    """Measure the two request contracts side by side; print contract.md."""
    from tritonrec.bench.contract import ContractSettings, run_contract_bench

    settings = ContractSettings(
        n_candidates=args.candidates, triton_requests=args.requests, concurrency=args.concurrency
    )
    print(run_contract_bench(args.export, args.out, settings, command=command_line()).markdown)
    return 0


def _client(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "client", help="sync and asyncio RankingClient beside perf_analyzer on ranker_cpu, same requests, one run"
    )
    _add_export_out(p, "client.json, client.md")
    p.add_argument("--concurrency", default="1,8,32", help="comma-separated concurrencies (default 1,8,32)")
    p.add_argument("--requests", type=int, default=1500, help="requests per client run (default 1500)")
    p.add_argument("--candidates", type=int, default=200, help="candidates per user (default 200)")
    p.add_argument(
        "--baseline-src",
        type=Path,
        default=None,
        help="another checkout's src/ folder: its clients run too, for a before/after (e.g. a git worktree)",
    )
    _add_repeats(p)
    _add_perf_analyzer(p)
    p.set_defaults(handler=run_client)


def run_client(args: argparse.Namespace) -> int:
    """Measure the sync and asyncio clients beside perf_analyzer; print client.md."""
    from tritonrec.bench.client_bench import ClientBenchSettings, run_client_bench

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
        perf_analyzer=_perf_analyzer_path(args.perf_analyzer),
        command=command_line(),
        baseline_src=args.baseline_src,
        progress=Console().show,
    )
    print(report.markdown)
    return 0


def _sweep(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from tritonrec.contract import DEFAULT_MODEL

    sweep = sub.add_parser(
        "sweep", help="closed-loop (concurrency) and open-loop (Poisson rate) sweep, perf_analyzer beside it"
    )
    pa = sub.add_parser(
        "perf-analyzer", help="NVIDIA perf_analyzer on real requests at each concurrency, beside our harness"
    )
    for p, concurrency in ((sweep, "1,4,8,16,32"), (pa, "8,32")):
        _add_target(p)
        p.add_argument(
            "--metrics-url",
            default=None,
            help="with --url: Triton's metrics endpoint (default http://<host>:8002/metrics)",
        )
        p.add_argument("--out", type=Path, required=True, help="results folder (sweep.json, sweep.md, sweep.png)")
        p.add_argument("--model", default=None, help=f"model name (default: the scenario's, else {DEFAULT_MODEL})")
        p.add_argument("--concurrency", default=concurrency, help=f"closed-loop concurrencies (default {concurrency})")
        p.add_argument("--requests", type=int, default=1024, help="distinct requests drawn (default 1024)")
        _add_traffic(p)
        _add_point(p)
        _add_repeats(p)
        _add_perf_analyzer(p)
        p.set_defaults(handler=run_sweep)
    sweep.add_argument("--rates", default="", help="open-loop request rates per second, comma-separated")


def run_sweep(args: argparse.Namespace) -> int:
    """``bench sweep`` and ``bench perf-analyzer``: measure the endpoint; print sweep.md."""
    from tritonrec.bench.sweep import SweepSettings
    from tritonrec.bench.sweep import run_sweep as sweep
    from tritonrec.contract import DEFAULT_MODEL

    only_pa = args.bench_command == "perf-analyzer"
    traffic, scenario_model = _traffic(args)
    settings = SweepSettings(
        model=args.model or scenario_model or DEFAULT_MODEL,
        concurrencies=tuple(int(c) for c in numbers(args.concurrency)),
        rates=() if only_pa else tuple(numbers(args.rates)),
        requests=args.requests,
        repeats=args.repeats,
        seed=args.seed,
        point=_point_settings(args),
    )
    perf_analyzer = _perf_analyzer_path(args.perf_analyzer, required=only_pa)
    with contextlib.ExitStack() as stack:
        target = _target(args, stack, perf_analyzer)
        report = sweep(target, traffic, settings, args.out, command=command_line(), progress=Console().show)
    print(report.markdown)
    return 0


def _locust(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "locust", help="one headless locust run of a scenario: CSV/HTML, SLA exit code, locust's own CPU cost"
    )
    _add_target(p)
    p.add_argument("--scenario", type=Path, required=True, help="scenario TOML (bench/scenarios/)")
    p.add_argument("--processes", type=int, default=0, help="locust worker processes (default 0: one process)")
    p.add_argument("--out", type=Path, required=True, help="results folder (locust.json, .md, CSV, HTML)")
    p.set_defaults(handler=run_locust)


def run_locust(args: argparse.Namespace) -> int:
    """Run the scenario headless; print locust.md; the exit code is locust's (1 when the SLA is missed)."""
    from tritonrec.bench.locust_run import run_locust as locust

    if args.processes < 0:
        raise ConfigError(f"--processes must be >= 0, got {args.processes}")
    with contextlib.ExitStack() as stack:
        url = _endpoint_url(args, stack)
        report = locust(url, args.scenario, args.out, processes=args.processes, command=command_line())
    print(report.markdown)
    return int(report.record["exit_code"])


def _efficiency(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "efficiency", help="candidates/s through Triton over gRPC / in-process ONNX Runtime at the same batch sizes"
    )
    _add_export_out(p, "efficiency.json, .md")
    p.add_argument("--url", default=None, help="measure this running Triton (serving --export) instead of a local one")
    p.add_argument(
        "--traffics",
        default="50-500,200",
        help="candidates per request, N or LOW-HIGH, comma-separated (default 50-500,200)",
    )
    p.add_argument("--concurrency", default="4,8,16,32,64", help="each measured; the best is used")
    p.add_argument("--in-process-s", type=float, default=6.0, help="time per in-process measurement (default 6 s)")
    _add_point(p)
    _add_repeats(p)
    _add_perf_analyzer(p)
    p.set_defaults(handler=run_efficiency)


def run_efficiency(args: argparse.Namespace) -> int:
    """Triton over gRPC vs in-process ONNX Runtime; print efficiency.md."""
    from tritonrec.bench.efficiency import EfficiencySettings, run_efficiency_bench

    settings = EfficiencySettings(
        traffics=tuple(names(args.traffics)),
        concurrencies=tuple(int(c) for c in numbers(args.concurrency)),
        repeats=args.repeats,
        seed=args.seed,
        in_process_s=args.in_process_s,
        point=_point_settings(args),
    )
    report = run_efficiency_bench(
        args.export,
        args.out,
        settings,
        command=command_line(),
        url=args.url,
        perf_analyzer=_perf_analyzer_path(args.perf_analyzer),
        progress=Console().show,
    )
    print(report.markdown)
    return 0


def _batching(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("batching", help="dynamic batching on/off and a few batcher settings, N=8 and N=200")
    _add_export_out(p, "batching.json, .md, .png")
    p.add_argument("--candidates", default="8,200", help="candidate counts (default 8,200)")
    p.add_argument("--concurrency", type=int, default=16, help="closed-loop concurrency (default 16)")
    p.add_argument("--settings", default="", help="comma-separated batcher settings (default: all)")
    _add_point(p)
    _add_repeats(p)
    _add_perf_analyzer(p)
    p.set_defaults(handler=run_batching)


def run_batching(args: argparse.Namespace) -> int:
    """Dynamic batching settings side by side; print batching.md."""
    from tritonrec.bench.batching import BATCHER_SETTINGS, BatchingSettings, run_batching_bench

    chosen = tuple(names(args.settings)) or tuple(BATCHER_SETTINGS)
    unknown = sorted(set(chosen) - set(BATCHER_SETTINGS))
    if unknown:
        raise ConfigError(f"unknown batcher setting(s) {unknown}; known: {list(BATCHER_SETTINGS)}")
    settings = BatchingSettings(
        settings=chosen,
        candidate_counts=tuple(int(n) for n in numbers(args.candidates)),
        concurrency=args.concurrency,
        repeats=args.repeats,
        seed=args.seed,
        point=_point_settings(args),
    )
    report = run_batching_bench(
        args.export,
        args.out,
        settings,
        command=command_line(),
        perf_analyzer=_perf_analyzer_path(args.perf_analyzer),
        progress=Console().show,
    )
    print(report.markdown)
    return 0


def _reliability(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "reliability",
        help="fuzzing, overload, kill -9, dead backend, corrupt model, rollout and soak on the local server",
    )
    _add_export_out(p, "reliability.json, .md")
    p.add_argument("--fuzz-cases", type=int, default=5000, help="generated bad requests (default 5000)")
    p.add_argument("--overload-s", type=float, default=10.0, help="seconds of overload per retry setting (default 10)")
    p.add_argument("--soak-s", type=float, default=600.0, help="seconds of steady load (default 600)")
    p.add_argument("--locust-s", type=float, default=20.0, help="seconds of the locust run kill -9 hits (default 20)")
    p.set_defaults(handler=run_reliability)


def run_reliability(args: argparse.Namespace) -> int:
    """Every reliability measurement against the export served locally; print reliability.md."""
    from tritonrec.bench.reliability import ReliabilitySettings, run_reliability_bench

    settings = ReliabilitySettings(
        fuzz_cases=args.fuzz_cases, overload_s=args.overload_s, soak_s=args.soak_s, locust_s=args.locust_s
    )
    report = run_reliability_bench(args.export, args.out, settings, command=command_line(), progress=Console().show)
    print(report.markdown)
    return 0


def _gpu(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "gpu",
        help="the ranker per precision in process (candidates/s, quality vs FP32) and served as ranker_gpu "
        "(what bench/gpu/run.sh runs on a GPU machine; --device cpu runs it here)",
    )
    p.add_argument("--device", default="cuda", help="cuda, cuda:K or cpu (default cuda)")
    p.add_argument("--out", type=Path, required=True, help="results folder (gpu.json, gpu.md, server.log)")
    p.add_argument("--work-dir", type=Path, default=None, help="export and repository of the served stage (OUT/served)")
    p.add_argument("--checkpoint", type=Path, default=None, help="the Beauty base checkpoint (default: seeded weights)")
    p.add_argument("--models", default="base,large", help="in-process models: base, large (default both)")
    p.add_argument("--large-items", type=int, default=1_000_000, help="synthetic catalogue of `large` (default 1M)")
    p.add_argument("--batches", default="64,256,1024,4096", help="users per in-process call (default 64,256,1024,4096)")
    p.add_argument("--candidates", type=int, default=200, help="candidates per user (default 200)")
    p.add_argument("--precisions", default="fp32,bf16,fp16", help="in-process precisions, fp32 first")
    p.add_argument("--cast", default="weights", choices=["weights", "autocast"], help="how bf16/fp16 are applied")
    p.add_argument("--executions", default="eager,cuda_graph", help="of: eager, cuda_graph (default both)")
    p.add_argument("--compile", default="bf16", help="precisions also run through torch.compile ('' = none)")
    p.add_argument("--quality-users", type=int, default=0, help="Beauty test users per precision (0 = all)")
    p.add_argument("--no-serve", action="store_true", help="skip the served stage")
    p.add_argument("--served-precision", default="bf16", choices=["fp32", "bf16", "fp16"], help="ranker_gpu's")
    p.add_argument("--concurrency", default="16,64,128,256,512", help="served closed-loop concurrencies")
    p.add_argument("--instances", type=int, default=2, help="ranker_gpu instances (default 2)")
    p.add_argument("--max-batch-size", type=int, default=512, help="ranker_gpu users per execution (default 512)")
    p.add_argument("--requests", type=int, default=512, help="distinct served requests (default 512)")
    p.add_argument("--measurement-ms", type=int, default=2000, help="window per served point (default 2000)")
    p.add_argument("--parity-users", type=int, default=512, help="users scored served and in process (default 512)")
    _add_perf_analyzer(p)
    p.add_argument("--deadline-s", type=float, default=340.0, help="time budget of the whole run (default 340)")
    p.add_argument("--served-reserve-s", type=float, default=200.0, help="kept for the served stage (default 200)")
    p.add_argument("--min-time-s", type=float, default=0.3, help="timed seconds per in-process point (default 0.3)")
    p.add_argument("--min-calls", type=int, default=10, help="timed calls per in-process point (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=run_gpu)


def run_gpu(args: argparse.Namespace) -> int:
    """In-process and served measurements of the ranker on one device; print gpu.md."""
    from tritonrec.bench.gpu_bench import GpuBenchSettings, run_gpu_bench
    from tritonrec.bench.gpu_inprocess import TimingRule
    from tritonrec.bench.gpu_served import ServedSettings
    from tritonrec.scorers.torch_device import Execution, Precision

    try:
        precisions = tuple(Precision(p) for p in names(args.precisions))
        compiled = tuple(Precision(p) for p in names(args.compile))
        executions = tuple(Execution(e) for e in names(args.executions))
    except ValueError as e:
        raise ConfigError(f"{e}; precisions: {list(Precision)}, executions: eager, cuda_graph") from None
    on_cpu = args.device == "cpu"
    served = ServedSettings(
        precision=args.served_precision,
        cuda_graphs=not on_cpu,
        instances=args.instances,
        max_batch_size=args.max_batch_size,
        concurrencies=tuple(int(c) for c in numbers(args.concurrency)),
        n_candidates=args.candidates,
        requests=args.requests,
        parity_users=args.parity_users,
        measurement_ms=args.measurement_ms,
    )
    settings = GpuBenchSettings(
        device=args.device,
        checkpoint=args.checkpoint,
        models=tuple(names(args.models)),
        large_items=args.large_items,
        batches=tuple(int(b) for b in numbers(args.batches)),
        n_candidates=args.candidates,
        precisions=precisions,
        cast=args.cast,
        executions=executions,
        compile_precisions=compiled,
        quality_users=args.quality_users,
        serve=not args.no_serve,
        served=served,
        timing=TimingRule(min_s=args.min_time_s, min_calls=args.min_calls, max_calls=max(200, args.min_calls)),
        deadline_s=args.deadline_s,
        served_reserve_s=args.served_reserve_s,
        seed=args.seed,
    )
    perf_analyzer = None if args.no_serve else _perf_analyzer_path(args.perf_analyzer)
    report = run_gpu_bench(
        settings,
        args.out,
        command=command_line(),
        perf_analyzer=perf_analyzer,
        work_dir=args.work_dir,
        progress=Console().show,
    )
    print(report.markdown)
    return 0


def _tune(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "tune",
        help="search ranker_cpu's batcher, instances x threads and layout for the most candidates/s within a p99",
    )
    _add_export_out(p, "tune.json, .md, .png")
    p.add_argument("--p99-ms", type=float, default=100.0, help="latency target (default 100 ms)")
    p.add_argument("--concurrency", default="8,16,32", help="concurrencies per configuration (default 8,16,32)")
    p.add_argument("--layouts", default="ragged,padded", help="graph layouts to try (default ragged,padded)")
    p.add_argument("--max-batch-sizes", default="1,4,8,16,32,64", help="max_batch_size values (default 1,4,8,16,32,64)")
    p.add_argument("--queue-delays-us", default="0,2000,5000", help="max_queue_delay values (default 0,2000,5000)")
    p.add_argument(
        "--instance-threads",
        default=None,
        help="instances x threads to try, e.g. 1x2,2x1 (default: every split of the CPUs the server may use)",
    )
    p.add_argument("--passes", type=int, default=2, help="rounds over the dimensions (default 2)")
    p.add_argument(
        "--confirm-repeats", type=int, default=3, help="rounds of the side-by-side confirmation (default 3; 0 skips)"
    )
    p.add_argument("--requests", type=int, default=512, help="distinct requests drawn (default 512)")
    p.add_argument("--measurement-ms", type=int, default=3000, help="perf_analyzer window (default 3000)")
    p.add_argument(
        "--pa-stability-pct", type=int, default=25, help="perf_analyzer's spread allowed between windows (default 25)"
    )
    p.add_argument(
        "--model-analyzer",
        type=Path,
        default=None,
        help="a `bench model-analyzer` report (folder or model_analyzer.json): its best configuration joins the "
        "side-by-side confirmation as 'model analyzer'",
    )
    _add_traffic(p)
    _add_perf_analyzer(p)
    p.set_defaults(handler=run_tune)


def run_tune(args: argparse.Namespace) -> int:
    """The coordinate search over ranker_cpu's serving configuration; print tune.md."""
    from tritonrec.bench.points import PaSettings
    from tritonrec.bench.tune import TuneSettings
    from tritonrec.bench.tune import run_tune as tune

    traffic, _ = _traffic(args)
    settings = TuneSettings(
        p99_ms=args.p99_ms,
        concurrencies=tuple(int(c) for c in numbers(args.concurrency)),
        max_batch_sizes=tuple(int(b) for b in numbers(args.max_batch_sizes)),
        queue_delays_us=tuple(int(d) for d in numbers(args.queue_delays_us)),
        instance_threads=_instance_threads(args.instance_threads),
        layouts=tuple(names(args.layouts)),
        passes=args.passes,
        confirm_repeats=args.confirm_repeats,
        perf_analyzer=PaSettings(measurement_ms=args.measurement_ms, stability_pct=args.pa_stability_pct),
    )
    extra = None
    if args.model_analyzer is not None:
        from tritonrec.bench.model_analyzer_results import report_contender

        extra = {"model analyzer": report_contender(args.model_analyzer)}
    report = tune(
        args.export,
        args.out,
        settings,
        traffic,
        perf_analyzer=_required_perf_analyzer(args.perf_analyzer),
        command=command_line(),
        requests=args.requests,
        extra=extra,
        progress=Console().show,
    )
    print(report.markdown)
    return 0


def _instance_threads(text: str | None) -> tuple[tuple[int, int], ...] | None:
    if text is None:
        return None
    shapes = []
    for item in names(text):
        instances, sep, threads = item.partition("x")
        if not (sep and instances.isdigit() and threads.isdigit() and int(instances) > 0 and int(threads) > 0):
            raise ConfigError(f"--instance-threads wants INSTANCESxTHREADS items such as 2x1, got {item!r}")
        shapes.append((int(instances), int(threads)))
    return tuple(shapes)


def _required_perf_analyzer(value: str) -> Path:
    perf_analyzer = _perf_analyzer_path(value, required=True)
    if perf_analyzer is None:  # required=True raises first; this keeps the type narrow
        raise ConfigError("perf_analyzer is needed")
    return perf_analyzer


def _model_analyzer(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "model-analyzer",
        help="NVIDIA Triton Model Analyzer's search on ranker_cpu (local launch, bundled tritonserver, our "
        "perf_analyzer, same traffic and p99 target as bench tune); its best beside its default",
    )
    _add_export_out(p, "model_analyzer.json, .md, .png; Model Analyzer's own files in OUT/ma")
    p.add_argument("--p99-ms", type=float, default=100.0, help="the p99 constraint (default 100 ms)")
    p.add_argument("--min-concurrency", type=int, default=8, help="search from this concurrency (default 8)")
    p.add_argument("--max-concurrency", type=int, default=32, help="up to this one, doubling (default 32)")
    p.add_argument("--min-instances", type=int, default=1, help="fewest instances searched (default 1)")
    p.add_argument(
        "--max-instances", type=int, default=None, help="most instances searched (default: the CPUs the server may use)"
    )
    p.add_argument("--min-batch-size", type=int, default=16, help="smallest max_batch_size (default 16)")
    p.add_argument("--max-batch-size", type=int, default=64, help="largest max_batch_size, doubling (default 64)")
    p.add_argument("--requests", type=int, default=512, help="distinct requests in the input data (default 512)")
    p.add_argument("--measurement-ms", type=int, default=3000, help="perf_analyzer window (default 3000)")
    p.add_argument(
        "--pa-stability-pct", type=int, default=25, help="perf_analyzer's spread allowed between windows (default 25)"
    )
    p.add_argument(
        "--keep-preferred",
        action="store_true",
        help="start from the shipped config with its preferred batch sizes (Model Analyzer then measures its default "
        "only: they make every smaller max_batch_size illegal to it)",
    )
    p.add_argument("--timeout-s", type=float, default=3600.0, help="limit of the whole Model Analyzer run (3600)")
    p.add_argument(
        "--model-analyzer-bin",
        type=Path,
        default=None,
        help="the model-analyzer binary (default: $MODEL_ANALYZER, .tools/model_analyzer, /work/ma/venv, PATH)",
    )
    _add_traffic(p)
    _add_perf_analyzer(p)
    p.set_defaults(handler=run_model_analyzer)


def run_model_analyzer(args: argparse.Namespace) -> int:
    """Model Analyzer's search on ranker_cpu; print model_analyzer.md."""
    from tritonrec.bench.model_analyzer import ModelAnalyzerSettings
    from tritonrec.bench.model_analyzer import run_model_analyzer as profile
    from tritonrec.bench.points import PaSettings

    traffic, _ = _traffic(args)
    settings = ModelAnalyzerSettings(
        p99_ms=args.p99_ms,
        min_concurrency=args.min_concurrency,
        max_concurrency=args.max_concurrency,
        min_instances=args.min_instances,
        max_instances=args.max_instances,
        min_batch_size=args.min_batch_size,
        max_batch_size=args.max_batch_size,
        requests=args.requests,
        perf_analyzer=PaSettings(measurement_ms=args.measurement_ms, stability_pct=args.pa_stability_pct),
        keep_preferred=args.keep_preferred,
        timeout_s=args.timeout_s,
    )
    report = profile(
        args.export,
        args.out,
        settings,
        traffic,
        perf_analyzer=_required_perf_analyzer(args.perf_analyzer),
        command=command_line(),
        binary=args.model_analyzer_bin,
        progress=Console().show,
    )
    print(report.markdown)
    return 0


def _compression(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "compression", help="every compression method and ratio: size, quality, in-process and served speed"
    )
    p.add_argument("--out", type=Path, required=True, help="results folder (compression.json, .md)")
    p.add_argument("--work-dir", type=Path, default=Path("artifacts/compression"), help="variant checkpoints + ONNX")
    p.add_argument(
        "--parent", type=Path, default=Path("artifacts/beauty-base"), help="Beauty base (trained if missing)"
    )
    p.add_argument("--train-minutes", type=float, default=14.0, help="budget of a parent trained here (default 14)")
    p.add_argument("--prune-ratios", default="0.25,0.5,0.75", help="pruning ratios (default 0.25,0.5,0.75)")
    p.add_argument("--share-ratios", default="4,16", help="hash/QR compression ratios (default 4,16)")
    p.add_argument("--finetune-epochs", type=int, default=2, help="fine-tuning epochs after prune/share (default 2)")
    p.add_argument("--finetune-minutes", type=float, default=8.0, help="fine-tuning budget (default 8)")
    p.add_argument(
        "--students",
        default="small",
        help="students distilled from the parent, comma-separated: preset names or JSON ModelConfig files (named by"
        " their stem), e.g. small,bench/students/small-d24.json (default small; the first also gets a labels-only"
        " control)",
    )
    p.add_argument("--distill-minutes", type=float, default=14.0, help="training budget per student (default 14)")
    p.add_argument("--temperature", type=float, default=2.0, help="distillation temperature (default 2)")
    p.add_argument("--weight", type=float, default=0.5, help="distillation teacher weight (default 0.5)")
    p.add_argument("--synthetic-dir", type=Path, default=None, help="a `tritonrec data synth` folder: adds `large`")
    p.add_argument("--synthetic-parent", type=Path, default=Path("artifacts/synth-large"), help="its large parent")
    p.add_argument("--synthetic-train-minutes", type=float, default=30.0, help="budget of that parent (default 30)")
    p.add_argument("--synthetic-share-ratio", type=float, default=4.0, help="hash/QR ratio there (default 4)")
    p.add_argument("--synthetic-finetune-minutes", type=float, default=20.0, help="its fine-tuning budget (default 20)")
    p.add_argument("--eval-users", type=int, default=0, help="score only the first N test users (0 = all)")
    p.add_argument("--no-beauty", action="store_true", help="only the synthetic plan")
    p.add_argument("--repeats", type=int, default=7, help="in-process rounds (default 7)")
    p.add_argument("--repeat-s", type=float, default=1.5, help="in-process seconds per model and round (default 1.5)")
    p.add_argument("--concurrency", type=int, default=8, help="served closed-loop concurrency (default 8)")
    p.add_argument("--threads", type=int, default=1, help="torch threads while training (default 1; 0 = torch's)")
    _add_point(p)
    p.set_defaults(handler=run_compression)


def run_compression(args: argparse.Namespace) -> int:
    """Compress, export and measure every variant; print compression.md."""
    from tritonrec.bench.compression import SpeedSettings, beauty_plan, run_compression_bench, synthetic_plan
    from tritonrec.compress.options import DistillOptions, FinetuneOptions
    from tritonrec.train.loop import Loss, TrainConfig

    finetune = FinetuneOptions(max_epochs=args.finetune_epochs, max_minutes=args.finetune_minutes)
    plans = []
    if not args.no_beauty:
        budget = {"temperature": args.temperature, "weight": args.weight, "max_minutes": args.distill_minutes}
        students = tuple(DistillOptions.for_student(name, **budget) for name in names(args.students))
        plans.append(
            beauty_plan(
                args.parent,
                prune_ratios=tuple(numbers(args.prune_ratios)),
                share_ratios=tuple(numbers(args.share_ratios)),
                finetune=finetune,
                train=TrainConfig(max_minutes=args.train_minutes),
                students=students,
                eval_users=args.eval_users,
            )
        )
    if args.synthetic_dir is not None:
        train = TrainConfig(loss=Loss.BCE, max_minutes=args.synthetic_train_minutes)
        large_finetune = dataclasses.replace(finetune, max_minutes=args.synthetic_finetune_minutes)
        plans.append(
            synthetic_plan(
                args.synthetic_dir,
                args.synthetic_parent,
                share_ratio=args.synthetic_share_ratio,
                finetune=large_finetune,
                train=train,
                eval_users=args.eval_users,
            )  # fmt: skip
        )
    if not plans:
        raise ConfigError("nothing to measure: --no-beauty needs --synthetic-dir")
    settings = SpeedSettings(
        repeats=args.repeats, repeat_s=args.repeat_s, concurrency=args.concurrency, point=_point_settings(args),
        threads=args.threads,
    )  # fmt: skip
    report = run_compression_bench(
        plans, args.work_dir, args.out, settings, command=command_line(), progress=Console().show
    )
    print(report.markdown)
    return 0
