"""``tritonrec bench quality / compression``: the model studies (they train: torch)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from tritonrec.cli.bench.options import (
    add_point,
    finish,
    point_settings,
)
from tritonrec.cli.common import (
    Console,
    command_line,
    names,
    numbers,
)
from tritonrec.errors import ConfigError

if TYPE_CHECKING:
    from tritonrec.cli.bench.options import Subparsers

__all__ = ["register"]


def register(sub: Subparsers) -> None:
    """Add this group's subcommands to ``tritonrec bench``."""
    _quality(sub)
    _compression(sub)


def _quality(sub: Subparsers) -> None:
    from tritonrec.data.registry import DatasetName
    from tritonrec.model.config import Preset

    p = sub.add_parser("quality", help="train presets on datasets and write the quality report")
    p.add_argument("--datasets", default=",".join(d.value for d in DatasetName), help="comma-separated datasets")
    p.add_argument("--presets", default="small,base", help=f"comma-separated, of: {', '.join(Preset)}")
    p.add_argument("--max-minutes", type=float, default=14.0, help="training budget per run")
    p.add_argument("--out", type=Path, required=True, help="results folder (quality.json, quality.md)")
    p.add_argument("--checkpoints", type=Path, default=Path("artifacts/quality"), help="checkpoint folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--valid-user-fraction", type=float, default=1.0, help="see `tritonrec train --help`")
    p.set_defaults(handler=run_quality)


def run_quality(args: argparse.Namespace) -> int:
    """Train the requested presets on the requested datasets; print quality.md."""
    from tritonrec.bench.models.quality import run_quality_report
    from tritonrec.data.registry import DatasetName
    from tritonrec.model.config import Preset

    try:
        presets = [Preset(name) for name in names(args.presets)]
        datasets = [DatasetName(name).value for name in names(args.datasets)]
    except ValueError as e:
        raise ConfigError(f"{e}; presets: {list(Preset)}, datasets: {list(DatasetName)}") from None
    if not datasets or not presets:
        raise ConfigError("--datasets and --presets must name at least one each")
    report = run_quality_report(
        datasets,
        presets,
        args.out,
        max_minutes=args.max_minutes,
        checkpoints_dir=args.checkpoints,
        command=command_line(),
        seed=args.seed,
        valid_user_fraction=args.valid_user_fraction,
        progress=Console().show,
    )
    return finish(report)


def _compression(sub: Subparsers) -> None:
    p = sub.add_parser(
        "compression", help="every compression method and ratio: size, quality, in-process and served speed"
    )
    p.add_argument("--out", type=Path, required=True, help="results folder (compression.json, .md)")
    p.add_argument("--work-dir", type=Path, default=Path("artifacts/compression"), help="variant checkpoints + ONNX")
    p.add_argument(
        "--parent", type=Path, default=Path("artifacts/beauty-base"), help="Beauty base (trained if missing)"
    )
    p.add_argument("--train-minutes", type=float, default=14.0, help="budget of a parent trained here (default 14)")
    p.add_argument("--prune-ratios", default="0.25,0.5,0.75", help="pruning ratios (default 0.25,0.5,0.75)")
    p.add_argument("--share-ratios", default="4,16", help="hash/QR compression ratios (default 4,16)")
    p.add_argument("--finetune-epochs", type=int, default=2, help="fine-tuning epochs after prune/share (default 2)")
    p.add_argument("--finetune-minutes", type=float, default=8.0, help="fine-tuning budget (default 8)")
    p.add_argument(
        "--students",
        default="small",
        help="students distilled from the parent, comma-separated: preset names or JSON ModelConfig files (named by"
        " their stem), e.g. small,bench/students/small-d24.json (default small; the first also gets a labels-only"
        " control)",
    )
    p.add_argument("--distill-minutes", type=float, default=14.0, help="training budget per student (default 14)")
    p.add_argument("--temperature", type=float, default=2.0, help="distillation temperature (default 2)")
    p.add_argument("--weight", type=float, default=0.5, help="distillation teacher weight (default 0.5)")
    p.add_argument("--synthetic-dir", type=Path, default=None, help="a `tritonrec data synth` folder: adds `large`")
    p.add_argument("--synthetic-parent", type=Path, default=Path("artifacts/synth-large"), help="its large parent")
    p.add_argument("--synthetic-train-minutes", type=float, default=30.0, help="budget of that parent (default 30)")
    p.add_argument("--synthetic-share-ratio", type=float, default=4.0, help="hash/QR ratio there (default 4)")
    p.add_argument("--synthetic-finetune-minutes", type=float, default=20.0, help="its fine-tuning budget (default 20)")
    p.add_argument("--eval-users", type=int, default=0, help="score only the first N test users (0 = all)")
    p.add_argument("--no-beauty", action="store_true", help="only the synthetic plan")
    p.add_argument("--repeats", type=int, default=7, help="in-process rounds (default 7)")
    p.add_argument("--repeat-s", type=float, default=1.5, help="in-process seconds per model and round (default 1.5)")
    p.add_argument("--concurrency", type=int, default=8, help="served closed-loop concurrency (default 8)")
    p.add_argument("--threads", type=int, default=1, help="torch threads while training (default 1; 0 = torch's)")
    add_point(p)
    p.set_defaults(handler=run_compression)


def run_compression(args: argparse.Namespace) -> int:
    """Compress, export and measure every variant; print compression.md."""
    from tritonrec.bench.models.compression import SpeedSettings, beauty_plan, run_compression_bench, synthetic_plan
    from tritonrec.compress.options import DistillOptions, FinetuneOptions
    from tritonrec.train.loop import Loss, TrainConfig

    finetune = FinetuneOptions(max_epochs=args.finetune_epochs, max_minutes=args.finetune_minutes)
    plans = []
    if not args.no_beauty:
        budget = {"temperature": args.temperature, "weight": args.weight, "max_minutes": args.distill_minutes}
        students = tuple(DistillOptions.for_student(name, **budget) for name in names(args.students))
        plans.append(
            beauty_plan(
                args.parent,
                prune_ratios=tuple(numbers(args.prune_ratios)),
                share_ratios=tuple(numbers(args.share_ratios)),
                finetune=finetune,
                train=TrainConfig(max_minutes=args.train_minutes),
                students=students,
                eval_users=args.eval_users,
            )
        )
    if args.synthetic_dir is not None:
        train = TrainConfig(loss=Loss.BCE, max_minutes=args.synthetic_train_minutes)
        large_finetune = dataclasses.replace(finetune, max_minutes=args.synthetic_finetune_minutes)
        plans.append(
            synthetic_plan(
                args.synthetic_dir,
                args.synthetic_parent,
                share_ratio=args.synthetic_share_ratio,
                finetune=large_finetune,
                train=train,
                eval_users=args.eval_users,
            )  # fmt: skip
        )
    if not plans:
        raise ConfigError("nothing to measure: --no-beauty needs --synthetic-dir")
    settings = SpeedSettings(
        repeats=args.repeats, repeat_s=args.repeat_s, concurrency=args.concurrency, point=point_settings(args),
        threads=args.threads,
    )  # fmt: skip
    report = run_compression_bench(
        plans, args.work_dir, args.out, settings, command=command_line(), progress=Console().show
    )
    return finish(report)
