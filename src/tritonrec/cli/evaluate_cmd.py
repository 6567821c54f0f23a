"""``tritonrec evaluate``: score a checkpoint (eager) or an exported ONNX file on a dataset split."""

from __future__ import annotations

import argparse
from pathlib import Path

from tritonrec.cli.common import add_data_source, prepare_from_args, print_json, print_metrics, rounded

__all__ = ["register", "run_evaluate"]


def register(p: argparse.ArgumentParser) -> None:
    """The arguments of ``tritonrec evaluate``."""
    from tritonrec.pipeline.evaluation import Split

    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", type=Path, help="checkpoint directory (eager PyTorch)")
    source.add_argument("--onnx", type=Path, help="ONNX file written by `tritonrec export onnx` (ONNX Runtime, CPU)")
    add_data_source(p)
    p.add_argument("--split", choices=[s.value for s in Split], default=Split.TEST.value, help="which rows to score")
    p.add_argument("--limit", type=int, default=0, help="score only the first N users (0 = all)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    """Score the artifact and print its metrics."""
    from tritonrec.pipeline.evaluation import Split, evaluate_artifact

    data = prepare_from_args(args)
    result = evaluate_artifact(
        data, checkpoint=args.checkpoint, onnx=args.onnx, split=Split(args.split), limit=args.limit
    )
    if args.json:
        print_json(rounded(result.metrics))
    else:
        label = "onnx" if result.runtime == "onnxruntime" else "model"
        print_metrics({f"{label} ({result.split.value})": result.metrics})
    return 0
