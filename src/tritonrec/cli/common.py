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

__all__ = [
    "Console",
    "add_data_source",
    "command_line",
    "names",
    "numbers",
    "prepare_from_args",
    "print_json",
    "print_metrics",
    "rounded",
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
