"""``tritonrec compress {prune,distill,share,quantize-embeddings}``: a checkpoint in, a smaller checkpoint out."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tritonrec.cli.common import Console, add_data_source, command_line, prepare_from_args, print_json
from tritonrec.errors import ConfigError

__all__ = ["register", "run_compress"]


def _finetune_arguments(p: argparse.ArgumentParser) -> None:
    from tritonrec.compress.options import FinetuneOptions

    d = FinetuneOptions()
    p.add_argument("--finetune-epochs", type=int, default=d.max_epochs, help="fine-tuning epochs (0 = none)")
    p.add_argument("--finetune-minutes", type=float, default=d.max_minutes, help="fine-tuning time budget")
    p.add_argument("--finetune-lr", type=float, default=d.lr, help="fine-tuning learning rate")
    p.add_argument(
        "--finetune-teacher-weight",
        type=float,
        default=d.teacher_weight,
        help="share of the parent-as-teacher term in the fine-tuning loss (0 = labels only)",
    )


def _common(p: argparse.ArgumentParser, parent_flag: str, parent_help: str, spec_help: str | None = None) -> None:
    if spec_help is None:
        p.add_argument(parent_flag, dest="parent", type=Path, required=True, help=parent_help)
    else:  # a team's model: its spec, trained by the spec's hook
        source = p.add_mutually_exclusive_group(required=True)
        source.add_argument(parent_flag, dest="parent", type=Path, help=parent_help)
        source.add_argument("--spec", type=Path, help=spec_help)
    add_data_source(p, required=spec_help is None)  # with a checkpoint: checked in run_compress
    p.add_argument("--out", type=Path, required=True, help="checkpoint directory to write")
    p.add_argument("--eval-users", type=int, default=0, help="score only the first N test users (0 = all)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.set_defaults(handler=run_compress)


def _student_kwargs(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--student-kwargs",
        default=None,
        metavar="JSON",
        help="with --spec: the factory's keyword arguments that change, as JSON (e.g. '{\"dim\": 8}')",
    )


def register(p: argparse.ArgumentParser) -> None:
    """The ``tritonrec compress`` subcommands."""
    from tritonrec.compress.options import CompressionMethod
    from tritonrec.model.config import EmbeddingStorage, Preset, TableSharing

    sub = p.add_subparsers(dest="method", required=True, metavar="METHOD")
    parent_help = "the checkpoint to compress"
    prune = sub.add_parser(
        CompressionMethod.PRUNE.value, help="structured pruning of the cross network, MLP and attention + fine-tuning"
    )
    _common(
        prune,
        "--checkpoint",
        parent_help,
        "a model spec with a training hook: the given share of its Linear weights zeroed by global magnitude, "
        "fine-tuned by the hook (--out gets its spec)",
    )
    prune.add_argument(
        "--ratio", type=float, required=True, help="share of channels removed per layer (with --spec: of weights)"
    )
    prune.add_argument("--calibration-rows", type=int, default=2048, help="training rows that rank the channels")
    _finetune_arguments(prune)

    student_choices = [p.value for p in Preset]
    distill = sub.add_parser(CompressionMethod.DISTILL.value, help="train a smaller student on labels + teacher scores")
    _common(
        distill,
        "--teacher",
        "the teacher checkpoint (a trained base or large)",
        "a model spec with a training hook: the teacher; the student is its factory with --student-kwargs, trained "
        "by the hook toward the teacher's probabilities",
    )
    _student_kwargs(distill)
    student = distill.add_mutually_exclusive_group()
    student.add_argument("--student", choices=student_choices, default=Preset.SMALL.value, help="student preset")
    student.add_argument(
        "--student-config", type=Path, help="JSON file with a custom student ModelConfig (named by its stem)"
    )
    distill.add_argument("--temperature", type=float, default=2.0, help="softening temperature T (default 2)")
    distill.add_argument("--weight", type=float, default=0.5, help="share of the teacher term in [0, 1] (default 0.5)")
    distill.add_argument("--epochs", type=int, default=30, help="training epochs at most")
    distill.add_argument("--max-minutes", type=float, default=14.0, help="training time budget (default 14)")

    share = sub.add_parser(CompressionMethod.SHARE.value, help="shared item-id rows (hashing, QR) + fine-tuning")
    _common(
        share,
        "--checkpoint",
        parent_help,
        "a model spec with a training hook: its factory with --student-kwargs that share rows (smaller hashed "
        "tables, say), retrained by the hook on the labels",
    )
    _student_kwargs(share)
    kinds = [k.value for k in TableSharing if k is not TableSharing.NONE]
    share.add_argument("--kind", choices=kinds, help="hash: hashing trick; qr: quotient-remainder (a checkpoint)")
    share.add_argument("--ratio", type=float, help="logical item rows per stored row (> 1; a checkpoint)")
    _finetune_arguments(share)

    quantize = sub.add_parser(
        CompressionMethod.QUANTIZE_EMBEDDINGS.value, help="row-wise INT8/INT4 embedding tables, dequantized in graph"
    )
    _common(quantize, "--checkpoint", parent_help)
    bits = [s.value for s in EmbeddingStorage if s is not EmbeddingStorage.FP32]
    quantize.add_argument("--storage", choices=bits, required=True, help="int8 or int4 codes")
    quantize.add_argument("--block", type=int, default=0, help="values per scale/bias block (0 = one per row)")
    quantize.add_argument(
        "--keep-catalogue-int64", action="store_true", help="leave the catalogue id tables int64 (default: narrowest)"
    )


def _options(args: argparse.Namespace) -> Any:
    from tritonrec.compress.options import (
        CompressionMethod,
        DistillOptions,
        FinetuneOptions,
        PruneOptions,
        QuantizeOptions,
        ShareOptions,
    )

    method = CompressionMethod(args.method)
    if method is CompressionMethod.QUANTIZE_EMBEDDINGS:
        return QuantizeOptions(storage=args.storage, block=args.block, compact_catalogue=not args.keep_catalogue_int64)
    if method is CompressionMethod.DISTILL:
        budget = {"temperature": args.temperature, "weight": args.weight, "max_epochs": args.epochs}
        budget["max_minutes"] = args.max_minutes
        return DistillOptions.for_student(args.student_config or args.student, **budget)
    finetune = FinetuneOptions(
        max_epochs=args.finetune_epochs,
        max_minutes=args.finetune_minutes,
        lr=args.finetune_lr,
        teacher_weight=args.finetune_teacher_weight,
    )
    if method is CompressionMethod.PRUNE:
        return PruneOptions(ratio=args.ratio, calibration_rows=args.calibration_rows, finetune=finetune)
    if args.kind is None or args.ratio is None:
        raise ConfigError("share --checkpoint needs --kind and --ratio")
    return ShareOptions(kind=args.kind, ratio=args.ratio, finetune=finetune)


def run_compress(args: argparse.Namespace) -> int:
    """Compress the checkpoint (or the spec's model), write the new one and print its figures."""
    from tritonrec.compress.run import compress_checkpoint

    if getattr(args, "spec", None) is not None:
        return _compress_spec(args)
    if args.dataset is None:
        raise ConfigError(f"{args.method} needs --dataset, the data the checkpoint was trained on (e.g. beauty)")
    options = _options(args)
    result = compress_checkpoint(
        args.parent,
        prepare_from_args(args),
        options,
        args.out,
        eval_users=args.eval_users,
        seed=args.seed,
        threads=args.threads,
        progress=not (args.quiet or args.json),
    )
    summary = result.summary()
    if args.json:
        print_json(summary)
        return 0
    print(
        f"{summary['method']}: {summary['parent']} -> {summary['out']}\n"
        f"  params {summary['parent_params']:,} -> {summary['params']:,}, "
        f"checkpoint bytes {summary['parent_bytes']:,} -> {summary['bytes']:,} "
        f"({summary['parent_bytes'] / summary['bytes']:.2f}x smaller)\n"
        f"  ndcg@10 {summary['parent_ndcg@10']:.4f} -> {summary['ndcg@10']:.4f} ({summary['ndcg@10_delta']:+.4f}), "
        f"auc {summary['parent_auc']:.4f} -> {summary['auc']:.4f} ({summary['auc_delta']:+.4f})"
    )
    return 0


def _compress_spec(args: argparse.Namespace) -> int:
    """``compress {prune,distill,share} --spec``: the spec's training hook trains; print the record."""
    import json

    from tritonrec.compress.spec_compress import SpecCompressConfig, SpecMethod, run_spec_compress
    from tritonrec.spec import load_spec

    try:
        kwargs = json.loads(args.student_kwargs) if getattr(args, "student_kwargs", None) else {}
    except json.JSONDecodeError as e:
        raise ConfigError(f"--student-kwargs is not JSON: {e}") from None
    if not isinstance(kwargs, dict):
        raise ConfigError(f"--student-kwargs wants a JSON object of keyword arguments, got {args.student_kwargs}")
    config = SpecCompressConfig(
        method=SpecMethod(args.method),
        out_dir=args.out,
        ratio=args.ratio if args.method == SpecMethod.PRUNE.value else 0.5,
        student_kwargs=kwargs,
        seed=args.seed,
    )
    quiet = args.quiet or args.json
    progress = (lambda _m: None) if quiet else Console().show
    result = run_spec_compress(load_spec(args.spec), config, command=command_line(), progress=progress)
    if args.json:
        print_json(result.report.record)
    else:
        print(result.report.markdown)
    return 0
