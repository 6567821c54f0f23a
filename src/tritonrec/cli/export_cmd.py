"""``tritonrec export onnx`` / ``torch`` / ``trt`` / ``spec``: ONNX, a torch.export program, an engine, a spec.

ONNX (FP32 + FP16), a torch.export program for ``ranker_gpu``, a TensorRT engine, and the bundled model written as a
model spec (``spec.toml`` + ``rows.parquet``) that every ``--spec`` command takes.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tritonrec.cli.common import add_data_source, prepare_from_args, print_json
from tritonrec.errors import ConfigError

if TYPE_CHECKING:
    from tritonrec.export.onnx_export import OnnxArtifact
    from tritonrec.export.parity import ParityRecord
    from tritonrec.export.tensorrt_build import TrtBuild

__all__ = ["register", "run_export_onnx", "run_export_spec", "run_export_torch", "run_export_trt"]


def register(p: argparse.ArgumentParser) -> None:
    """The ``tritonrec export`` subcommands."""
    sub = p.add_subparsers(dest="export_command", required=True)
    onnx = sub.add_parser("onnx", help="FP32 (+ FP16) ONNX with dynamic batch, parity-checked")
    source = onnx.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", type=Path, help="checkpoint directory of the bundled model (needs --dataset)")
    source.add_argument("--spec", type=Path, help="a model spec (TOML): your own model, its parity on your rows")
    add_data_source(onnx, required=False)
    onnx.add_argument("--out", type=Path, required=True, help="output folder (model.onnx, export.json, ...)")
    onnx.add_argument("--no-fp16", action="store_true", help="skip the FP16 variant")
    onnx.add_argument(
        "--gpu-graph",
        action="store_true",
        help="also model_offsets.onnx, the offsets graph of Triton's ragged batching on GPU nodes (ranker_onnx, "
        "TensorRT)",
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
    _register_trt(sub)
    spec = sub.add_parser(
        "spec", help="the bundled model as a model spec (spec.toml + rows.parquet): every --spec command takes it"
    )
    spec.add_argument("--checkpoint", type=Path, required=True, help="checkpoint directory of the bundled model")
    add_data_source(spec)
    spec.add_argument("--out", type=Path, required=True, help="output folder (spec.toml, rows.parquet)")
    spec.add_argument("--users", type=int, default=0, help="test users written, a seeded random sample (0 = all)")
    spec.add_argument(
        "--calibration-users", type=int, default=2000, help="validation users written as the calibration side"
    )
    spec.set_defaults(handler=run_export_spec)


def run_export_spec(args: argparse.Namespace) -> int:
    """Write the bundled checkpoint's spec and its dataset's rows; print where."""
    from tritonrec.pipeline.bundled_spec import write_bundled_spec

    written = write_bundled_spec(
        args.checkpoint,
        prepare_from_args(args),
        args.out,
        users=args.users,
        calibration_users=args.calibration_users,
        seed=args.seed,
    )
    print(f"spec: {written.path}")
    print(f"rows: {written.rows} ({written.evaluate_users:,} test users evaluate, {written.calibrate_users:,} "
          "validation users calibrate)")  # fmt: skip
    return 0


def run_export_onnx(args: argparse.Namespace) -> int:
    """Export a checkpoint, or a spec's model, and print its parity records."""
    if args.spec is not None:
        return _export_spec(args)
    if args.dataset is None:
        raise ConfigError("--checkpoint needs --dataset (real rows of its dataset check the export's parity)")
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
    _print_export(result.artifacts, result.parity, "")
    return 0


def _print_export(artifacts: Sequence[OnnxArtifact], parity: Sequence[ParityRecord], rows: str) -> None:
    """One line per artifact and per parity record (``rows``: where the scores came from, if said)."""
    for artifact in artifacts:
        print(f"{artifact.precision} {artifact.layout}: {', '.join(str(f) for f in artifact.files())}")
    for record in parity:
        print(
            f"{record.candidate} vs {record.reference}: max abs {record.max_abs:.2e}, max rel {record.max_rel:.2e} "
            f"over {record.n_scores:,} scores{rows} -> {'ok' if record.passed else 'FAILED'}"
        )


def _export_spec(args: argparse.Namespace) -> int:
    from tritonrec.pipeline.spec_steps import spec_export_step
    from tritonrec.spec import load_spec

    if args.gpu_graph:
        raise ConfigError("--gpu-graph is the bundled model's offsets graph; a spec's graph batches along rows")
    result = spec_export_step(
        load_spec(args.spec), args.out, fp16=not args.no_fp16, external_data=True if args.external_data else None
    )
    if args.json:
        print_json({"out": str(result.out_dir), "parity_rows": result.parity_rows,
                    "artifacts": [str(a.path) for a in result.artifacts],
                    "parity": [r.to_dict() for r in result.parity]})  # fmt: skip
        return 0
    _print_export(result.artifacts, result.parity, f" of {result.parity_rows:,} evaluation rows")
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


