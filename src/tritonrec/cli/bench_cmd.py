"""``tritonrec bench ...``: every benchmark; each writes JSON + Markdown (+ PNG) and prints its Markdown.

Only ``bench quality`` and ``bench compression`` train (torch); the others need the client, the load generators
and, with ``--export``, the bundled server. Library imports happen inside the handlers, so ``bench sweep --url``
runs on a ``tritonrec[bench]`` install.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from tritonrec.cli.common import Console, command_line, names, numbers
from tritonrec.errors import ConfigError

if TYPE_CHECKING:
    from tritonrec.bench.loadgen import PointSettings
    from tritonrec.bench.traffic import TrafficSpec

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
    _compression(sub)


# -- shared arguments -----------------------------------------------------------------------------------------


def _add_export_out(p: argparse.ArgumentParser, results: str) -> None:
    p.add_argument("--export", type=Path, required=True, help="folder written by `tritonrec export onnx`")
    p.add_argument("--out", type=Path, required=True, help=f"results folder ({results})")


def _add_target(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", default=None, help="a running Triton's gRPC endpoint, host:port")
    where.add_argument("--export", type=Path, default=None, help="serve this ONNX export locally (ranker_cpu)")


def _add_perf_analyzer(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--perf-analyzer",
        default=None,
        help=f"path of perf_analyzer, or 'auto' (.tools/perf_analyzer or PATH); {what}",
    )


def _add_traffic(p: argparse.ArgumentParser) -> None:
    from tritonrec.bench.traffic import Distribution, TrafficSource

    p.add_argument("--scenario", type=Path, default=None, help="scenario TOML (bench/scenarios/): model and traffic")
    p.add_argument(
        "--source", default=TrafficSource.BEAUTY.value, choices=[s.value for s in TrafficSource], help="whose users"
    )
    p.add_argument("--candidates", default="50-500", help="candidates per request: N or LOW-HIGH (default 50-500)")
    p.add_argument(
        "--candidate-distribution",
        default=Distribution.UNIFORM.value,
        choices=[d.value for d in Distribution if d is not Distribution.FIXED],
        help="how LOW-HIGH counts are drawn (default uniform)",
    )
    p.add_argument("--user-zipf", type=float, default=1.1, help="Zipf exponent over users (default 1.1)")


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


def _traffic(args: argparse.Namespace) -> tuple[TrafficSpec, str | None]:
    """The traffic (and model) of ``--scenario``, else of the traffic flags."""
    from tritonrec.bench.scenario import load_scenario
    from tritonrec.bench.traffic import CandidateCounts, Distribution, TrafficSource, TrafficSpec

    if args.scenario is not None:
        scenario = load_scenario(args.scenario)
        return scenario.traffic, scenario.model
    low, _, high = args.candidates.partition("-")
    if not (low.isdigit() and (high.isdigit() or not high)):
        raise ConfigError(f"--candidates must be N or LOW-HIGH, got {args.candidates!r}")
    distribution = Distribution(args.candidate_distribution) if high else Distribution.FIXED
    counts = CandidateCounts(low=int(low), high=int(high or low), distribution=distribution)
    return TrafficSpec(source=TrafficSource(args.source), user_zipf=args.user_zipf, candidates=counts), None


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
    p.add_argument("--requests", type=int, default=1500, help="requests per client and concurrency")
    _add_perf_analyzer(p, "omitted: clients only")
    p.set_defaults(handler=run_client)


def run_client(args: argparse.Namespace) -> int:
    """Measure the sync and asyncio clients beside perf_analyzer; print client.md."""
    from tritonrec.bench.client_bench import ClientBenchSettings, run_client_bench

    settings = ClientBenchSettings(
        concurrencies=tuple(int(c) for c in numbers(args.concurrency)), requests=args.requests
    )
    report = run_client_bench(
        args.export,
        args.out,
        settings,
        perf_analyzer=_perf_analyzer_path(args.perf_analyzer, required=False),
        command=command_line(),
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
        p.add_argument("--out", type=Path, required=True, help="results folder (sweep.json, sweep.md, sweep.png)")
        p.add_argument("--model", default=None, help=f"model name (default: the scenario's, else {DEFAULT_MODEL})")
        p.add_argument("--concurrency", default=concurrency, help=f"closed-loop concurrencies (default {concurrency})")
        p.add_argument("--requests", type=int, default=1024, help="distinct requests drawn (default 1024)")
        _add_traffic(p)
        _add_point(p)
        p.set_defaults(handler=run_sweep)
    _add_perf_analyzer(sweep, "omitted: ours only")
    _add_perf_analyzer(pa, "default: auto")
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
        point=_point_settings(args),
    )
    perf_analyzer = _perf_analyzer_path(args.perf_analyzer, required=only_pa)
    with contextlib.ExitStack() as stack:
        url = _endpoint_url(args, stack)
        report = sweep(
            url,
            traffic,
            settings,
            args.out,
            command=command_line(),
            perf_analyzer=perf_analyzer,
            progress=Console().show,
        )
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
    p.add_argument("--candidates", type=int, default=200, help="candidates per user (default 200)")
    p.add_argument("--concurrency", default="4,8,16,32", help="concurrencies to find the best one")
    _add_point(p)
    p.set_defaults(handler=run_efficiency)


def run_efficiency(args: argparse.Namespace) -> int:
    """Triton over gRPC vs in-process ONNX Runtime; print efficiency.md."""
    from tritonrec.bench.efficiency import EfficiencySettings, run_efficiency_bench

    settings = EfficiencySettings(
        n_candidates=args.candidates,
        concurrencies=tuple(int(c) for c in numbers(args.concurrency)),
        point=_point_settings(args),
    )
    report = run_efficiency_bench(
        args.export, args.out, settings, command=command_line(), url=args.url, progress=Console().show
    )
    print(report.markdown)
    return 0


def _batching(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("batching", help="dynamic batching on/off and a few batcher settings, N=8 and N=200")
    _add_export_out(p, "batching.json, .md, .png")
    p.add_argument("--candidates", default="8,200", help="candidate counts (default 8,200)")
    p.add_argument("--concurrency", type=int, default=16, help="closed-loop concurrency (default 16)")
    _add_perf_analyzer(p, "omitted: ours only")
    p.add_argument("--settings", default="", help="comma-separated batcher settings (default: all)")
    _add_point(p)
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
        point=_point_settings(args),
    )
    report = run_batching_bench(
        args.export,
        args.out,
        settings,
        command=command_line(),
        perf_analyzer=_perf_analyzer_path(args.perf_analyzer, required=False),
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
    p.add_argument("--distill-minutes", type=float, default=14.0, help="student training budget (default 14)")
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
        distill = DistillOptions.for_preset(
            "small", temperature=args.temperature, weight=args.weight, max_minutes=args.distill_minutes
        )
        plans.append(
            beauty_plan(
                args.parent,
                prune_ratios=tuple(numbers(args.prune_ratios)),
                share_ratios=tuple(numbers(args.share_ratios)),
                finetune=finetune,
                train=TrainConfig(max_minutes=args.train_minutes),
                distill=distill,
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
