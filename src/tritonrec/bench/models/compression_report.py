"""The compression report: the goals judged from the recorded figures, and the Markdown of ``compression.json``.

Every figure comes from the record :mod:`tritonrec.bench.models.compression` writes; a goal whose figures were not
measured (yet) reads "not measured", never "met". Imports no torch.
"""

from __future__ import annotations

import statistics
from typing import Any

from tritonrec.records import markdown_header

__all__ = ["GOALS", "evaluate_goals", "render_markdown", "round_ratios"]

GOALS = {
    "smaller_4x": "a variant >= 4x smaller than base (checkpoint and ONNX bytes) with NDCG@10 drop <= 0.005",
    "distilled": "a distilled student keeping >= 97% of its teacher's NDCG@10 at >= 3x its in-process CPU throughput",
    "int8": "row-wise INT8 embeddings with AUC drop <= 0.0002",
    "int4": "INT4 embedding tables >= 6x smaller with AUC drop <= 0.0005",
    "qr_vs_hash": "QR beats the hashing trick at the same parameter count (NDCG@10 and AUC)",
    "synthetic_8x": "large on a >= 1M-item synthetic catalogue: shared + quantized embeddings cut model bytes >= 8x",
}

Entry = dict[str, Any]


def _ratio(parent: Entry, entry: Entry, key: str) -> float | None:
    if key == "onnx_bytes":
        a, b = parent.get("export", {}).get(key), entry.get("export", {}).get(key)
    else:
        a, b = parent.get(key), entry.get(key)
    return round(a / b, 2) if a and b else None


def _speed(entry: Entry, where: str = "in_process") -> float | None:
    value = entry.get(where, {}).get("candidates_per_second")
    return float(value) if value else None


def round_ratios(entry: Entry, parent: Entry) -> list[float]:
    """``entry``'s in-process candidates/s over ``parent``'s, round by round (each round visits both in turn)."""
    mine, theirs = entry.get("in_process", {}).get("rounds"), parent.get("in_process", {}).get("rounds")
    if not mine or not theirs or len(mine) != len(theirs):
        return []
    return [a / b for a, b in zip(mine, theirs, strict=True)]


def _times(entry: Entry, parent: Entry, where: str) -> float | None:
    """How many times faster ``entry`` is than ``parent`` (None where either was not measured).

    In process, the median of the round-by-round ratios (the side-by-side comparison); served, the ratio of the
    two points.
    """
    ratios = round_ratios(entry, parent) if where == "in_process" else []
    if ratios:
        return statistics.median(ratios)
    mine, theirs = _speed(entry, where), _speed(parent, where)
    return mine / theirs if mine and theirs else None


def _times_text(entry: Entry, parent: Entry, where: str) -> str:
    """``3.55x`` (served), or ``3.55x [3.07-3.94]`` with the range of the round-by-round ratios (in process)."""
    ratios = round_ratios(entry, parent) if where == "in_process" else []
    if ratios:
        return f"{statistics.median(ratios):.2f}x [{min(ratios):.2f}-{max(ratios):.2f}]"
    times = _times(entry, parent, where)
    return "" if times is None else f"{times:.2f}x"


def _goal(key: str, met: bool | None, figures: str) -> dict[str, Any]:
    return {"key": key, "goal": GOALS[key], "met": met, "figures": figures}


def _smaller(plan: dict[str, Any]) -> dict[str, Any]:
    parent = plan["parent"]
    rows = []
    for v in plan["variants"]:
        ckpt, onnx = _ratio(parent, v, "checkpoint_bytes"), _ratio(parent, v, "onnx_bytes")
        if ckpt is not None and ckpt >= 4 and (onnx is None or onnx >= 4):
            rows.append((v, ckpt, onnx, -v["delta_vs_root"]["ndcg@10"]))
    if not rows:
        return _goal("smaller_4x", False, "no variant is >= 4x smaller")
    meeting = [r for r in rows if r[3] <= 0.005 and r[2] is not None]
    v, ckpt, onnx, drop = max(meeting, key=lambda r: r[1]) if meeting else min(rows, key=lambda r: r[3])
    figures = f"{v['name']}: {ckpt}x smaller checkpoint, {onnx}x smaller ONNX, NDCG@10 drop {drop:.4f}"
    others = ", ".join(f"{r[0]['name']} ({r[1]}x, drop {r[3]:.4f})" for r in rows if r[0] is not v)
    return _goal("smaller_4x", bool(meeting), figures + (f"; other >= 4x variants: {others}" if others else ""))


