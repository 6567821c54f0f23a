"""``tritonrec export onnx`` / ``export torch``: checkpoint -> ONNX (FP32 + FP16) or a torch.export program."""

from __future__ import annotations

import argparse
from pathlib import Path

from tritonrec.cli.common import add_data_source, prepare_from_args, print_json

__all__ = ["register", "run_export_onnx", "run_export_torch"]


def register(p: argparse.ArgumentParser) -> None:
    """The ``tritonrec export`` subcommands."""
    sub = p.add_subparsers(dest="export_command", required=True)
    onnx = sub.add_parser("onnx", help="FP32 (+ FP16) ONNX with dynamic batch, parity-checked")
    onnx.add_argument("--checkpoint", type=Path, required=True, help="checkpoint directory")
    add_data_source(onnx)
    onnx.add_argument("--out", type=Path, required=True, help="output folder (model.onnx, export.json, ...)")
    onnx.add_argument("--no-fp16", action="store_true", help="skip the FP16 variant")
    onnx.add_argument(
        "--gpu-graph",
        action="store_true",
        help="also model_offsets.onnx, the flat graph of Triton's ragged batching on GPU nodes (ranker_onnx, TensorRT)",
    )
    onnx.add_argument(
        "--external-data", action="store_true", help="always store weights in model.onnx.data (default: past 2 GB)"
    )
    onnx.add_argument("--json", action="store_true", help="print the export report as JSON")
    onnx.set_defaults(handler=run_export_onnx)
    program = sub.add_parser("torch", help="a torch.export program (model.pt2) for ranker_gpu, parity-checked")
    program.add_argument("--checkpoint", type=Path, required=True, help="checkpoint directory")
    add_data_source(program)
    program.add_argument("--out", type=Path, required=True, help="output folder (model.pt2, program.json)")
    program.set_defaults(handler=run_export_torch)


def run_export_onnx(args: argparse.Namespace) -> int:
    """Export a checkpoint and print its parity records."""
    from tritonrec.pipeline.steps import export_step

    result = export_step(
        args.checkpoint,
        prepare_from_args(args),
        args.out,
        fp16=not args.no_fp16,
        gpu_graph=args.gpu_graph,
        external_data=True if args.external_data else None,
    )
    if args.json:
        print_json(result.to_dict())
        return 0
    for artifact in result.artifacts:
        print(f"{artifact.precision} {artifact.layout}: {', '.join(str(f) for f in artifact.files())}")
    for record in result.parity:
        print(
            f"{record.candidate} vs {record.reference}: max abs {record.max_abs:.2e}, max rel {record.max_rel:.2e} "
            f"over {record.n_scores:,} scores -> {'ok' if record.passed else 'FAILED'}"
        )
    return 0


def run_export_torch(args: argparse.Namespace) -> int:
    """Export a checkpoint as a torch.export program and print its parity record."""
    from tritonrec.pipeline.steps import program_step

    result = program_step(args.checkpoint, prepare_from_args(args), args.out)
    record = result.parity
    print(f"torch.export program (torch {result.torch_version}): {result.path}")
    print(
        f"{record.candidate} vs {record.reference}: max abs {record.max_abs:.2e} over {record.n_scores:,} scores "
        f"-> {'ok' if record.passed else 'FAILED'}"
    )
    return 0
