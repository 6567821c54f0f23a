"""``tritonrec train``: train a preset on a dataset and write a checkpoint."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from tritonrec.cli.common import add_data_source, prepare_from_args, print_json, print_metrics
from tritonrec.model.config import Preset

__all__ = ["register", "run_train"]


def register(p: argparse.ArgumentParser) -> None:
    """The arguments of ``tritonrec train``."""
    add_data_source(p)
    p.add_argument("--preset", default=Preset.BASE.value, choices=[m.value for m in Preset], help="model size")
    p.add_argument("--out", type=Path, required=True, help="checkpoint directory to write")
    p.add_argument("--epochs", type=int, default=None, help="maximum epochs")
    p.add_argument("--max-minutes", type=float, default=None, help="training time budget in minutes")
    p.add_argument("--batch-size", type=int, default=None, help="users per step")
    p.add_argument("--lr", type=float, default=None, help="learning rate")
    p.add_argument("--valid-users", type=int, default=None, help="validate on this many users (0 = all)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=run_train)


def run_train(args: argparse.Namespace) -> int:
    """Train a preset and write a checkpoint; print the test metrics."""
    from tritonrec.train.loop import Loss, TrainConfig
    from tritonrec.train.run import train_and_save

    data = prepare_from_args(args)
    overrides = {
        "max_epochs": args.epochs,
        "max_minutes": args.max_minutes,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "valid_users": args.valid_users,
    }
    config = TrainConfig(loss=Loss(data.loss), seed=args.seed, threads=args.threads)
    config = dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None})
    report = train_and_save(data, Preset(args.preset), config, args.out, progress=not (args.quiet or args.json))
    if args.json:
        print_json({k: v for k, v in report.to_dict().items() if k != "epochs"})
        return 0
    print(
        f"trained {report.preset} ({report.n_parameters:,} parameters) on {args.dataset} in "
        f"{report.train_s:.0f} s, best epoch {report.best_epoch} ({report.stopped_by})"
    )
    rows = {"model (test)": report.test, "popularity (test)": report.popularity_test}
    if report.oracle_test is not None:
        rows["ground truth (test)"] = report.oracle_test
    print_metrics(rows)
    print(f"checkpoint: {args.out}")
    return 0