def _distilled(plan: dict[str, Any]) -> dict[str, Any]:
    parent = plan["parent"]
    students = [v for v in plan["variants"] if v["methods"] == ["distill"] and v["arguments"].get("weight", 0) > 0]
    if not students:
        return _goal("distilled", None, "not measured")
    results = []
    for v in students:
        keep = v["metrics"]["ndcg@10"] / parent["metrics"]["ndcg@10"]
        results.append((v, keep, _times(v, parent, "in_process"), _times(v, parent, "served")))
    met = [r for r in results if r[1] >= 0.97 and r[2] is not None and r[2] >= 3]
    measured = all(r[2] is not None for r in results)
    text = "; ".join(
        f"{v['name']}: {keep:.1%} of the teacher's NDCG@10, "
        + (f"{_times_text(v, parent, 'in_process')} in-process" if up else "speed not measured")
        + (f", {sup:.2f}x served" if sup else "")
        for v, keep, up, sup in results
    )
    return _goal("distilled", True if met else (False if measured else None), text)


def _quantized(plan: dict[str, Any], storage: str) -> list[Entry]:
    return [
        v
        for v in plan["variants"]
        if v["methods"] == ["quantize-embeddings"] and v["parent"] == "parent" and v["arguments"]["storage"] == storage
    ]


def _int8(plan: dict[str, Any]) -> dict[str, Any]:
    found = _quantized(plan, "int8")
    if not found:
        return _goal("int8", None, "not measured")
    drops = [(v, -v["delta_vs_parent"]["auc"]) for v in found]
    text = "; ".join(f"{v['name']}: AUC drop {d:.5f}, tables {v['details']['table_ratio']}x smaller" for v, d in drops)
    return _goal("int8", any(d <= 0.0002 for _, d in drops), text)


def _int4(plan: dict[str, Any]) -> dict[str, Any]:
    found = _quantized(plan, "int4")
    if not found:
        return _goal("int4", None, "not measured")
    rows = [(v, v["details"]["table_ratio"], -v["delta_vs_parent"]["auc"]) for v in found]
    text = "; ".join(f"{v['name']}: tables {r}x smaller, AUC drop {d:.5f}" for v, r, d in rows)
    return _goal("int4", any(r >= 6 and d <= 0.0005 for _, r, d in rows), text)


def qr_hash_pairs(plan: dict[str, Any]) -> list[tuple[float, Entry, Entry]]:
    """``(ratio, hash variant, qr variant)`` for every ratio measured with both kinds from the parent."""
    shared = {
        (v["arguments"]["kind"], float(v["arguments"]["ratio"])): v
        for v in plan["variants"]
        if v["methods"] == ["share"] and v["parent"] == "parent"
    }
    ratios = sorted({r for _, r in shared})
    return [
        (r, shared[("hash", r)], shared[("qr", r)]) for r in ratios if ("hash", r) in shared and ("qr", r) in shared
    ]


def _qr_vs_hash(plan: dict[str, Any]) -> dict[str, Any]:
    pairs = qr_hash_pairs(plan)
    if not pairs:
        return _goal("qr_vs_hash", None, "not measured")
    wins, parts = [], []
    for ratio, hashed, qr in pairs:
        d_ndcg = qr["metrics"]["ndcg@10"] - hashed["metrics"]["ndcg@10"]
        d_auc = qr["metrics"]["auc"] - hashed["metrics"]["auc"]
        wins.append(d_ndcg > 0 and d_auc > 0)
        parts.append(
            f"ratio {ratio:g} ({qr['params']:,} vs {hashed['params']:,} params): QR - hash NDCG@10 {d_ndcg:+.4f}, "
            f"AUC {d_auc:+.4f}"
        )
    return _goal("qr_vs_hash", all(wins), "; ".join(parts) + f" (QR better at {sum(wins)} of {len(wins)} ratios)")


