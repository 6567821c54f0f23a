"""The DLRM study's record: what `examples/dlrm/study.sh` measured, in one study.json + study.md beside its files.

    python examples/dlrm/summarize.py OUT [--spec examples/dlrm/spec.toml]

Reads the files the study wrote into OUT (export.json, eager.json, served-fp32.json, served-int8.json,
precision.json, query.json), adds the ceiling the true click probabilities reach on the same evaluation rows and
the host, versions and commit (`tritonrec.records`), and writes the record the results index lists.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from train import ceiling  # this folder's training script: the same ceiling it prints

from tritonrec.records import markdown_header, new_record, write_report
from tritonrec.spec import load_spec
from tritonrec.spec.rows import read_rows, split_rows

HEADLINE = ("auc", "logloss", "ndcg@10", "mrr")


def _read(out: Path, name: str) -> dict[str, Any]:
    return json.loads((out / name).read_text())


def summary(out: Path, spec_path: Path) -> dict[str, Any]:
    """The study's figures, read back from its files."""
    spec = load_spec(spec_path)
    _, evaluate = split_rows(spec, read_rows(spec))
    export, precision = _read(out, "export.json"), _read(out, "precision.json")
    served, served_int8 = _read(out, "served-fp32.json"), _read(out, "served-int8.json")
    published = next(v for v in precision["variants"] if v["name"] == precision["published"])
    best = ceiling(spec, evaluate) or {}
    return {
        "rows": {"all": len(read_rows(spec)), "evaluation": len(evaluate), "evaluation_queries": evaluate.n_queries},
        "parity": [
            {k: p[k] for k in ("reference", "candidate", "max_abs", "passed") if k in p} for p in export["parity"]
        ],
        "parity_rows": export.get("parity_rows"),
        "eager": {k: _read(out, "eager.json")[k] for k in HEADLINE},
        "ceiling": {k: best[k] for k in HEADLINE if k in best},
        "served_fp32": {**{k: served[k] for k in HEADLINE}, "max_abs_diff_vs_eager": served["max_abs_diff"]},
        "int8_published": {
            "name": published["name"],
            "winner": precision["winner"],
            "in_process": {k: published[k] for k in ("auc", "ndcg@10", "logloss")},
            "auc_delta": published["auc_delta"],
            "ndcg@10_delta": published["ndcg@10_delta"],
            "bytes": published["bytes"],
        },
        "served_int8": {
            **{k: served_int8[k] for k in HEADLINE},
            "max_abs_diff_vs_in_process": served_int8["max_abs_diff"],
        },
        "query": _read(out, "query.json"),
    }


def markdown(record: dict[str, Any]) -> str:
    """The record as a short page."""
    eager, top, fp32, int8 = record["eager"], record["ceiling"], record["served_fp32"], record["served_int8"]
    published = record["int8_published"]
    lines = markdown_header("The DLRM example through every command, on a million synthetic rows", record)
    lines += [
        f"Rows: {record['rows']['all']:,}; evaluation: {record['rows']['evaluation']:,} rows in "
        f"{record['rows']['evaluation_queries']:,} queries (held out by query, never trained on).",
        "",
        "| | AUC | logloss | NDCG@10 | MRR |",
        "|---|---|---|---|---|",
        *(
            f"| {name} | {m['auc']:.4f} | {m['logloss']:.4f} | {m['ndcg@10']:.4f} | {m['mrr']:.4f} |"
            for name, m in (("eager PyTorch", eager), ("served FP32 (Triton, CPU)", fp32), ("served INT8", int8))
        ),
        f"| true click probability (ceiling) | {top.get('auc', float('nan')):.4f} | "
        f"{top.get('logloss', float('nan')):.4f} | {top.get('ndcg@10', float('nan')):.4f} | "
        f"{top.get('mrr', float('nan')):.4f} |",
        "",
        "Parity: "
        + "; ".join(f"{p['candidate']} vs {p['reference']}: max abs {p['max_abs']:.2e}" for p in record["parity"])
        + f" (over {record['parity_rows']:,} evaluation rows).",
        f"Served FP32 vs eager, every evaluation row: max |difference| {fp32['max_abs_diff_vs_eager']:.2e}.",
        f"INT8: `{published['name']}` published (winner: {published['winner'] or 'none'}; precision.md has every "
        f"variant), AUC {published['auc_delta']:+.4f} and NDCG@10 {published['ndcg@10_delta']:+.4f} against FP32 in "
        f"process, {published['bytes'] / 1e6:.1f} MB; served vs in process, every evaluation row: max |difference| "
        f"{int8['max_abs_diff_vs_in_process']:.2e}.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Write study.json and study.md into OUT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--spec", type=Path, default=Path(__file__).with_name("spec.toml"))
    args = parser.parse_args()
    record = {**new_record(" ".join(["python", *sys.argv])), **summary(args.out, args.spec)}
    report = write_report(args.out, "study", record, markdown(record))
    print(report.markdown)


if __name__ == "__main__":
    main()
