"""``tritonrec export onnx``: checkpoint -> ONNX FP32 (+ FP16) with parity records."""

from __future__ import annotations

import argparse
import json

from tritonrec.cli.train_cmd import check_fits, prepare_from_args
from tritonrec.export.checkpoint_export import export_checkpoint
from tritonrec.train.checkpoint import load_checkpoint

__all__ = ["run_export_onnx"]


def run_export_onnx(args: argparse.Namespace) -> int:
    """Export a checkpoint and print its parity records."""
    checkpoint = load_checkpoint(args.checkpoint)
    data = prepare_from_args(args)
    check_fits(checkpoint.spec, data, args.checkpoint)
    report = export_checkpoint(
        checkpoint, data.test, args.out, fp16=not args.no_fp16, external_data=True if args.external_data else None
    )
    if args.json:
        print(json.dumps(report, sort_keys=True))
        return 0
    for artifact in report["artifacts"]:
        print(f"{artifact['precision']}: {', '.join(str(args.out / f) for f in artifact['files'])}")
    for record in report["parity"]:
        print(
            f"{record['candidate']} vs {record['reference']}: max abs {record['max_abs']:.2e}, "
            f"max rel {record['max_rel']:.2e} over {record['n_scores']:,} scores -> "
            f"{'ok' if record['passed'] else 'FAILED'}"
        )
    return 0
