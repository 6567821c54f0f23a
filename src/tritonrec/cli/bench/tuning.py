"""``tritonrec bench tune / model-analyzer``: the tuning studies."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tritonrec.cli.bench.options import (
    add_export_out,
    add_spec_traffic,
    finish,
    required_perf_analyzer,
)
from tritonrec.cli.common import (
    Console,
    add_perf_analyzer,
    add_traffic,
    command_line,
    names,
    numbers,
    traffic_from_args,
)
from tritonrec.errors import ConfigError

if TYPE_CHECKING:
    from tritonrec.cli.bench.options import Subparsers
    from tritonrec.measure.points import PaSettings

__all__ = ["register"]

MAX_BATCH_SIZES = "1,4,8,16,32,64"
"""The bundled model's users per execution tried by ``bench tune``."""


def register(sub: Subparsers) -> None:
    """Add this group's subcommands to ``tritonrec bench``."""
    _tune(sub)
    _model_analyzer(sub)


def _add_perf_analyzer_window(p: argparse.ArgumentParser) -> None:
    p.add_argument("--requests", type=int, default=512, help="distinct requests drawn (default 512)")
    p.add_argument("--measurement-ms", type=int, default=3000, help="perf_analyzer window (default 3000)")
    p.add_argument(
        "--pa-stability-pct", type=int, default=25, help="perf_analyzer's spread allowed between windows (default 25)"
    )


def _pa_settings(args: argparse.Namespace) -> PaSettings:
    from tritonrec.measure.points import PaSettings

    return PaSettings(measurement_ms=args.measurement_ms, stability_pct=args.pa_stability_pct)


def _tune(sub: Subparsers) -> None:
    p = sub.add_parser(
        "tune",
        help="search ranker_cpu's batcher, instances x threads and layout for the most candidates/s within a p99",
    )
    add_export_out(p, "tune.json, .md, .png")
    p.add_argument("--p99-ms", type=float, default=100.0, help="latency target (default 100 ms)")
    p.add_argument("--concurrency", default="8,16,32", help="concurrencies per configuration (default 8,16,32)")
    p.add_argument("--layouts", default="ragged,padded", help="graph layouts to try (default ragged,padded)")
    p.add_argument(
        "--max-batch-sizes", default=MAX_BATCH_SIZES, help=f"max_batch_size values (default {MAX_BATCH_SIZES})"
    )
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
    _add_perf_analyzer_window(p)
    p.add_argument(
        "--model-analyzer",
        type=Path,
        default=None,
        help="a `bench model-analyzer` report (folder or model_analyzer.json): its best configuration joins the "
        "side-by-side confirmation as 'model analyzer'",
    )
    add_spec_traffic(
        p,
        "tune its <name>_cpu (--export: its `export onnx --spec` folder) on requests drawn from its evaluation "
        "rows; --max-batch-sizes then counts rows (rows layout; default 64,256,1024,4096) or queries (default "
        "1,4,16,64), and the layout is the spec's",
    )
    add_traffic(p)
    add_perf_analyzer(p)
    p.set_defaults(handler=run_tune)


def run_tune(args: argparse.Namespace) -> int:
    """The coordinate search over ranker_cpu's serving configuration; print tune.md."""
    from tritonrec.bench.tuning.tune import TuneSettings
    from tritonrec.bench.tuning.tune import run_tune as tune

    spec = None
    if args.spec is not None:
        from tritonrec.bench.tuning.tune import spec_batch_sizes
        from tritonrec.measure.spec_traffic import SpecTraffic
        from tritonrec.spec import load_spec

        spec = load_spec(args.spec)
        traffic: Any = SpecTraffic(skew=args.query_skew)
        sizes = spec_batch_sizes(spec) if args.max_batch_sizes == MAX_BATCH_SIZES else numbers(args.max_batch_sizes)
    else:
        traffic, _ = traffic_from_args(args)
        sizes = numbers(args.max_batch_sizes)
    settings = TuneSettings(
        p99_ms=args.p99_ms,
        concurrencies=tuple(int(c) for c in numbers(args.concurrency)),
        max_batch_sizes=tuple(int(b) for b in sizes),
        queue_delays_us=tuple(int(d) for d in numbers(args.queue_delays_us)),
        instance_threads=_instance_threads(args.instance_threads),
        layouts=tuple(names(args.layouts)),
        passes=args.passes,
        confirm_repeats=args.confirm_repeats,
        perf_analyzer=_pa_settings(args),
    )
    extra = None
    if args.model_analyzer is not None:
        from tritonrec.bench.tuning.model_analyzer_results import report_contender

        if spec is None:
            extra = {"model analyzer": report_contender(args.model_analyzer)}
        else:
            served = f"{spec.name}_cpu"
            extra = {"model analyzer": report_contender(args.model_analyzer, served, spec.layout.value)}
    report = tune(
        args.export,
        args.out,
        settings,
        traffic,
        perf_analyzer=required_perf_analyzer(args.perf_analyzer),
        command=command_line(),
        requests=args.requests,
        extra=extra,
        spec=spec,
        progress=Console().show,
    )
    return finish(report)


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