def _synthetic(plan: dict[str, Any]) -> dict[str, Any]:
    parent = plan["parent"]
    found = [v for v in plan["variants"] if {"share", "quantize-embeddings"} <= set(v["methods"])]
    if not found:
        return _goal("synthetic_8x", None, "not measured")
    oracle = parent.get("oracle_metrics", {}).get("auc")
    rows, met = [], False
    for v in found:
        ckpt, onnx = _ratio(parent, v, "checkpoint_bytes"), _ratio(parent, v, "onnx_bytes")
        met = met or bool(ckpt and ckpt >= 8 and onnx and onnx >= 8)
        gap = ""
        if oracle is not None:
            before, after = oracle - parent["metrics"]["auc"], oracle - v["metrics"]["auc"]
            gap = f", gap to the ground-truth AUC {oracle:.4f}: {before:.4f} -> {after:.4f}"
        rows.append(
            f"{v['name']}: {ckpt}x smaller checkpoint, {onnx}x smaller ONNX, AUC {parent['metrics']['auc']:.4f} -> "
            f"{v['metrics']['auc']:.4f} ({v['delta_vs_root']['auc']:+.4f}){gap}"
        )
    return _goal("synthetic_8x", met, "; ".join(rows))


def evaluate_goals(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Judge every goal from the figures in ``record`` (``met`` is None where they are not measured)."""
    goals = []
    beauty = record["plans"].get("beauty")
    if beauty is not None:
        goals += [_smaller(beauty), _distilled(beauty), _int8(beauty), _int4(beauty), _qr_vs_hash(beauty)]
    synthetic = record["plans"].get("synthetic")
    goals.append(_synthetic(synthetic) if synthetic is not None else _goal("synthetic_8x", None, "not measured"))
    return goals


def _speed_cell(entry: Entry, parent: Entry, where: str) -> str:
    speed = entry.get(where)
    if not speed:
        return "-"
    times = _times_text(entry, parent, where)
    return f"{speed['candidates_per_second']:,.0f} [{speed['min']:,.0f}-{speed['max']:,.0f}]" + (
        f" ({times})" if times else ""
    )


def _row(entry: Entry, parent: Entry) -> str:
    is_parent = entry is parent
    onnx = entry.get("export", {}).get("onnx_bytes")
    ckpt_x, onnx_x = _ratio(parent, entry, "checkpoint_bytes"), _ratio(parent, entry, "onnx_bytes")
    m = entry["metrics"]
    if is_parent:
        deltas = ("", "")
    else:
        dp, dr = entry["delta_vs_parent"], entry["delta_vs_root"]
        deltas = (
            f" ({dp['ndcg@10']:+.4f} / {dr['ndcg@10']:+.4f})",
            f" ({dp['auc']:+.4f} / {dr['auc']:+.4f})",
        )
    method = "trained" if is_parent else " + ".join(entry["methods"])
    return (
        f"| {entry['name']} | {'-' if is_parent else entry['parent']} | {method} | {entry['params']:,} "
        f"| {entry['checkpoint_bytes']:,} ({ckpt_x}x) | {f'{onnx:,} ({onnx_x}x)' if onnx else '-'} "
        f"| {m['ndcg@10']:.4f}{deltas[0]} | {m['auc']:.4f}{deltas[1]} "
        f"| {_speed_cell(entry, parent, 'in_process')} | {_speed_cell(entry, parent, 'served')} |"
    )


def _qr_hash_table(plan: dict[str, Any]) -> list[str]:
    pairs = qr_hash_pairs(plan)
    if not pairs:
        return []
    lines = [
        "Hashing trick vs quotient-remainder at the same row budget (collisions over the item ids, OOV included):",
        "",
        "| ratio | kind | stored rows | params | colliding ids | distinct vectors | NDCG@10 | AUC | NDCG@10 at start |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for ratio, *kinds in pairs:
        for v in kinds:
            d, c = v["details"], v["details"]["collisions"]
            start = d.get("metrics_before_finetune", {}).get("ndcg@10")
            lines.append(
                f"| {ratio:g} | {d['kind']} | {d['stored_rows']:,} | {v['params']:,} | {c['colliding_ids']:,} "
                f"({c['colliding_share']:.1%}) | {c['distinct_vectors']:,} | {v['metrics']['ndcg@10']:.4f} "
                f"| {v['metrics']['auc']:.4f} | {start if start is None else f'{start:.4f}'} |"
            )
    return [*lines, ""]


def _kernel_table(plan: dict[str, Any]) -> list[str]:
    runs = plan.get("lookup_kernels") or []
    if not runs:
        return []
    shape = "x".join(str(n) for n in runs[0]["rows_shape"])
    lines = [
        f"Lookup of the parent's item table for {shape} candidate ids (one ONNX Runtime thread; median "
        "[min-max] of interleaved rounds; error against the FP32 table):",
        "",
        "| storage / block | kernel | lookups/s | max abs error | ONNX ops |",
        "|---|---|---|---|---|",
    ]
    for run in runs:
        for kernel, k in run["kernels"].items():
            lines.append(
                f"| {run['storage']} / {run['block']} | {kernel} | {k['lookups_per_second']:,} "
                f"[{k['min']:,}-{k['max']:,}] | {k['max_abs_error']:.2e} | {', '.join(k['ops'])} |"
            )
    return [*lines, ""]


def _plan_section(label: str, plan: dict[str, Any]) -> list[str]:
    parent = plan["parent"]
    info = f"{parent['preset']} parent `{parent['checkpoint']}`, {parent['evaluated_users']:,} test users"
    lines = [f"## {label}: {plan['dataset']} ({info})", ""]
    if "oracle_metrics" in parent:
        oracle = parent["oracle_metrics"]
        lines += [f"Ground truth on the same rows (the ceiling): NDCG@10 {oracle['ndcg@10']:.4f}, "
                  f"AUC {oracle['auc']:.4f}.", ""]  # fmt: skip
    lines += [
        "| model | from | method | params | checkpoint bytes (x smaller) | ONNX bytes (x smaller) "
        "| NDCG@10 (Δ parent / Δ base) | AUC (Δ parent / Δ base) | in-process cand/s median [min-max] (x base, "
        "median [min-max] of the rounds' ratios) "
        "| served cand/s [min-max] (x base) |",
        "|---|---|---|---|---|---|---|---|---|---|",
        _row(parent, parent),
        *(_row(v, parent) for v in plan["variants"]),
        "",
        *_qr_hash_table(plan),
        *_kernel_table(plan),
    ]
    return lines


def render_markdown(record: dict[str, Any]) -> str:
    """Render the compression report (every figure from ``record``)."""
    s = record["settings"]
    lines = [
        *markdown_header("Compression: pruning, distillation, shared and quantized embeddings", record),
        f"Speed scenario: in process, the `ranker_cpu` ONNX Runtime session on batches of {s['batch_users']} users x "
        f"{s['n_candidates']} candidates, {s['repeats']} rounds of {s['repeat_s']:g} s per model visiting every "
        f"model in turn (median [min-max] of the rounds); served, the bundled Triton (`ranker_cpu`) at closed-loop "
        f"concurrency {s['concurrency']}, one user and {s['n_candidates']} candidates per request (the point's "
        "figure [min-max of its measured windows]). Metrics: the test split by the shared metrics module (eager "
        "scorer); Δ parent is against the model the variant was made from, Δ base against the trained parent.",
        "",
    ]
    for label, plan in record["plans"].items():
        lines += _plan_section(label, plan)
    lines += ["## Goals", ""]
    for goal in record.get("goals", []):
        verdict = {True: "**met**", False: "**not met**", None: "not measured"}[goal["met"]]
        lines.append(f"- {goal['goal']}: {verdict}. {goal['figures']}")
    return "\n".join(lines) + "\n"
