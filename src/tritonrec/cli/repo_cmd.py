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
    source.add_argument(
        "--from-selection",
        type=Path,
        help="select.json of `tritonrec select`: ranker_cpu serving the chosen candidate's graph",
    )
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
        "--tuned",
        type=Path,
        default=None,
        help="tune.json of `tritonrec bench tune`: its chosen configuration for the Python variants (flags win; "
        "--cpu-precision fp16/int8 replaces its layout with the padded one)",
    )
    build.add_argument(
        "--cpu-precision",
        choices=["fp32", "fp16", "int8"],
        default=None,
        help="ranker_cpu's precision (default fp32: the ragged graph model_ragged.onnx); fp16 "
        "(model_fp16.onnx) and int8 (model_int8.* from `tritonrec quantize`) exist only as padded graphs, so they "
        "serve ranker_cpu in the padded layout",
    )
    build.add_argument(
        "--cpu-runtime",
        choices=["onnxruntime", "openvino"],
        default=None,
        help="ranker_cpu's runtime (default onnxruntime); openvino runs the same graph in either layout, and "
        "model_int8.xml with --cpu-precision int8 when OpenVINO won `tritonrec quantize`",
    )
    build.set_defaults(handler=run_repo_build)


def run_repo_build(args: argparse.Namespace) -> int:
    """Write the model repository for the chosen variants; print what was written."""
    import dataclasses

    from tritonrec.repository import VariantKind, VariantName, VariantOverrides, build_repository, resolve_variants

    if args.from_selection is not None and (args.cpu_precision or args.cpu_runtime):
        raise ConfigError(
            "--from-selection serves the selected candidate's graph in its own precision and runtime: drop "
            "--cpu-precision/--cpu-runtime, or build from --export"
        )
    overrides = VariantOverrides(
        max_batch_size=args.max_batch_size,
        max_queue_delay_us=args.max_queue_delay_us,
        instances=args.instances,
        cpu_threads=args.cpu_threads,
        ort_tensorrt=args.ort_tensorrt,
        cpu_precision=args.cpu_precision,
        cpu_runtime=args.cpu_runtime,
    )
    variants = resolve_variants(names(args.variants))
    tuned = None
    if args.tuned is not None:
        from tritonrec.bench.tune import overrides_from_report

        tuned = overrides_from_report(args.tuned)
        variants = [tuned.apply(v) if v.kind is VariantKind.PYTHON_ORT else v for v in variants]
    variants = [overrides.apply(v) for v in variants]
    why = f"its {args.cpu_precision} graph is a padded graph"
    if args.from_selection is not None:
        from tritonrec.export.manifest import read_export_spec
        from tritonrec.select.served import selected_variant

        chosen, export_dir = selected_variant(args.from_selection)
        if tuned is not None:  # the pick's graph fixes the layout; the rest of the tuned configuration applies
            chosen = dataclasses.replace(tuned, layout=None).apply(chosen)
        variants = [overrides.apply(chosen)]
        why = "the selected graph was exported in that layout"
        spec = read_export_spec(export_dir / "model.onnx")
        print(
            f"ranker_cpu serves {export_dir / chosen.artifact} ({chosen.precision}), the pick of {args.from_selection}"
        )
    elif args.export is not None:
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

        export_dir = args.checkpoint / "onnx"
        print(f"exporting {args.checkpoint} -> {export_dir}", flush=True)
        data = prepare_from_args(args)
        gpu_graph = any(v.layout == "offsets" for v in variants)
        spec = export_step(args.checkpoint, data, export_dir, gpu_graph=gpu_graph).spec
        if any(v.kind is VariantKind.PYTHON_TORCH for v in variants):
            program_step(args.checkpoint, data, export_dir)  # model.pt2 + program.json beside the ONNX files
    cpu = next((v for v in variants if v.name == VariantName.CPU), None)
    if tuned is not None and tuned.layout is not None and cpu is not None and cpu.layout != tuned.layout:
        print(f"ranker_cpu serves {cpu.artifact} in the {cpu.layout} layout, not the {tuned.layout} layout of "
              f"{args.tuned}: {why}")  # fmt: skip
    written = build_repository(args.out, spec, variants, export_dir=None if args.configs_only else export_dir)
    for name, files in written.items():
        print(f"{name}: " + ", ".join(str(p.relative_to(args.out)) for p in files))
    gpu_only = [v.name for v in variants if v.gpu]
    if gpu_only:
        print(f"GPU variants ({', '.join(gpu_only)}) load only on a GPU node (ranker_gpu: any tritonserver with the "
              "Python backend and torch; the others: the NGC image)")  # fmt: skip
    return 0
