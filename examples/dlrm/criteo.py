"""Criteo's CSV format (``label,I1..I13,C1..C26``) as the Parquet file a spec reads: the smoke run on real rows.

    python examples/dlrm/criteo.py --csv examples/dlrm/data/criteo-train-2k.csv --out artifacts/dlrm/criteo.parquet

Integer features become float32 (empty = NaN, which the model reads as 0); each hex categorical becomes its int64
value (empty = 0), which the model takes modulo its table's size. Criteo's rows have no query: consecutive rows are
grouped into queries of ``--query-size`` rows so the ranking metrics have something to rank within (said so in the
guide: the AUC is the figure that means something here).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def read_criteo(path: Path, query_size: int = 20) -> pa.Table:
    """The CSV's rows as a table with ``query_id``, ``label``, ``I1..I13`` (float32), ``C1..C26`` (int64)."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    columns: dict[str, np.ndarray] = {
        "query_id": np.arange(len(rows)) // query_size,
        "label": np.array([int(r["label"]) for r in rows], dtype=np.int8),
    }
    for k in range(1, 14):
        columns[f"I{k}"] = np.array([float(r[f"I{k}"]) if r[f"I{k}"] else np.nan for r in rows], dtype=np.float32)
    for k in range(1, 27):
        columns[f"C{k}"] = np.array([int(r[f"C{k}"], 16) if r[f"C{k}"] else 0 for r in rows], dtype=np.int64)
    return pa.table(columns)


def main() -> None:
    """Convert and write."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=Path(__file__).parent / "data" / "criteo-train-2k.csv")
    parser.add_argument("--out", type=Path, default=Path("artifacts/dlrm/criteo.parquet"))
    parser.add_argument("--query-size", type=int, default=20)
    args = parser.parse_args()
    table = read_criteo(args.csv, args.query_size)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, args.out)
    print(f"wrote {args.out}: {table.num_rows:,} rows, click rate {table.column('label').to_numpy().mean():.3f}")


if __name__ == "__main__":
    main()
