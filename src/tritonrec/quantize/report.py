"""The precision report: ``precision.json`` + ``precision.md`` through :func:`tritonrec.records.write_report`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tritonrec.quantize.run import QuantizeResult
from tritonrec.records import Report, markdown_header, new_record, write_report

__all__ = ["markdown", "write_precision_report"]


def _signed(value: float, digits: int = 4) -> str:
    return f"{value:+.{digits}f}"


def _variant_table(result: QuantizeResult, body: dict[str, Any]) -> list[str]:
    batches = result.config.speed.batches
    speed_heads = " | ".join(f"cand/s B={b}" for b in batches)
    lines = [
        f"| variant | runtime | NDCG@10 | Δ | AUC | Δ | logloss | Δ | bytes | {speed_heads} "
        f"| x FP32 @B={result.config.serving_batch} | in budget | notes |",
        "|---" * (11 + len(batches)) + "|",
    ]
    for entry, row in zip(body["variants"], result.rows, strict=True):
        speeds = " | ".join(row.speed[b].text() for b in batches)
        ratio = entry["serving_batch_speedup"]
        speedup = f"{ratio['ratio']:.2f} ({ratio['ratio_min']:.2f}-{ratio['ratio_max']:.2f})"
        lines.append(
            f"| {entry['name']} | {entry['runtime']} | {entry['ndcg@10']:.4f} | {_signed(entry['ndcg@10_delta'])} "
            f"| {entry['auc']:.4f} | {_signed(entry['auc_delta'])} | {entry['logloss']:.4f} "
            f"| {_signed(entry['logloss_delta'])} | {entry['bytes']:,} | {speeds} | {speedup} "
            f"| {'yes' if entry['within_budget'] else 'no'} | {entry['notes']} |"
        )
    return lines


def _sensitivity_table(body: dict[str, Any]) -> list[str]:
    sens = body["sensitivity"]
    ref = sens["reference"]
    lines = [
        f"Validation split, FP32: NDCG@10 {ref['ndcg@10']:.4f}, AUC {ref['auc']:.4f}, logloss {ref['logloss']:.4f}; "
        f"calibrator `{sens['calibrator']}`. Each row quantizes one group alone (every other node FP32).",
        "",
        "| group | INT8 nodes | NDCG@10 Δ | AUC Δ | logloss Δ | budget used | kept in FP32 |",
        "|---|---|---|---|---|---|---|",
    ]
    kept = set(body["mixed"]["kept_fp"])
    for g in sens["groups"]:
        lines.append(
            f"| {g['group']} | {g['quantized_nodes']} | {_signed(g['ndcg@10_delta'])} | {_signed(g['auc_delta'])} "
            f"| {_signed(g['logloss_delta'])} | {g['budget_cost']:.2f} | {'yes' if g['group'] in kept else 'no'} |"
        )
    mixed = body["mixed"]
    lines += [
        "",
        f"Mixed precision: groups kept in FP32: **{', '.join(mixed['kept_fp']) or 'none'}**; on validation NDCG@10 "
        f"{_signed(mixed['valid']['ndcg@10_delta'])}, AUC {_signed(mixed['valid']['auc_delta'])} "
        f"({'within' if mixed['valid_within_budget'] else 'OUTSIDE'} the budget). Combinations tried: "
        + "; ".join(f"[{', '.join(t['kept_fp']) or 'none'}] cost {t['budget_cost']:.2f}" for t in mixed["trail"]),
    ]
    return lines


def _profile_lines(body: dict[str, Any]) -> list[str]:
    lines = [
        "| variant | INT8 kernels (count) | float MatMuls | top ops, ms per run at the serving batch |",
        "|---|---|---|---|",
    ]
    for entry in body["variants"]:
        profile = entry.get("profile")
        if not profile:
            continue
        int8 = ", ".join(f"{k} {v}" for k, v in profile["int8_ops"].items()) or "none"
        top = ", ".join(f"{k} {v:.1f}" for k, v in list(profile["ms_per_op"].items())[:5]) or "n/a (OpenVINO)"
        lines.append(f"| {entry['name']} | {int8} | {profile['float_matmuls']} | {top} |")
    return lines


def markdown(result: QuantizeResult, record: dict[str, Any]) -> str:
    """The Markdown of the report."""
    body = record
    goal = body["cpu_goal"]
    lines = markdown_header("Precision variants: quality on Beauty test, CPU speed, INT8 coverage", record)
    budget = body["budget"]
    users = f"first {result.config.eval_users} users" if result.config.eval_users else "all users"
    lines += [
        f"Quality budget: AUC drop <= {budget['max_auc_drop']}, NDCG@10 drop <= {budget['max_ndcg_drop']} vs FP32 "
        f"(test split, {users}). "
        f"Speed: in-process, {body['candidates']} candidates per user, {body['repeats']} interleaved repeats, "
        "median (min-max). "
        f"ISA: {' '.join(body['isa'])}.",
        "",
        *_variant_table(result, body),
        "",
        "## Sensitivity per layer group",
        "",
        *_sensitivity_table(body),
        "",
        "## What ran in INT8",
        "",
        *_profile_lines(body),
        "",
        "## CPU goal",
        "",
    ]
    if goal.get("best") is None:
        lines.append(f"Not met: {goal['why']}.")
    else:
        ratio = goal["speedup"]
        lines.append(
            f"Goal {goal['goal']}x FP32 candidates/s at B={body['serving_batch']} within the budget: "
            f"**{'met' if goal['met'] else 'not met'}**; fastest variant within the budget: `{goal['best']}` at "
            f"{ratio['ratio']:.2f}x ({ratio['ratio_min']:.2f}-{ratio['ratio_max']:.2f}). ranker_cpu winner: "
            f"`{body['winner'] or 'none (stays FP32)'}`."
        )
    if body["modelopt_errors"]:
        lines += [
            "",
            "ModelOpt runs that failed: " + "; ".join(f"{k}: {v}" for k, v in body["modelopt_errors"].items()),
        ]
    return "\n".join(lines) + "\n"


def write_precision_report(
    result: QuantizeResult, out_dir: Path, command: str, extra: dict[str, Any] | None = None
) -> Report:
    """Write ``precision.json`` and ``precision.md`` into ``out_dir`` (``extra`` adds e.g. the served check)."""
    record = {**new_record(command), **result.to_dict(), **(extra or {})}
    text = markdown(result, record)
    if extra and "served" in extra:
        served = extra["served"]
        text += (
            f"\n## Served through Triton\n\n`{served['variant']}` ({served['runtime']}) in `ranker_cpu` on the bundled "
            f"tritonserver: {served['users']:,} test users, one request each; max |served - in-process| "
            f"{served['max_abs_diff']:.2e}; NDCG@10 served {served['ndcg@10_served']:.4f} vs in-process "
            f"{served['ndcg@10_in_process']:.4f}; {served['executions']:,} executions for {served['grpc_requests']:,} "
            "requests.\n"
        )
    return write_report(out_dir, "precision", record, text)