def _register_trt(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from tritonrec.export.tensorrt_plan import OPT_BATCH, OPT_CANDIDATES, TrtPrecision

    trt = sub.add_parser("trt", help="a TensorRT engine (plan + metadata) on this GPU; --print-trtexec needs no GPU")
    trt.add_argument(
        "--onnx",
        type=Path,
        required=True,
        help="model_offsets.onnx (fp16, from `export onnx --gpu-graph`) or model_qdq.onnx (int8, best, from "
        "`tritonrec quantize`); with --spec: the model.onnx of `export onnx --spec`",
    )
    trt.add_argument(
        "--spec",
        type=Path,
        default=None,
        help="a model spec: build its <name>_trt_fp16 engine (model.plan) with the profile its config states",
    )
    trt.add_argument("--precision", choices=[p.value for p in TrtPrecision], required=True)
    trt.add_argument("--out", type=Path, default=None, help="folder of the plan (default: the ONNX file's folder)")
    trt.add_argument("--min-batch", type=int, default=1, help="smallest batch of the profile (1)")
    trt.add_argument("--opt-batch", type=int, default=OPT_BATCH, help=f"batch TensorRT tunes for ({OPT_BATCH})")
    trt.add_argument("--max-batch", type=int, default=None, help="largest batch (default: the variant's config)")
    trt.add_argument("--min-candidates", type=int, default=1, help="fewest candidates (1)")
    trt.add_argument("--opt-candidates", type=int, default=OPT_CANDIDATES, help=f"tuned for ({OPT_CANDIDATES})")
    trt.add_argument("--max-candidates", type=int, default=None, help="most candidates (default: the config's)")
    trt.add_argument(
        "--quantize-report",
        type=Path,
        default=None,
        help="quantize.json of `tritonrec quantize`: its float groups are pinned (default: beside --onnx, if any)",
    )
    trt.add_argument("--timing-cache", type=Path, default=None, help="timing cache file to read and update")
    trt.add_argument("--weakly-typed", action="store_true", help="int8: --int8 --fp16 with pinned layers instead")
    trt.add_argument("--print-trtexec", action="store_true", help="print the equivalent trtexec line and stop")
    trt.set_defaults(handler=run_export_trt)


def run_export_trt(args: argparse.Namespace) -> int:
    """Build a TensorRT engine (or print the trtexec line that builds it)."""
    from tritonrec.export.tensorrt_plan import TrtPrecision
    from tritonrec.repository.trt_builds import ProfileLimits, variant_build

    if args.spec is not None:
        return _spec_trt(args)
    limits = ProfileLimits(
        min_batch=args.min_batch,
        opt_batch=args.opt_batch,
        max_batch=args.max_batch,
        min_candidates=args.min_candidates,
        opt_candidates=args.opt_candidates,
        max_candidates=args.max_candidates,
    )
    build = variant_build(
        args.onnx,
        TrtPrecision(args.precision),
        limits=limits,
        out_dir=args.out,
        quantize_report=args.quantize_report,
        timing_cache=args.timing_cache,
        weakly_typed=args.weakly_typed,
    )
    return _build_or_print(build, args.print_trtexec)


def _spec_trt(args: argparse.Namespace) -> int:
    from tritonrec.pipeline.spec_steps import spec_trt_build
    from tritonrec.spec import load_spec

    if args.precision != "fp16":
        raise ConfigError("with --spec: --precision fp16 (a spec's INT8 is served by the cpu variant so far)")
    build = spec_trt_build(
        load_spec(args.spec),
        args.onnx,
        out_dir=args.out,
        max_batch=args.max_batch,
        max_candidates=args.max_candidates,
        timing_cache=args.timing_cache,
    )
    return _build_or_print(build, args.print_trtexec)


def _build_or_print(build: TrtBuild, print_trtexec: bool) -> int:
    """Print the trtexec line of ``build``, or run it with the TensorRT Python API and say what was written."""
    if print_trtexec:
        from tritonrec.export.tensorrt_plan import trtexec_command

        line = trtexec_command(
            build.onnx,
            build.plan,
            build.precision,
            build.profile,
            strongly_typed=build.strongly_typed,
            layers=build.layers,
            timing_cache=build.timing_cache,
        )
        print(" ".join(line))
        return 0
    from tritonrec.export.tensorrt_build import build_engine

    metadata = build_engine(build)
    print(f"{build.plan} ({metadata.precision.value}, {metadata.gpu}, TensorRT {metadata.tensorrt_version})")
    return 0
