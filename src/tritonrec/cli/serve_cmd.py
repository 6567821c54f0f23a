"""``tritonrec repo build`` and ``tritonrec serve``."""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
from pathlib import Path
from types import FrameType

from tritonrec.data.feature_spec import FeatureSpec
from tritonrec.errors import ConfigError
from tritonrec.repository import Variant, build_repository, resolve_variants

__all__ = ["run_repo_build", "run_serve"]


def _variants(args: argparse.Namespace) -> list[Variant]:
    chosen = resolve_variants([n.strip() for n in args.variants.split(",") if n.strip()])
    out = []
    for variant in chosen:
        batching = variant.batching
        if args.max_batch_size is not None:
            sizes = tuple(b for b in batching.preferred_batch_sizes if b <= args.max_batch_size)
            batching = dataclasses.replace(batching, max_batch_size=args.max_batch_size, preferred_batch_sizes=sizes)
        if args.max_queue_delay_us is not None:
            batching = dataclasses.replace(batching, max_queue_delay_us=args.max_queue_delay_us)
        variant = dataclasses.replace(variant, batching=batching)
        if args.instances is not None:
            variant = dataclasses.replace(variant, instances=args.instances)
        if args.cpu_threads is not None and variant.name == "ranker_cpu":
            variant = dataclasses.replace(variant, cpu_threads=args.cpu_threads)
        if args.ort_tensorrt and variant.name == "ranker_onnx":
            variant = dataclasses.replace(variant, trt_accelerator=True)
        out.append(variant)
    return out


def _export_dir_and_spec(args: argparse.Namespace) -> tuple[FeatureSpec, Path | None]:
    from tritonrec.export.checkpoint_export import export_checkpoint, read_export_spec

    if args.export is not None:
        return read_export_spec(args.export / "model.onnx"), args.export
    if args.dataset is None:
        raise ConfigError("--checkpoint needs --dataset (real rows of its dataset check the export's parity)")
    from tritonrec.cli.train_cmd import check_fits, prepare_from_args
    from tritonrec.train.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(args.checkpoint)
    if args.configs_only:
        return checkpoint.spec, None
    data = prepare_from_args(args)
    check_fits(checkpoint.spec, data, args.checkpoint)
    export_dir = args.checkpoint / "onnx"
    print(f"exporting {args.checkpoint} -> {export_dir}", flush=True)
    export_checkpoint(checkpoint, data.test, export_dir)
    return checkpoint.spec, export_dir


def run_repo_build(args: argparse.Namespace) -> int:
    """Write the model repository for the chosen variants."""
    variants = _variants(args)
    spec, export_dir = _export_dir_and_spec(args)
    written = build_repository(args.out, spec, variants, export_dir=None if args.configs_only else export_dir)
    for name, files in written.items():
        print(f"{name}: " + ", ".join(str(p.relative_to(args.out)) for p in files))
    gpu_only = [v.name for v in variants if v.gpu]
    if gpu_only:
        print(f"GPU variants ({', '.join(gpu_only)}) load only in the NGC tritonserver image on a GPU node")
    return 0


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_serve(args: argparse.Namespace) -> int:
    """Serve a repository on the bundled tritonserver until Ctrl-C or SIGTERM."""
    from tritonrec.server import LocalTriton

    models = [n.strip() for n in args.models.split(",") if n.strip()] if args.models else None
    server = LocalTriton(
        args.repo,
        grpc_port=args.grpc_port,
        http_port=args.http_port,
        metrics_port=args.metrics_port,
        log_file=args.log_file,
        models=models,
    )
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        server.start()
        print(
            f"serving {args.repo} ({', '.join(models) if models else 'every model'}): grpc {server.grpc_url}, "
            f"http {server.http_url}, metrics {server.metrics_url}; Ctrl-C stops",
            flush=True,
        )
        code = server.wait()
        print(f"tritonserver exited on its own with code {code}", file=sys.stderr)
        print(server.log_tail(20), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stopping tritonserver ...", flush=True)
        stopped = server.stop()
        print(f"stopped (exit code {stopped})", flush=True)
        return 0
    finally:
        server.stop()
