"""``tritonrec bench quality`` (ranking-quality report) and ``tritonrec bench contract`` (request contract)."""

from __future__ import annotations

import argparse
import shlex
import sys

from tritonrec.bench.quality import run_quality_report
from tritonrec.data.registry import DatasetName
from tritonrec.errors import ConfigError
from tritonrec.model.config import preset

__all__ = ["run_client", "run_contract", "run_quality"]


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