def _model_analyzer(sub: Subparsers) -> None:
    p = sub.add_parser(
        "model-analyzer",
        help="NVIDIA Triton Model Analyzer's search on ranker_cpu or a spec's <name>_cpu (local launch, bundled "
        "tritonserver, our perf_analyzer, same traffic and p99 target as bench tune); its best beside its default",
    )
    add_export_out(p, "model_analyzer.json, .md, .png; Model Analyzer's own files in OUT/ma")
    p.add_argument("--p99-ms", type=float, default=100.0, help="the p99 constraint (default 100 ms)")
    p.add_argument("--min-concurrency", type=int, default=8, help="search from this concurrency (default 8)")
    p.add_argument("--max-concurrency", type=int, default=32, help="up to this one, doubling (default 32)")
    p.add_argument("--min-instances", type=int, default=1, help="fewest instances searched (default 1)")
    p.add_argument(
        "--max-instances", type=int, default=None, help="most instances searched (default: the CPUs the server may use)"
    )
    p.add_argument(
        "--min-batch-size",
        type=int,
        default=None,
        help="smallest max_batch_size (default 16; with --spec 256 rows, or 4 queries in the query + candidates "
        "layout)",
    )
    p.add_argument(
        "--max-batch-size",
        type=int,
        default=None,
        help="largest max_batch_size, doubling (default 64; with --spec 4096 rows, or 64 queries)",
    )
    _add_perf_analyzer_window(p)
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
    add_spec_traffic(
        p,
        "search its <name>_cpu (--export: its `export onnx --spec` folder) on requests drawn from its "
        "evaluation rows, as `bench tune --spec` measures it",
    )
    add_traffic(p)
    add_perf_analyzer(p)
    p.set_defaults(handler=run_model_analyzer)


def run_model_analyzer(args: argparse.Namespace) -> int:
    """Model Analyzer's search on ranker_cpu (or a spec's <name>_cpu); print model_analyzer.md."""
    from tritonrec.bench.tuning.model_analyzer import ModelAnalyzerSettings
    from tritonrec.bench.tuning.model_analyzer import run_model_analyzer as profile

    spec = None
    if args.spec is not None:
        from tritonrec.bench.tuning.tune import spec_batch_sizes
        from tritonrec.measure.spec_traffic import SpecTraffic
        from tritonrec.spec import load_spec

        spec = load_spec(args.spec)
        traffic: Any = SpecTraffic(skew=args.query_skew)
        sizes = spec_batch_sizes(spec)
        low, high = sizes[1], sizes[-1]  # past the smallest: a rows request holds a query's rows
    else:
        traffic, _ = traffic_from_args(args)
        low, high = 16, 64
    settings = ModelAnalyzerSettings(
        p99_ms=args.p99_ms,
        min_concurrency=args.min_concurrency,
        max_concurrency=args.max_concurrency,
        min_instances=args.min_instances,
        max_instances=args.max_instances,
        min_batch_size=low if args.min_batch_size is None else args.min_batch_size,
        max_batch_size=high if args.max_batch_size is None else args.max_batch_size,
        requests=args.requests,
        perf_analyzer=_pa_settings(args),
        keep_preferred=args.keep_preferred,
        timeout_s=args.timeout_s,
    )
    report = profile(
        args.export,
        args.out,
        settings,
        traffic,
        perf_analyzer=required_perf_analyzer(args.perf_analyzer),
        command=command_line(),
        binary=args.model_analyzer_bin,
        spec=spec,
        progress=Console().show,
    )
    return finish(report)
