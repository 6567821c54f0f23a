"""``tritonrec data synth``: write a synthetic e-commerce dataset with its ground-truth (best achievable) AUC."""

from __future__ import annotations

import argparse
from pathlib import Path

from tritonrec.cli.common import print_json

__all__ = ["register", "run_synth"]


def register(p: argparse.ArgumentParser) -> None:
    """The ``tritonrec data`` subcommands."""
    sub = p.add_subparsers(dest="data_command", required=True)
    synth = sub.add_parser("synth", help="generate a synthetic e-commerce dataset")
    synth.add_argument("--out", type=Path, required=True, help="directory to write")
    synth.add_argument("--n-items", type=int, default=20_000)
    synth.add_argument("--n-users", type=int, default=20_000)
    synth.add_argument("--n-categories", type=int, default=50)
    synth.add_argument("--n-brands", type=int, default=500)
    synth.add_argument("--history-len", type=int, default=50)
    synth.add_argument("--slate-size", type=int, default=20)
    synth.add_argument("--label-noise", type=float, default=1.0, help="smaller = more predictable clicks")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--json", action="store_true", help="print the summary as JSON")
    synth.set_defaults(handler=run_synth)


def run_synth(args: argparse.Namespace) -> int:
    """Generate and save the dataset; print its size and the ground truth's test AUC."""
    from tritonrec.data.synthetic import SyntheticConfig
    from tritonrec.pipeline.synth import write_synthetic

    config = SyntheticConfig(
        n_items=args.n_items,
        n_users=args.n_users,
        n_categories=args.n_categories,
        n_brands=args.n_brands,
        history_len=args.history_len,
        slate_size=args.slate_size,
        label_noise=args.label_noise,
        seed=args.seed,
    )
    result = write_synthetic(config, args.out, seed=args.seed)
    summary = {
        "out": str(result.out_dir),
        "n_items": config.n_items,
        "n_users": config.n_users,
        "base_ctr": round(result.base_ctr, 4),
        "oracle_test_auc": round(result.oracle_test["auc"], 4),
        "oracle_test_auc_global": round(result.oracle_test["auc_global"], 4),
        "elapsed_s": round(result.elapsed_s, 1),
    }
    if args.json:
        print_json(summary)
        return 0
    print(
        f"wrote {config.n_users:,} users x {config.slate_size} impressions over {config.n_items:,} items to "
        f"{args.out} in {summary['elapsed_s']} s; base CTR {summary['base_ctr']}, best achievable test AUC "
        f"{summary['oracle_test_auc']} (per user) / {summary['oracle_test_auc_global']} (pooled)"
    )
    return 0
