"""``tritonrec bench reliability``: bad input, overload, faults, rollout and soak on the local server."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from tritonrec.cli.bench.options import (
    add_export_out,
    finish,
)
from tritonrec.cli.common import (
    Console,
    command_line,
)

if TYPE_CHECKING:
    from tritonrec.cli.bench.options import Subparsers

__all__ = ["register"]


def register(sub: Subparsers) -> None:
    """Add this group's subcommands to ``tritonrec bench``."""
    _reliability(sub)


def _reliability(sub: Subparsers) -> None:
    p = sub.add_parser(
        "reliability",
        help="fuzzing, overload, kill -9, dead backend, corrupt model, rollout and soak on the local server",
    )
    add_export_out(p, "reliability.json, .md")
    p.add_argument("--fuzz-cases", type=int, default=5000, help="generated bad requests (default 5000)")
    p.add_argument("--overload-s", type=float, default=10.0, help="seconds of overload per retry setting (default 10)")
    p.add_argument("--soak-s", type=float, default=600.0, help="seconds of steady load (default 600)")
    p.add_argument("--locust-s", type=float, default=20.0, help="seconds of the locust run kill -9 hits (default 20)")
    p.set_defaults(handler=run_reliability)


def run_reliability(args: argparse.Namespace) -> int:
    """Every reliability measurement against the export served locally; print reliability.md."""
    from tritonrec.bench.reliability.run import ReliabilitySettings, run_reliability_bench

    settings = ReliabilitySettings(
        fuzz_cases=args.fuzz_cases, overload_s=args.overload_s, soak_s=args.soak_s, locust_s=args.locust_s
    )
    report = run_reliability_bench(args.export, args.out, settings, command=command_line(), progress=Console().show)
    return finish(report)
