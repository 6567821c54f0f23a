"""``tritonrec repo build``: write config.pbtxt files (+ artifacts) for the serving variants."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from tritonrec.cli.common import Console, add_data_source, names, prepare_from_args
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
        help="select.json of `tritonrec select`: ranker_cpu (with --spec: <name>_cpu) serving the chosen candidate's "
        "graph",
    )
    build.add_argument(
        "--spec",
        type=Path,
        default=None,
        help="a model spec (TOML): your own model, with --export its `export onnx --spec` folder; --variants then "
        "names cpu, onnx, trt_fp16 (models <spec name>_<variant>; default cpu)",
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
        "model_int8.xml with --cpu-precision int8 when OpenVINO won `tritonrec quantize` (with --spec: chosen by "
        "the file quantize published)",
    )
    build.set_defaults(handler=run_repo_build)


def run_repo_build(args: argparse.Namespace) -> int:
    """Write the model repository for the chosen variants; print what was written."""
    if args.spec is not None:
        return _build_spec(args)
    from tritonrec.repo_build import RepoSource, build_repo
    from tritonrec.repository import VariantOverrides

    overrides = VariantOverrides(
        max_batch_size=args.max_batch_size,
        max_queue_delay_us=args.max_queue_delay_us,
        instances=args.instances,
        cpu_threads=args.cpu_threads,
        ort_tensorrt=args.ort_tensorrt,
        cpu_precision=args.cpu_precision,
        cpu_runtime=args.cpu_runtime,
    )
    source = RepoSource(export_dir=args.export, checkpoint=args.checkpoint, selection=args.from_selection)
    exporting = args.checkpoint is not None and not args.configs_only
    data = prepare_from_args(args) if exporting and args.dataset is not None else None
    result = build_repo(
        args.out,
        names(args.variants),
        source,
        overrides=overrides,
        tuned=args.tuned,
        configs_only=args.configs_only,
        data=data,
        progress=Console().show,
    )
    for name, files in result.written.items():
        print(f"{name}: " + ", ".join(str(p.relative_to(args.out)) for p in files))
    if result.gpu_only:
        print(f"GPU variants ({', '.join(result.gpu_only)}) load only on a GPU node (ranker_gpu: any tritonserver "
              "with the Python backend and torch; the others: the NGC image)")  # fmt: skip
    return 0


def _int8_runtime(args: argparse.Namespace) -> str:
    """OpenVINO when ``quantize --spec`` published its IR (``model_int8.xml``) as the INT8 file, else ONNX Runtime."""
    published = args.export / "model_int8.xml"
    if args.cpu_precision == "int8" and published.is_file() and not published.with_suffix(".onnx").is_file():
        return "openvino"
    return "onnxruntime"


def _build_spec(args: argparse.Namespace) -> int:
    from tritonrec.pipeline.spec_steps import spec_repository_step
    from tritonrec.repository import DEFAULT_VARIANTS, Batching
    from tritonrec.repository.spec_variants import SpecVariant, SpecVariantKind, default_batching
    from tritonrec.spec import load_spec

    if args.export is None and args.from_selection is None:
        raise ConfigError(
            "--spec builds from the folder `tritonrec export onnx --spec` wrote (--export), or from the pick of "
            "`tritonrec select --spec` (--from-selection)"
        )
    if args.ort_tensorrt or args.configs_only:
        raise ConfigError("with --spec: --ort-tensorrt and --configs-only are not supported yet")
    chosen = ["cpu"] if args.variants == ",".join(DEFAULT_VARIANTS) else names(args.variants)
    try:
        kinds = [SpecVariantKind(k) for k in chosen]
    except ValueError:
        raise ConfigError(f"with --spec, --variants names {[k.value for k in SpecVariantKind]}, got {chosen}") from None
    spec = load_spec(args.spec)
    default = default_batching(spec)
    batching = Batching(
        max_batch_size=args.max_batch_size or default.max_batch_size,
        preferred_batch_sizes=(),
        max_queue_delay_us=default.max_queue_delay_us if args.max_queue_delay_us is None else args.max_queue_delay_us,
    )
    if args.from_selection is not None:
        from tritonrec.select.spec_run import selected_spec_variant

        if kinds != [SpecVariantKind.CPU] or args.cpu_precision or args.cpu_runtime:
            raise ConfigError("--from-selection builds the pick's <name>_cpu: its precision and runtime are the pick's")
        picked, export_dir = selected_spec_variant(args.from_selection, spec)
        variants = [picked]
    else:
        export_dir = args.export
        variants = [
            SpecVariant(
                kind=kind,
                precision=(args.cpu_precision or "fp32") if kind is SpecVariantKind.CPU else "fp32",
                runtime=args.cpu_runtime or _int8_runtime(args),
            )
            for kind in kinds
        ]
    variants = [
        dataclasses.replace(v, instances=args.instances or 0, cpu_threads=args.cpu_threads or 0, batching=batching)
        for v in variants
    ]
    if args.tuned is not None:  # the CPU variant's batcher, instances and threads as `bench tune --spec` chose
        from tritonrec.bench.tuning.tune import spec_tuned_variant

        tuned = spec_tuned_variant(args.tuned, spec)
        variants = [
            dataclasses.replace(v, instances=tuned.instances, cpu_threads=tuned.cpu_threads, batching=tuned.batching)
            if v.kind is SpecVariantKind.CPU
            else v
            for v in variants
        ]
    written = spec_repository_step(spec, export_dir, args.out, variants)
    for name, files in written.items():
        print(f"{name}: " + ", ".join(str(p.relative_to(args.out)) for p in files))
    if any(k.gpu for k in kinds):
        print("GPU variants load only on a GPU node with the NGC image (trt_fp16: its engine is built there)")
    return 0
