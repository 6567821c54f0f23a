"""``tritonrec bench gpu``: the ranker per precision on one device, in process and served."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from tritonrec.cli.bench.options import (
    finish,
)
from tritonrec.cli.common import (
    Console,
    add_perf_analyzer,
    command_line,
    names,
    numbers,
    perf_analyzer_from_args,
)
from tritonrec.errors import ConfigError

if TYPE_CHECKING:
    from tritonrec.cli.bench.options import Subparsers

__all__ = ["register"]


def register(sub: Subparsers) -> None:
    """Add this group's subcommands to ``tritonrec bench``."""
    _gpu(sub)


def _gpu(sub: Subparsers) -> None:
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
    p.add_argument(
        "--spec",
        type=Path,
        default=None,
        help="a team's model spec (rows layout): rows/s and quality per precision, after the served stage",
    )
    p.add_argument(
        "--spec-batches",
        default="1024,16384,131072",
        help="rows per timed call of the spec's model (default 1024,16384,131072)",
    )
    add_perf_analyzer(p)
    p.add_argument("--deadline-s", type=float, default=340.0, help="time budget of the whole run (default 340)")
    p.add_argument("--served-reserve-s", type=float, default=200.0, help="kept for the served stage (default 200)")
    p.add_argument("--min-time-s", type=float, default=0.3, help="timed seconds per in-process point (default 0.3)")
    p.add_argument("--min-calls", type=int, default=10, help="timed calls per in-process point (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=run_gpu)


def run_gpu(args: argparse.Namespace) -> int:
    """In-process and served measurements of the ranker on one device; print gpu.md."""
    from tritonrec.bench.gpu.inprocess_stage import TimingRule
    from tritonrec.bench.gpu.run import GpuBenchSettings, run_gpu_bench
    from tritonrec.bench.gpu.served_stage import ServedSettings
    from tritonrec.bench.gpu.spec_stage import SpecStageSettings
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
    timing = TimingRule(min_s=args.min_time_s, min_calls=args.min_calls, max_calls=max(200, args.min_calls))
    spec = None
    if args.spec is not None:
        spec = SpecStageSettings(
            spec=args.spec,
            device=args.device,
            batches=tuple(int(b) for b in numbers(args.spec_batches)),
            precisions=precisions,
            cast=args.cast,
            timing=timing,
            seed=args.seed,
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
        spec=spec,
        timing=timing,
        deadline_s=args.deadline_s,
        served_reserve_s=args.served_reserve_s,
        seed=args.seed,
    )
    perf_analyzer = None if args.no_serve else perf_analyzer_from_args(args.perf_analyzer)
    report = run_gpu_bench(
        settings,
        args.out,
        command=command_line(),
        perf_analyzer=perf_analyzer,
        work_dir=args.work_dir,
        progress=Console().show,
    )
    return finish(report)
