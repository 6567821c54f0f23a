"""``tritonrec repo build``: write config.pbtxt files (+ artifacts) for the serving variants."""

from __future__ import annotations

import argparse
from pathlib import Path

from tritonrec.cli.common import add_data_source, names, prepare_from_args
from tritonrec.errors import ConfigError

__all__ = ["register", "run_repo_build"]


def register(p: argparse.ArgumentParser) -> None:
    """The ``tritonrec repo`` subcommands."""
    from tritonrec.repository import DEFAULT_VARIANTS, VariantName

    sub = p.add_subparsers(dest="repo_command", required=True)
    build = sub.add_parser(
        "build", help="write config.pbtxt files (+ artifacts) for the serving variants (see model_repository/README.md)"
    )
    source = build.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--export", type=Path, help="folder written by `tritonrec export onnx` (+ `export torch` for ranker_gpu)"
    )
    source.add_argument("--checkpoint", type=Path, help="checkpoint to export first (needs --dataset)")
    add_data_source(build, required=False)
    build.add_argument("--out", type=Path, required=True, help="repository folder to write")
    build.add_argument(
        "--variants",
        default=",".join(DEFAULT_VARIANTS),
        help=f"comma-separated, of: {', '.join(v.value for v in VariantName)} (default {','.join(DEFAULT_VARIANTS)})",
    )
    build.add_argument("--configs-only", action="store_true", help="write config.pbtxt files only, no artifacts")
    build.add_argument("--max-batch-size", type=int, default=None, help="users per execution (default 64)")
    build.add_argument("--max-queue-delay-us", type=int, default=None, help="dynamic batcher delay (default 2000)")
    build.add_argument(
        "--cpu-threads", type=int, default=None, help="ranker_cpu ORT threads per instance (0 = cores / instances)"
    )
    build.add_argument("--instances", type=int, default=None, help="model instances per device (ranker_cpu: 2)")
    build.add_argument(
        "--ort-tensorrt", action="store_true", help="ranker_onnx: enable the TensorRT execution accelerator (FP16)"
    )
    build.add_argument(
        "--cpu-precision",
        choices=["fp32", "fp16", "int8"],
        default=None,
        help="ranker_cpu's file: model.onnx, model_fp16.onnx, or model_int8.* from `tritonrec quantize` (default fp32)",
    )
    build.add_argument(
        "--cpu-runtime",
        choices=["onnxruntime", "openvino"],
        default=None,
        help="ranker_cpu's runtime (default onnxruntime; openvino serves model_int8.xml when OpenVINO won)",
    )
    build.set_defaults(handler=run_repo_build)


def run_repo_build(args: argparse.Namespace) -> int:
    """Write the model repository for the chosen variants; print what was written."""
    from tritonrec.repository import VariantOverrides, build_repository, resolve_variants

    overrides = VariantOverrides(
        max_batch_size=args.max_batch_size,
        max_queue_delay_us=args.max_queue_delay_us,
        instances=args.instances,
        cpu_threads=args.cpu_threads,
        ort_tensorrt=args.ort_tensorrt,
        cpu_precision=args.cpu_precision,
        cpu_runtime=args.cpu_runtime,
    )
    variants = [overrides.apply(v) for v in resolve_variants(names(args.variants))]
    if args.export is not None:
        from tritonrec.export.manifest import read_export_spec

        artifact = "model.onnx" if (args.export / "model.onnx").is_file() else "model.pt2"
        spec, export_dir = read_export_spec(args.export / artifact), args.export
    elif args.configs_only:
        from tritonrec.train.checkpoint import load_checkpoint

        spec, export_dir = load_checkpoint(args.checkpoint).spec, None
    else:
        if args.dataset is None:
            raise ConfigError("--checkpoint needs --dataset (real rows of its dataset check the export's parity)")
        from tritonrec.pipeline.steps import export_step, program_step
        from tritonrec.repository import VariantKind

        export_dir = args.checkpoint / "onnx"
        print(f"exporting {args.checkpoint} -> {export_dir}", flush=True)
        data = prepare_from_args(args)
        spec = export_step(args.checkpoint, data, export_dir).spec
        if any(v.kind is VariantKind.PYTHON_TORCH for v in variants):
            program_step(args.checkpoint, data, export_dir)  # model.pt2 + program.json beside the ONNX files
    written = build_repository(args.out, spec, variants, export_dir=None if args.configs_only else export_dir)
    for name, files in written.items():
        print(f"{name}: " + ", ".join(str(p.relative_to(args.out)) for p in files))
    gpu_only = [v.name for v in variants if v.gpu]
    if gpu_only:
        print(f"GPU variants ({', '.join(gpu_only)}) load only on a GPU node (ranker_gpu: any tritonserver with the "
              "Python backend and torch; the others: the NGC image)")  # fmt: skip
    return 0
