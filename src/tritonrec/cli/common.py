"""What several commands share: the data arguments, list parsing, the command line, printing. Imports no torch."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tritonrec.errors import ConfigError

if TYPE_CHECKING:
    from tritonrec.data.registry import PreparedData
    from tritonrec.measure.traffic import TrafficSpec

__all__ = [
    "Console",
    "add_data_source",
    "add_perf_analyzer",
    "add_traffic",
    "command_line",
    "names",
    "numbers",
    "perf_analyzer_from_args",
    "prepare_from_args",
    "print_json",
    "print_metrics",
    "rounded",
    "traffic_from_args",
]

HEADLINE = ("ndcg@10", "hr@10", "auc", "mrr", "logloss", "n_users")


def add_data_source(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    """``--dataset`` (choices from :class:`~tritonrec.data.registry.DatasetName`) and the split arguments."""
    from tritonrec.data.registry import DatasetName

    p.add_argument("--dataset", required=required, choices=[d.value for d in DatasetName], help="which dataset to use")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="folder with the dataset files (default: the copy bundled with tritonrec; for synthetic, a dataset "
        "generated in memory from the default config)",
    )
    p.add_argument("--history-len", type=int, default=50, help="history length L for sequence data (default 50)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, negatives and training (default 0)")
    p.add_argument("--skip-malformed", action="store_true", help="skip malformed input lines instead of failing")
    p.add_argument(
        "--valid-user-fraction",
        type=float,
        default=1.0,
        help="sequence data: share of users whose second-last item is held out for validation; the others also "
        "train on it (1.0 = classic leave-one-out, the default; test items are never trained on)",
    )


def prepare_from_args(args: argparse.Namespace) -> PreparedData:
    """Load and split the dataset named by :func:`add_data_source`'s arguments."""
    from tritonrec.data.registry import prepare_dataset

    return prepare_dataset(
        args.dataset,
        args.data_dir,
        history_len=args.history_len,
        seed=args.seed,
        skip_malformed=args.skip_malformed,
        valid_user_fraction=args.valid_user_fraction,
    )


def names(text: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``."""
    return [name.strip() for name in text.split(",") if name.strip()]


def numbers(text: str) -> list[float]:
    """Comma-separated numbers.

    Raises:
        ConfigError: something is not a number.
    """
    try:
        return [float(v) for v in names(text)]
    except ValueError:
        raise ConfigError(f"expected comma-separated numbers, got {text!r}") from None


def command_line() -> str:
    """The command line that is running, quoted as a shell would need it (recorded in every report)."""
    return "tritonrec " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def rounded(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Float metrics rounded to 4 decimals (for printing and summaries)."""
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}


def print_json(value: Any) -> None:
    """Print one JSON object on one line (what ``--json`` promises)."""
    print(json.dumps(value, sort_keys=True))


def print_metrics(rows: Mapping[str, Mapping[str, Any]]) -> None:
    """One row of headline metrics per entry of ``rows``."""
    print(f"{'':26}" + "".join(f"{k:>10}" for k in HEADLINE))
    for name, metrics in rows.items():
        cells = "".join(
            f"{metrics[k]:>10.4f}" if isinstance(metrics.get(k), float) else f"{metrics.get(k, ''):>10}"
            for k in HEADLINE
        )
        print(f"{name:26}{cells}")


class Console:
    """Progress on stdout: messages on their own lines, counters rewritten in place on one line."""

    def __init__(self) -> None:
        self._line_open = False

    def show(self, message: str) -> None:
        """A message on its own line."""
        self.end_line()
        print(message, flush=True)

    def show_in_place(self, message: str) -> None:
        """A counter that rewrites the current line."""
        print(f"\r      {message}", end="", flush=True)
        self._line_open = True

    def end_line(self) -> None:
        """Finish a line left open by :meth:`show_in_place`."""
        if self._line_open:
            print(flush=True)
            self._line_open = False


def add_perf_analyzer(p: argparse.ArgumentParser, default: str = "auto") -> None:
    """``--perf-analyzer``: the binary, 'auto' or 'none'."""
    p.add_argument(
        "--perf-analyzer",
        default=default,
        help="path of perf_analyzer; 'auto' (the default): .tools/perf_analyzer or PATH, ours only if neither has it; "
        "'none': ours only",
    )


def add_traffic(p: argparse.ArgumentParser) -> None:
    """The traffic flags of the benchmarks: a scenario file, or the users' source and candidate counts."""
    from tritonrec.measure.traffic import Distribution, TrafficSource

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


def traffic_from_args(args: argparse.Namespace) -> tuple[TrafficSpec, str | None]:
    """The traffic (and model) of ``--scenario``, else of the traffic flags."""
    from tritonrec.measure.scenario import load_scenario
    from tritonrec.measure.traffic import CandidateCounts, Distribution, TrafficSource, TrafficSpec

    if args.scenario is not None:
        scenario = load_scenario(args.scenario)
        return scenario.traffic, scenario.model
    low, _, high = args.candidates.partition("-")
    if not (low.isdigit() and (high.isdigit() or not high)):
        raise ConfigError(f"--candidates must be N or LOW-HIGH, got {args.candidates!r}")
    distribution = Distribution(args.candidate_distribution) if high else Distribution.FIXED
    counts = CandidateCounts(low=int(low), high=int(high or low), distribution=distribution)
    return TrafficSpec(source=TrafficSource(args.source), user_zipf=args.user_zipf, candidates=counts), None


def perf_analyzer_from_args(value: str, *, required: bool = False) -> Path | None:
    """The perf_analyzer binary ``--perf-analyzer`` names; None for 'none', or for 'auto' when none is installed."""
    from tritonrec.measure.perf_analyzer import find_perf_analyzer

    if value == "none" and not required:
        return None
    found = find_perf_analyzer(None if value in ("auto", "none") else Path(value))
    if found is None:
        if required:
            raise ConfigError("perf_analyzer not found; install it: bash bench/tools/install_perf_analyzer.sh")
        print("perf_analyzer not found (bash bench/tools/install_perf_analyzer.sh installs it): ours only", flush=True)
    return found
