"""``tritonrec data synth``: write a synthetic e-commerce dataset."""

from __future__ import annotations

import argparse
import json
import time

from tritonrec.data.synthetic import SyntheticConfig, generate_synthetic
from tritonrec.data.synthetic_io import save_synthetic

__all__ = ["run_synth"]


def run_synth(args: argparse.Namespace) -> int:
    """Generate and save a synthetic dataset; print its size and the ground-truth (best achievable) AUC."""
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
    started = time.perf_counter()
    dataset = generate_synthetic(config)
    save_synthetic(dataset, args.out)
    oracle = dataset.split(seed=args.seed).oracle_metrics()
    summary = {
        "out": str(args.out),
        "n_items": config.n_items,
        "n_users": config.n_users,
        "base_ctr": round(float(dataset.labels.mean()), 4),
        "oracle_test_auc": round(oracle["auc"], 4),
        "oracle_test_auc_global": round(oracle["auc_global"], 4),
        "seconds": round(time.perf_counter() - started, 1),
    }
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    else:
        print(
            f"wrote {config.n_users:,} users x {config.slate_size} impressions over {config.n_items:,} items to "
            f"{args.out} in {summary['seconds']} s; base CTR {summary['base_ctr']}, best achievable test AUC "
            f"{summary['oracle_test_auc']} (per user) / {summary['oracle_test_auc_global']} (pooled)"
        )
    return 0
