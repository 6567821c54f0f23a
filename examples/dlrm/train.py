"""Train the DLRM on its spec's calibration rows, through tritonrec's public API; write the spec's weights file.

    python examples/dlrm/train.py --spec examples/dlrm/spec.toml --epochs 2

The rows come from the spec (its Parquet file, split by query as every tritonrec command splits them), so the
evaluation queries are never trained on. Prints the evaluation AUC and NDCG@10 beside the ceiling the true click
probabilities reach (the synthetic data's ``p_click`` column), by tritonrec's metrics module.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

from tritonrec.metrics import evaluate_rows, grouped_metrics
from tritonrec.scorers.rows import module_rows_scorer
from tritonrec.spec import load_spec
from tritonrec.spec.model_spec import ModelSpec
from tritonrec.spec.rows import SpecRows, read_rows, split_rows


def main() -> None:
    """Train, save the weights, print the evaluation figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=Path(__file__).with_name("spec.toml"))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--max-minutes", type=float, default=20.0)
    args = parser.parse_args()
    torch.manual_seed(0)
    spec = load_spec(args.spec)
    calibrate, evaluate = split_rows(spec, read_rows(spec))
    sys.path[:0] = [str(p) for p in spec.model.python_path]
    from dlrm import build

    model = build()
    fit(model, calibrate, calibrate.labels.astype(np.float32), epochs=args.epochs, batch=args.batch, lr=args.lr,
        max_minutes=args.max_minutes)  # fmt: skip
    spec.model.weights.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), spec.model.weights)
    model.eval()
    got = evaluate_rows(module_rows_scorer(model, spec), evaluate, cutoffs=spec.metrics.cutoffs)
    line = f"wrote {spec.model.weights}; evaluation rows {len(evaluate):,}: AUC {got['auc']:.4f}"
    best = ceiling(spec, evaluate)
    if best is not None:
        line = line + f" (ceiling {best['auc']:.4f}), NDCG@10 {got['ndcg@10']:.4f} (ceiling {best['ndcg@10']:.4f})"
    print(line)


def fit(
    model: torch.nn.Module,
    rows: SpecRows,
    targets: np.ndarray,
    *,
    epochs: int = 2,
    batch: int = 2048,
    lr: float = 3e-3,
    max_minutes: float = 20.0,
) -> None:
    """Train ``model`` in place on ``rows`` toward ``targets`` (one float in [0, 1] per row), Adam on the logloss.

    The spec's training hook (``[model] train_hook = "train:fit"``): `tritonrec compress --spec` calls it with the
    calibration rows and the labels (pruning, shared tables) or the teacher's probabilities (distillation).
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    dense = torch.from_numpy(rows.features["dense"])
    sparse = torch.from_numpy(rows.features["sparse"])
    goal = torch.from_numpy(np.asarray(targets, dtype=np.float32))
    deadline = time.monotonic() + max_minutes * 60
    for epoch in range(epochs):
        order = torch.randperm(len(goal))
        model.train()
        total = 0.0
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(dense[idx], sparse[idx]), goal[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
            if time.monotonic() > deadline:
                break
        print(f"epoch {epoch + 1}: train logloss {total / len(order):.4f}", flush=True)
        if time.monotonic() > deadline:
            break
    model.eval()


def ceiling(spec: ModelSpec, evaluate: SpecRows) -> dict[str, float] | None:
    """The metrics of the true click probabilities on the evaluation rows (synthetic rows only; else None)."""
    if "p_click" not in pq.read_schema(spec.data.path).names:
        return None
    truth = pq.read_table(spec.data.path, columns=["p_click"]).column("p_click").to_numpy()[evaluate.positions]
    return grouped_metrics(truth, evaluate.labels, evaluate.query_ids, cutoffs=spec.metrics.cutoffs, probabilities=True)


if __name__ == "__main__":
    main()
