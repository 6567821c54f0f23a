"""``tritonrec train``, ``tritonrec evaluate`` and ``tritonrec demo``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
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

__all__ = ["check_fits", "prepare_from_args", "run_demo", "run_evaluate", "run_train"]

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


def _round(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}


def _print_table(rows: dict[str, dict[str, Any]]) -> None:
    print(f"{'':18}" + "".join(f"{k:>10}" for k in HEADLINE))
    for name, metrics in rows.items():
        cells = "".join(
            f"{metrics[k]:>10.4f}" if isinstance(metrics.get(k), float) else f"{metrics.get(k, ''):>10}"
            for k in HEADLINE
        )
        print(f"{name:18}{cells}")


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


def _summary_rows(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    rows = {"model (test)": report["test"], "popularity (test)": report["popularity_test"]}
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
    _print_table(_summary_rows(report))
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
        print(json.dumps(_round(metrics), sort_keys=True))
    else:
        _print_table({f"{'onnx' if args.onnx else 'model'} ({args.split})": metrics})
    return 0


def run_demo(args: argparse.Namespace) -> int:
    """Train (or reuse) a model on the bundled Amazon Beauty data, evaluate it, write a summary."""
    preset_name = "small" if args.quick else "base"
    checkpoint_dir = args.checkpoint or Path("artifacts") / f"demo-{preset_name}"
    started = time.perf_counter()
    print("[1/2] loading Amazon Beauty (bundled) and sampling the evaluation negatives ...", flush=True)
    data = prepare_dataset("beauty")
    if args.retrain or not (checkpoint_dir / "checkpoint.json").is_file():
        minutes = 2.0 if args.quick else 14.0
        print(f"[2/2] training preset {preset_name!r} for at most {minutes:g} min -> {checkpoint_dir}", flush=True)
        config = TrainConfig(max_minutes=minutes, valid_users=3000 if args.quick else 5000)
        report = train_and_save(data, preset_name, config, checkpoint_dir)
    else:
        print(f"[2/2] reusing {checkpoint_dir} (pass --retrain to train again)", flush=True)
        checkpoint = load_checkpoint(checkpoint_dir)
        check_fits(checkpoint.spec, data, checkpoint_dir)
        report = dict(checkpoint.metrics)
        report["test"] = evaluate(torch_scorer(checkpoint.model), data.test)
    summary = {
        "dataset": data.info,
        "preset": preset_name,
        "checkpoint": str(checkpoint_dir),
        "n_parameters": report["n_parameters"],
        "train_seconds": report["train_seconds"],
        "test": _round(report["test"]),
        "popularity_test": _round(report["popularity_test"]),
        "ndcg@10_eager": round(report["test"]["ndcg@10"], 4),
        "auc_eager": round(report["test"]["auc"], 4),
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    _print_table(_summary_rows(report))
    print(f"summary: {args.out / 'summary.json'}")
    return 0
