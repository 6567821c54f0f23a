"""``tritonrec select``: every runtime x precision x model measured the same way, and the pick for an SLA."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from tritonrec.cli.common import (
    Console,
    add_data_source,
    add_perf_analyzer,
    add_traffic,
    command_line,
    names,
    perf_analyzer_from_args,
    prepare_from_args,
    print_json,
    traffic_from_args,
)
from tritonrec.errors import ConfigError

__all__ = ["register", "run_select_command"]


def register(p: argparse.ArgumentParser) -> None:
    """The arguments of ``tritonrec select``."""
    from tritonrec.select.candidates import Precision, Runtime

    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", type=Path, help="the base model's checkpoint (the FP32 reference)")
    source.add_argument(
        "--spec", type=Path, help="a model spec (TOML): a team's own model on its evaluation rows (needs --export)"
    )
    p.add_argument(
        "--export",
        type=Path,
        default=None,
        help="its `tritonrec export onnx` folder (default: exported); with --spec, its `export onnx --spec` folder",
    )
    p.add_argument(
        "--graph",
        action="append",
        metavar="[NAME=]FILE",
        default=[],
        help="with --spec: another graph of the model (an INT8 variant `quantize --spec` kept, the export of a "
        "compressed model; .onnx for ONNX Runtime, .xml for OpenVINO), measured in process and served; named NAME "
        "or by its file's stem; repeatable",
    )
    p.add_argument(
        "--query-skew", type=float, default=0.0, help="with --spec: Zipf skew of the served requests' queries"
    )
    p.add_argument(
        "--rows-per-request",
        type=int,
        default=0,
        help="with --spec, rows layout: every served request this many rows (default: the median query's)",
    )
    p.add_argument(
        "--int8",
        type=Path,
        action="append",
        default=[],
        help="an INT8 graph of it from `tritonrec quantize`: an ONNX file (ONNX Runtime, Triton) or an OpenVINO IR "
        ".xml (OpenVINO, Triton on OpenVINO); one of each at most",
    )
    p.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME=CHECKPOINT",
        help="another model to consider (a compressed checkpoint), repeatable",
    )
    add_data_source(p, required=False)  # with --checkpoint: checked in run_select_command
    p.add_argument("--out", type=Path, required=True, help="report folder (select.json, .md, .html, plots)")
    p.add_argument("--p99-ms", type=float, default=50.0, help="served p99 SLA (default 50 ms)")
    p.add_argument("--max-auc-drop", type=float, default=0.0008, help="AUC budget (default 0.0008, MLPerf 99.9%%)")
    p.add_argument("--max-ndcg-drop", type=float, default=0.005, help="NDCG@10 budget (default 0.005)")
    p.add_argument("--memory-mib", type=float, default=None, help="peak RSS cap in MiB (default none)")
    p.add_argument("--price-per-hour", type=float, default=1.0, help="machine price per hour (default 1.0)")
    p.add_argument(
        "--runtimes", default=None, help=f"only these runtimes ({', '.join(r.value for r in Runtime)}; default all)"
    )
    p.add_argument(
        "--precisions", default=None, help=f"only these ({', '.join(x.value for x in Precision)}; default all)"
    )
    p.add_argument(
        "--quality-users",
        type=int,
        default=0,
        help="test users (with --spec: evaluation queries) scored per candidate (0 = all; else a random sample "
        "seeded by --seed, and the reference on all of them too)",
    )
    p.add_argument("--repeats", type=int, default=3, help="in-process trials and served rounds (default 3)")
    p.add_argument("--rate", type=float, default=100.0, help="requests/s of the served latency point (default 100)")
    p.add_argument("--concurrency", default="4,8,16,32", help="perf_analyzer concurrencies (default 4,8,16,32)")
    p.add_argument("--measurement-ms", type=int, default=3000, help="perf_analyzer window (default 3000)")
    p.add_argument("--min-s", type=float, default=2.0, help="in process: seconds timed per figure (default 2)")
    add_traffic(p)
    add_perf_analyzer(p)
    p.add_argument(
        "--navigator",
        action="store_true",
        help="also run Triton Model Navigator on the base checkpoint (or the spec's module) and judge its pick by the "
        "same quality budget (its own venv: bash bench/tools/install_model_navigator.sh)",
    )
    p.add_argument("--navigator-python", type=Path, default=None, help="its venv's python (default .tools/...)")
    p.add_argument("--navigator-timeout-s", type=float, default=1800.0, help="stop it after this long (default 1800)")
    p.add_argument(
        "--navigator-cpu-shim",
        action="store_true",
        help="let its Torch runners profile on a CPU-only torch (torch.cuda.synchronize as a no-op; default: stock)",
    )
    p.add_argument("--json", action="store_true", help="print chosen, candidates and peers as one JSON object")
    p.set_defaults(handler=run_select_command)


def _models(args: argparse.Namespace) -> list[Any]:
    from tritonrec.select.run import ModelSource

    for suffix in (".onnx", ".xml"):
        if sum(p.suffix == suffix for p in args.int8) > 1:
            raise ConfigError(f"--int8: one {suffix} file at most")
    if any(p.suffix not in (".onnx", ".xml") or not p.is_file() for p in args.int8):
        raise ConfigError(f"--int8 wants existing .onnx or .xml files, got {[str(p) for p in args.int8]}")
    models = [ModelSource("base", args.checkpoint, args.export, tuple(args.int8))]
    for item in args.model:
        name, sep, path = item.partition("=")
        if not sep or not name or not path or name == "base":
            raise ConfigError(f"--model wants NAME=CHECKPOINT with a name other than base, got {item!r}")
        models.append(ModelSource(name, Path(path)))
    if len({m.name for m in models}) != len(models):
        raise ConfigError("--model names must be unique")
    return models


def _json(record: Any) -> dict[str, Any]:
    keys = ["name", "runtime", "precision", "model", "measured", "ndcg@10", "auc", "p99_ms", "bytes"]
    keys += ["meets_sla", "meets_quality", "reason"]
    rows = []
    for r in record["candidates"]:
        row = {k: r.get(k) for k in keys}
        row["cand_per_s"] = r["cand_per_s"]["median"] if r.get("cand_per_s") else None
        rows.append(row)
    return {"chosen": record["chosen"], "candidates": rows, "peers": record["peers"], "report": record["report_dir"]}


def run_select_command(args: argparse.Namespace) -> int:
    """Measure, pick, write the report; print its Markdown (or the JSON summary)."""
    from tritonrec.measure.points import PaSettings
    from tritonrec.select.candidates import Precision, Runtime
    from tritonrec.select.inprocess import InProcessSettings
    from tritonrec.select.run import SelectSettings, run_select
    from tritonrec.select.selection import Constraints
    from tritonrec.select.served_figures import ServedSettings

    try:
        runtimes = tuple(Runtime(r) for r in names(args.runtimes)) if args.runtimes else None
        precisions = tuple(Precision(x) for x in names(args.precisions)) if args.precisions else None
    except ValueError as e:
        known = f"runtimes: {[r.value for r in Runtime]}, precisions: {[x.value for x in Precision]}"
        raise ConfigError(f"{e}; {known}") from None
    # With --json, stdout carries only the JSON document; progress goes to stderr.
    progress = _to_stderr if args.json else Console().show
    settings = SelectSettings(
        constraints=Constraints(args.p99_ms, args.max_auc_drop, args.max_ndcg_drop, args.memory_mib),
        traffic=_traffic(args),
        quality_users=args.quality_users,
        price_per_hour=args.price_per_hour,
        in_process=InProcessSettings(repeats=args.repeats, min_s=args.min_s),
        served=ServedSettings(
            p99_ms=args.p99_ms,
            rate=args.rate,
            concurrencies=tuple(int(c) for c in names(args.concurrency)),
            repeats=args.repeats,
            perf_analyzer=PaSettings(measurement_ms=args.measurement_ms),
        ),
        runtimes=runtimes,
        precisions=precisions,
        seed=args.seed,
    )
    if args.spec is not None:
        return _select_spec(args, settings, progress)
    if args.graph:
        raise ConfigError("--graph goes with --spec; the bundled model's INT8 graphs are given with --int8")
    if args.dataset is None:
        raise ConfigError("--checkpoint needs --dataset, the data it was trained on (e.g. beauty)")
    data = prepare_from_args(args)
    peers = []
    if args.navigator:
        from tritonrec.select.navigator import NavigatorSettings
        from tritonrec.select.peers import NavigatorPeer

        peers.append(
            NavigatorPeer(
                checkpoint=args.checkpoint,
                data=data,
                dataset=args.dataset,
                data_dir=args.data_dir,
                out_dir=args.out / "navigator",
                constraints=settings.constraints,
                quality_users=args.quality_users,
                quality_seed=settings.seed,
                settings=NavigatorSettings(cpu_sync_shim=args.navigator_cpu_shim),
                python=args.navigator_python,
                timeout_s=args.navigator_timeout_s,
            )
        )
    report = run_select(
        _models(args),
        data,
        args.out,
        settings,
        perf_analyzer=perf_analyzer_from_args(args.perf_analyzer),
        command=command_line(),
        peers=peers,
        progress=progress,
    )
    return _print(args, report)


def _print(args: argparse.Namespace, report: Any) -> int:
    if args.json:
        print_json(_json({**report.record, "report_dir": str(args.out)}))
    else:
        print(report.markdown)
    return 0


def _traffic(args: argparse.Namespace) -> Any:
    """The requests' traffic: Beauty users (the bundled model), or drawn from a spec's evaluation queries."""
    if args.spec is not None:
        from tritonrec.measure.spec_traffic import SpecTraffic

        return SpecTraffic(skew=args.query_skew, seed=args.seed, rows_per_request=args.rows_per_request)
    traffic, _ = traffic_from_args(args)
    return dataclasses.replace(traffic, seed=args.seed)


def _select_spec(args: argparse.Namespace, settings: Any, progress: Any) -> int:
    """``select --spec``: the spec's export and ``--graph`` files, on its evaluation rows."""
    from tritonrec.select.navigator import spec_navigator_settings
    from tritonrec.select.spec_candidates import named_graphs
    from tritonrec.select.spec_run import run_spec_select
    from tritonrec.spec import load_spec

    if args.export is None:
        raise ConfigError("--spec needs --export, the `tritonrec export onnx --spec` folder of the model")
    if args.int8 or args.model:
        raise ConfigError("with --spec, give other graphs with --graph (--int8 and --model are not used)")
    spec = load_spec(args.spec)
    peers = []
    if args.navigator:
        from tritonrec.select.peers import SpecNavigatorPeer

        def navigator(rows: Any) -> SpecNavigatorPeer:
            return SpecNavigatorPeer(
                spec=spec,
                rows=rows,
                out_dir=args.out / "navigator",
                constraints=settings.constraints,
                settings=spec_navigator_settings(spec, cpu_sync_shim=args.navigator_cpu_shim),
                python=args.navigator_python,
                timeout_s=args.navigator_timeout_s,
            )

        peers.append(navigator)
    report = run_spec_select(
        spec,
        args.export,
        args.out,
        settings,
        graphs=named_graphs(args.graph),
        perf_analyzer=perf_analyzer_from_args(args.perf_analyzer),
        command=command_line(),
        peers=peers,
        progress=progress,
    )
    return _print(args, report)


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
