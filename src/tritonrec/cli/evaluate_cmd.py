"""``tritonrec evaluate``: score a checkpoint (eager), an exported ONNX file, or a spec's model on its rows."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tritonrec.cli.common import add_data_source, prepare_from_args, print_json, print_metrics, rounded
from tritonrec.errors import ConfigError

__all__ = ["register", "run_evaluate"]


def register(p: argparse.ArgumentParser) -> None:
    """The arguments of ``tritonrec evaluate``."""
    from tritonrec.pipeline.evaluation import Split

    source = p.add_mutually_exclusive_group()
    source.add_argument("--checkpoint", type=Path, help="checkpoint directory (eager PyTorch)")
    source.add_argument("--spec", type=Path, help="a model spec (TOML): its model on its rows (--onnx: the export)")
    p.add_argument("--onnx", type=Path, help="ONNX file written by `tritonrec export onnx` (ONNX Runtime, CPU)")
    p.add_argument("--url", default=None, help="with --spec: score through this running Triton (gRPC host:port)")
    p.add_argument("--model", default=None, help="with --url: the served model (default <spec name>_cpu)")
    p.add_argument(
        "--compare",
        action="store_true",
        help="with --spec --url: also score every row in process (eager, or --onnx FILE; OpenVINO for an .xml) and "
        "report the largest |served - in-process| score",
    )
    add_data_source(p, required=False)
    p.add_argument(
        "--split",
        default=None,
        help=f"which rows: {', '.join(s.value for s in Split)} (default test); with --spec: evaluate, calibrate, all "
        "(default evaluate)",
    )
    p.add_argument("--limit", type=int, default=0, help="score only the first N users (0 = all)")
    p.add_argument(
        "--sample",
        action="store_true",
        help="with --limit: a random sample of N users seeded by --seed (what `tritonrec select --quality-users N` "
        "scores) instead of the first N",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    """Score the artifact and print its metrics."""
    if args.spec is not None:
        return _evaluate_spec(args)
    from tritonrec.pipeline.evaluation import Split, evaluate_artifact

    if (args.checkpoint is None) == (args.onnx is None):
        raise ConfigError("name one thing to score: --checkpoint or --onnx (with --dataset), or --spec")
    if args.dataset is None:
        raise ConfigError("--checkpoint and --onnx need --dataset (the split scored)")
    split = _choice(Split, args.split or Split.TEST.value, "--split")
    data = prepare_from_args(args)
    result = evaluate_artifact(
        data,
        checkpoint=args.checkpoint,
        onnx=args.onnx,
        split=split,
        limit=args.limit,
        sample_seed=args.seed if args.sample else None,
    )
    if args.json:
        print_json(rounded(result.metrics))
    else:
        label = "onnx" if result.runtime == "onnxruntime" else "model"
        print_metrics({f"{label} ({result.split.value})": result.metrics})
    return 0


def _choice(kind: Any, value: str, flag: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise ConfigError(f"{flag} must be one of {[k.value for k in kind]}, got {value!r}") from None


def _evaluate_spec(args: argparse.Namespace) -> int:
    from tritonrec.pipeline.spec_steps import RowsSplit, spec_quality_step
    from tritonrec.spec import load_spec

    split = _choice(RowsSplit, args.split or RowsSplit.EVALUATE.value, "--split")
    spec = load_spec(args.spec)
    if args.compare and args.url is None:
        raise ConfigError("--compare compares the served scores with in-process ones: give --url")
    quality = spec_quality_step(spec, onnx=args.onnx, url=args.url, model=args.model, split=split, compare=args.compare)
    compared = {}
    if quality.max_abs_diff is not None:
        compared = {"max_abs_diff": quality.max_abs_diff, "compared_with": quality.compared_with}
    if args.json:
        print_json({"runtime": quality.runtime, "split": split.value, **rounded(quality.metrics), **compared})
        return 0
    keys = ["auc", "gauc", "logloss", *(f"ndcg@{k}" for k in spec.metrics.cutoffs), "mrr", "n_rows", "n_queries"]
    print(f"{spec.name} ({quality.runtime}, {split.value} rows): "
          + ", ".join(f"{k} {quality.metrics[k]:.4f}" if isinstance(quality.metrics[k], float) else
                      f"{k} {quality.metrics[k]:,}" for k in keys))  # fmt: skip
    if compared:
        print(f"max |served - {quality.compared_with}| score over {quality.metrics['n_rows']:,} rows: "
              f"{quality.max_abs_diff:.2e}")  # fmt: skip
    return 0
