"""What the ``tritonrec bench`` studies share on the command line: arguments, the endpoint, and the ending.

Every study's handler builds its settings from the arguments, runs the study (which writes its record) and ends with
:func:`finish`: the study's Markdown printed, its exit code returned.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from tritonrec.cli.common import perf_analyzer_from_args
from tritonrec.errors import ConfigError

if TYPE_CHECKING:
    from tritonrec.measure.loadgen import PointSettings
    from tritonrec.measure.points import Target
    from tritonrec.records import Report

    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = [
    "add_export_out",
    "add_point",
    "add_repeats",
    "add_target",
    "endpoint_url",
    "finish",
    "point_settings",
    "measured_target",
    "required_perf_analyzer",
]


def finish(report: Report) -> int:
    """Print the study's Markdown; its exit code (a study that judges an SLA records ``exit_code``, else 0)."""
    print(report.markdown)
    return int(report.record.get("exit_code", 0))


def add_export_out(p: argparse.ArgumentParser, results: str) -> None:
    """``--export`` (the export to serve here) and ``--out`` (the results folder, holding ``results``)."""
    p.add_argument("--export", type=Path, required=True, help="folder written by `tritonrec export onnx`")
    p.add_argument("--out", type=Path, required=True, help=f"results folder ({results})")


def add_spec_traffic(p: argparse.ArgumentParser, what: str) -> None:
    """``--spec`` (``what`` it does with the spec) and ``--query-skew``: requests drawn from its evaluation rows."""
    p.add_argument("--spec", type=Path, default=None, help=f"a model spec: {what}")
    p.add_argument("--query-skew", type=float, default=0.0, help="with --spec: Zipf skew over queries (default 0)")


def add_target(p: argparse.ArgumentParser) -> None:
    """``--url`` (a running Triton) or ``--export`` (served here), one of them."""
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", default=None, help="a running Triton's gRPC endpoint, host:port")
    where.add_argument("--export", type=Path, default=None, help="serve this ONNX export locally (ranker_cpu)")


def add_repeats(p: argparse.ArgumentParser) -> None:
    """``--repeats`` and ``--seed``: runs per point, in a seeded random order."""
    p.add_argument("--repeats", type=int, default=3, help="runs per point and tool, in random order (default 3)")
    p.add_argument("--seed", type=int, default=0, help="seeds the traffic and the order of the runs (default 0)")


def add_point(p: argparse.ArgumentParser) -> None:
    """The measurement window of one point: warm-up, window, stability rule."""
    p.add_argument("--warmup-s", type=float, default=3.0, help="warm-up before each point (default 3 s)")
    p.add_argument("--window-s", type=float, default=3.0, help="measurement window (default 3 s)")
    p.add_argument("--max-windows", type=int, default=8, help="windows before giving up on stability (default 8)")
    p.add_argument("--stability-pct", type=float, default=15.0, help="spread allowed between windows (default 15)")


def point_settings(args: argparse.Namespace) -> PointSettings:
    """The :class:`~tritonrec.measure.loadgen.PointSettings` of :func:`add_point`'s arguments."""
    from tritonrec.measure.loadgen import PointSettings

    return PointSettings(
        warmup_s=args.warmup_s,
        window_s=args.window_s,
        max_windows=args.max_windows,
        stable_windows=min(PointSettings().stable_windows, args.max_windows),
        stability_pct=args.stability_pct,
    )


def endpoint_url(args: argparse.Namespace, stack: contextlib.ExitStack) -> str:
    """``--url``, or the gRPC url of a local server for ``--export`` that lives as long as ``stack``."""
    if args.url:
        return str(args.url)
    from tritonrec.serving.endpoint import local_endpoint

    return stack.enter_context(local_endpoint(args.export)).grpc_url


def measured_target(args: argparse.Namespace, stack: contextlib.ExitStack, perf_analyzer: Path | None) -> Target:
    """The endpoint to measure (``--url``, or ``--export`` served here) with its metrics and CPU accounting."""
    from tritonrec.measure.points import Target

    if args.url:
        return Target.at(str(args.url), metrics_url=args.metrics_url, perf_analyzer=perf_analyzer)
    from tritonrec.serving.endpoint import local_endpoint

    server = stack.enter_context(local_endpoint(args.export))
    return Target.at(server.grpc_url, metrics_url=server.metrics_url, perf_analyzer=perf_analyzer)


def required_perf_analyzer(value: str) -> Path:
    """The perf_analyzer ``--perf-analyzer`` names, for a study that cannot run without it."""
    perf_analyzer = perf_analyzer_from_args(value, required=True)
    if perf_analyzer is None:  # required=True raises first; this keeps the type narrow
        raise ConfigError("perf_analyzer is needed")
    return perf_analyzer
