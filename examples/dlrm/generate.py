"""Criteo-like synthetic click rows with a known click probability, written as the Parquet file a spec reads.

    python examples/dlrm/generate.py --rows 1000000 --out artifacts/dlrm/rows.parquet

Columns: ``query_id`` (a query's rows share it: one user's impression list of 20-80 candidates), ``label`` (the
click, drawn from ``p_click``), ``p_click`` (the true probability: the ceiling any model can reach), ``I1..I13``
(dense counts, lognormal, 5% missing as NaN) and ``C1..C26`` (categorical ids, Zipf-skewed over each table's
size; C1-C3 are the query's own: user, device, site, the same for all its rows). The click's logit is a sum of
per-category effects, a weighted sum of the log counts, and two latent user x item interactions, scaled to a
click rate near Criteo's (about 0.2). Seeded: the same arguments give the same file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

TABLE_SIZES = [
    2_000, 500, 200_000, 60_000, 300, 24, 12_000, 600, 3, 90_000, 5_000, 150_000, 3_000,
    30, 12_000, 100_000, 10, 4_000, 2_000, 4, 120_000, 20, 15, 40_000, 70, 60_000,
]  # fmt: skip
QUERY_FEATURES = 3  # C1-C3: the user, device and site of a query


def _zipf_ids(rng: np.random.Generator, size: int, n: int, skew: float = 2.5) -> np.ndarray:
    return np.minimum((size * rng.random(n) ** skew).astype(np.int64), size - 1)


def generate(rows: int, seed: int = 0) -> pa.Table:
    """``rows`` click rows in queries of 20-80 candidates (the last query may be shorter)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(20, 81, size=rows // 20 + 1)
    query_id = np.repeat(np.arange(len(lengths)), lengths)[:rows]
    n_queries = int(query_id[-1]) + 1
    columns: dict[str, np.ndarray] = {}
    logit = np.full(rows, -2.2)
    for k, size in enumerate(TABLE_SIZES):
        if k < QUERY_FEATURES:
            ids = _zipf_ids(rng, size, n_queries)[query_id]
        else:
            ids = _zipf_ids(rng, size, rows)
        effect = np.random.default_rng(seed + 100 + k).normal(0, 0.35 if size > 50 else 0.2, size)
        logit += effect[ids]
        columns[f"C{k + 1}"] = ids
    dense_weights = np.random.default_rng(seed + 1).normal(0, 0.12, 13)
    for k in range(13):
        counts = np.floor(np.exp(rng.normal(1.0 + 0.2 * k, 1.2, rows))).astype(np.float32)
        logit += dense_weights[k] * (np.log1p(counts) - 1.5)
        counts[rng.random(rows) < 0.05] = np.nan
        columns[f"I{k + 1}"] = counts
    for user_table, item_table in ((0, 3), (1, 11)):  # latent user x item affinities, 4 dims each
        latent = np.random.default_rng(seed + 7 + user_table)
        u = latent.normal(0, 0.5, (TABLE_SIZES[user_table], 4))
        v = latent.normal(0, 0.5, (TABLE_SIZES[item_table], 4))
        logit += np.einsum("rd,rd->r", u[columns[f"C{user_table + 1}"]], v[columns[f"C{item_table + 1}"]])
    p_click = 1.0 / (1.0 + np.exp(-logit))
    label = (rng.random(rows) < p_click).astype(np.int8)
    ordered = {"query_id": query_id, "label": label, "p_click": p_click}
    ordered |= {f"I{k + 1}": columns[f"I{k + 1}"] for k in range(13)}
    ordered |= {f"C{k + 1}": columns[f"C{k + 1}"] for k in range(26)}
    return pa.table(ordered)


def main() -> None:
    """Generate and write the rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("artifacts/dlrm/rows.parquet"))
    args = parser.parse_args()
    table = generate(args.rows, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, args.out)
    labels = table.column("label").to_numpy()
    print(f"wrote {args.out}: {table.num_rows:,} rows, {len(np.unique(table.column('query_id')))} queries, "
          f"click rate {labels.mean():.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
