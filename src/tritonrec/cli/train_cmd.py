"""``tritonrec train`` and ``tritonrec evaluate``, and the table helpers the other commands share."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from tritonrec.data.registry import PreparedData, prepare_dataset
from tritonrec.errors import CheckpointError
from tritonrec.metrics import Scorer, evaluate
from tritonrec.model.config import preset
from tritonrec.model.scoring import torch_scorer
from tritonrec.train.checkpoint import load_checkpoint
from tritonrec.train.loop import Loss, TrainConfig
from tritonrec.train.run import train_and_save

__all__ = [
    "check_fits",
    "prepare_from_args",
    "print_table",
    "round_metrics",
    "run_evaluate",
    "run_train",
    "summary_rows",
]

HEADLINE = ("ndcg@10", "hr@10", "auc", "mrr", "logloss", "n_users")


def prepare_from_args(args: argparse.Namespace) -> PreparedData:
    """Load and split the dataset named by the common data arguments."""
    return prepare_dataset(
        args.dataset,
        args.data_dir,
        history_len=args.history_len,
        seed=args.seed,
        skip_malformed=args.skip_malformed,
        valid_user_fraction=args.valid_user_fraction,
    )


def round_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """Round float metrics to 4 decimals for printing and summaries."""
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}


def print_table(rows: dict[str, dict[str, Any]]) -> None:
    """Print one row of headline metrics per entry of ``rows``."""
    print(f"{'':26}" + "".join(f"{k:>10}" for k in HEADLINE))
    for name, metrics in rows.items():
        cells = "".join(
            f"{metrics[k]:>10.4f}" if isinstance(metrics.get(k), float) else f"{metrics.get(k, ''):>10}"
            for k in HEADLINE
        )
        print(f"{name:26}{cells}")


def _train_config(args: argparse.Namespace, loss: str) -> TrainConfig:
    overrides = {
        "max_epochs": args.epochs,
        "max_minutes": args.max_minutes,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "valid_users": args.valid_users,
    }
    base = TrainConfig(loss=Loss(loss), seed=args.seed, threads=args.threads)
    return dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})


def summary_rows(report: dict[str, Any], *, model_row: bool = True) -> dict[str, dict[str, Any]]:
    """Table rows of a training report: the model's, the popularity baseline's, the ground truth's if known."""
    rows = {"model (test)": report["test"]} if model_row else {}
    rows["popularity (test)"] = report["popularity_test"]
    if "oracle_test" in report:
        rows["ground truth (test)"] = report["oracle_test"]
    return rows


def run_train(args: argparse.Namespace) -> int:
    """Train a preset and write a checkpoint; print the test metrics."""
    preset(args.preset)  # fail on an unknown preset before loading any data
    data = prepare_from_args(args)
    config = _train_config(args, data.loss)
    report = train_and_save(data, args.preset, config, args.out, progress=not (args.quiet or args.json))
    if args.json:
        print(json.dumps({k: v for k, v in report.items() if k != "epochs"}, sort_keys=True))
        return 0
    print(
        f"trained {args.preset} ({report['n_parameters']:,} parameters) on {args.dataset} in "
        f"{report['train_seconds']:.0f} s, best epoch {report['best_epoch']} ({report['stopped_by']})"
    )
    print_table(summary_rows(report))
    print(f"checkpoint: {args.out}")
    return 0


def check_fits(checkpoint_spec: Any, data: PreparedData, directory: Path) -> None:
    """Raise :class:`CheckpointError` when the checkpoint was trained on another item vocabulary."""
    if checkpoint_spec.n_items != data.spec.n_items:
        raise CheckpointError(
            f"{directory} was trained on {checkpoint_spec.n_items} items, the {data.name.value} data has "
            f"{data.spec.n_items}: evaluate it on the dataset it was trained on"
        )


def _artifact_scorer(args: argparse.Namespace, data: PreparedData) -> Scorer:
    if args.onnx is not None:
        from tritonrec.export.checkpoint_export import read_export_spec
        from tritonrec.export.ort_scorer import onnx_scorer

        check_fits(read_export_spec(args.onnx), data, args.onnx)
        return onnx_scorer(args.onnx)
    checkpoint = load_checkpoint(args.checkpoint)
    check_fits(checkpoint.spec, data, args.checkpoint)
    return torch_scorer(checkpoint.model)


def run_evaluate(args: argparse.Namespace) -> int:
    """Score a checkpoint (eager) or an exported ONNX file on a split and print the metrics."""
    data = prepare_from_args(args)
    scorer = _artifact_scorer(args, data)
    rows = data.test if args.split == "test" else data.valid
    if args.limit:
        rows = rows.head(args.limit)
    metrics = evaluate(scorer, rows)
    if args.json:
        print(json.dumps(round_metrics(metrics), sort_keys=True))
    else:
        print_table({f"{'onnx' if args.onnx else 'model'} ({args.split})": metrics})
    return 0
