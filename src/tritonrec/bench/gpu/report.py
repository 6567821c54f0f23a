"""The Markdown of ``bench gpu``: every figure is read from the record, none is computed or typed here."""

from __future__ import annotations

from typing import Any

from tritonrec.records import markdown_header

__all__ = ["GOAL_CANDIDATES_PER_SECOND", "write_markdown"]

GOAL_CANDIDATES_PER_SECOND = 5_000_000
"""The issue's goal for ``base`` at N=200 on one H200, within a 20 ms p99."""


def _millions(value: float) -> str:
    return f"{value / 1e6:.2f}M" if value >= 1e5 else f"{value:,.0f}"


def _cell(point: dict[str, Any]) -> str:
    if "skipped" in point:
        return "skipped"
    if "error" in point:
        return "error"
    return f"{_millions(point['candidates_per_second'])} ({point['median_ms']:g} ms)"


def _device_line(device: dict[str, Any]) -> str:
    if device.get("name"):
        return (
            f"Device: {device['name']} (compute {device['capability']}, {device['memory_gib']} GiB, CUDA "
            f"{device['cuda_runtime']}), torch {device['torch']}, FP32 matmul precision "
            f"{device['fp32_matmul_precision']}."
        )
    return f"Device: {device['device']} ({device.get('threads', '?')} torch threads), torch {device['torch']}."


def _models(record: dict[str, Any]) -> list[str]:
    lines = []
    for name, facts in record["models"].items():
        lines.append(f"- `{name}`: {facts['source']}; {facts['parameters']:,} parameters.")
    return lines


def _in_process(record: dict[str, Any]) -> list[str]:
    rows = record["in_process"]
    if not rows:
        return []
    batches = [p["users"] for p in rows[0]["points"]]
    n = rows[0]["points"][0]["candidates"]
    lines = [
        f"## In process: candidates/s (median latency per call), B users x {n} candidates",
        "",
        "Inputs on the device; each call synchronised; median of the timed calls. `weights`: weights cast to the "
        "precision; `autocast`: FP32 weights under torch.autocast.",
        "",
        "| model | precision, execution | " + " | ".join(f"B={b}" for b in batches) + " |",
        "|---|---|" + "---|" * len(batches),
    ]
    for row in rows:
        lines.append(f"| {row['model']} | {row['label']} | " + " | ".join(_cell(p) for p in row["points"]) + " |")
    if record.get("compile_skipped"):
        lines.append(f"\ntorch.compile: skipped ({record['compile_skipped']}).")
    errors = [(row["label"], p) for row in rows for p in row["points"] if "error" in p]
    for label, point in errors[:6]:
        lines.append(f"\n{label}, B={point['users']}: `{point['error'][:200]}`")
    return [*lines, ""]


def _quality(record: dict[str, Any]) -> list[str]:
    rows = record["quality"]
    if not rows:
        return []
    lines = [
        f"## Quality against FP32: `base` on {rows[0]['users']:,} Beauty test users (1 positive + 99 negatives each)",
        "",
        "| setting | NDCG@10 | delta | HR@10 | delta | AUC | delta | max abs score diff | mean abs score diff |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for q in rows:
        lines.append(
            f"| {q['label']} | {q['ndcg@10']:.4f} | {q['delta_ndcg@10']:+.4f} | {q['hr@10']:.4f} "
            f"| {q['delta_hr@10']:+.4f} | {q['auc']:.4f} | {q['delta_auc']:+.4f} | {q['max_abs_score_diff']:g} "
            f"| {q['mean_abs_score_diff']:g} |"
        )
    if not record["models"]["base"].get("trained", False):
        lines += ["", "The `base` weights are untrained (no checkpoint): these deltas test the path, not the model."]
    return [*lines, ""]


def _spec_cell(point: dict[str, Any]) -> str:
    if "skipped" in point or "error" in point:
        return "skipped" if "skipped" in point else "error"
    return f"{_millions(point['rows_per_second'])} ({point['median_ms']:g} ms)"


def _spec_quality(q: dict[str, Any]) -> str:
    if "delta_auc" not in q:
        return f"{q['ndcg@10']:.4f} | | {q['auc']:.4f} | | | "
    return (
        f"{q['ndcg@10']:.4f} | {q['delta_ndcg@10']:+.4f} | {q['auc']:.4f} | {q['delta_auc']:+.4f} "
        f"| {q['max_abs_score_diff']:g} | {q['mean_abs_score_diff']:g}"
    )


def _spec(record: dict[str, Any]) -> list[str]:
    stage = record.get("spec")
    if not stage:
        return []
    if "error" in stage:
        return ["## A team's model (spec)", "", f"**The spec stage failed**: `{stage['error'][:400]}`", ""]
    model, entries = stage["model"], stage["precisions"]
    sizes: list[dict[str, Any]] = next((e["points"] for e in entries if "points" in e), [])
    lines = [
        f"## A team's model: `{model['name']}` ({model['source']}, {model['parameters']:,} parameters), eager",
        "",
        f"Rows/s (median latency per call), B rows drawn from its {model['evaluation_rows']:,} evaluation rows; "
        f"quality on all of them ({model['evaluation_queries']:,} queries) by the spec's metrics, deltas against FP32.",
        "",
        "| setting | "
        + " | ".join(f"B={p['rows']:,}" for p in sizes)
        + " | NDCG@10 | delta | AUC | delta | max abs score diff | mean abs score diff |",
        "|---|" + "---|" * (len(sizes) + 6),
    ]
    for entry in entries:
        if "error" in entry:
            lines.append(f"| {entry['label']} | error: `{entry['error'][:160]}` |")
            continue
        cells = " | ".join(_spec_cell(p) for p in entry["points"])
        lines.append(f"| {entry['label']} | {cells} | {_spec_quality(entry['quality'])} |")
    errors = [(e["label"], p) for e in entries for p in e.get("points", []) if "error" in p]
    for label, point in errors[:6]:
        lines.append(f"\n{label}, B={point['rows']}: `{point['error'][:200]}`")
    return [*lines, ""]


def _served_row(p: dict[str, Any]) -> str:
    if "skipped" in p:
        return f"| {p['concurrency']} | skipped | | | | | | | | |"
    if "error" in p or "latency_ms" not in p:
        failure = str(p.get("error", ""))[-120:].replace("\n", " ")
        return f"| {p['concurrency']} | {p.get('generator', '?')} failed: `{failure}` | | | | | | | | |"
    gpu = p["gpu"]
    busy = f"{gpu['util_pct_mean']:g} ({gpu['util_pct_max']:g})" if gpu.get("samples") else "-"
    lat = p["latency_ms"]
    generator = p["generator"] + (" (perf_analyzer failed)" if "perf_analyzer_error" in p else "")
    return (
        f"| {p['concurrency']} | {generator} | {p['requests_per_second']:,.0f} "
        f"| {_millions(p['candidates_per_second'])} | {lat['p50']} | {lat['p99']} | {p['mean_batch_users']} "
        f"| {busy} | {p['server_cpu_cores']} | {p['generator_cpu_cores']} |"
    )


def _served(record: dict[str, Any]) -> list[str]:
    served = record["served"]
    if served is None:
        return []
    if "variant" not in served:
        return ["## Served: `ranker_gpu`", "", f"**The served stage failed**: `{served['error'][:400]}`", ""]
    v = served["variant"]
    lines = [
        f"## Served: `{v['name']}` on tritonserver ({v['precision']}, "
        f"{'KIND_GPU' if v['kind_gpu'] else 'KIND_CPU'}, {v['instances']} instances, CUDA graphs "
        f"{'on' if v['cuda_graphs'] else 'off'}, up to {v['max_batch_size']} users per execution)",
        "",
        f"tritonserver {served.get('tritonserver', '?')}; exported program vs eager FP32: max abs "
        f"{served['export']['max_abs']:.3g}.",
    ]
    if "error" in served:
        return [*lines, "", f"**The server did not start**: `{served['error'][:400]}`", ""]
    parity = served["parity"]
    if "error" in parity:
        lines.append(f"Parity over gRPC **failed to run**: `{parity['error'][:300]}`.")
    else:
        lines.append(
            f"Parity over gRPC on {parity['users']} Beauty test users against {parity['reference']}: max abs "
            f"{parity['max_abs_diff']:g}, mean {parity['mean_abs_diff']:g} (tolerance {parity['tolerance']:g}: "
            f"{'passed' if parity['passed'] else 'FAILED'})."
        )
    lines += [
        "",
        "| concurrency | generator | req/s | cand/s | p50 ms | p99 ms | users per execution | GPU busy % mean (max) "
        "| server CPU cores | generator CPU cores |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *(_served_row(p) for p in served["points"]),
        "",
    ]
    best = served.get("best_within_sla")
    if best is None:
        lines.append("No measured point had a p99 within 20 ms without errors.")
    else:
        goal = "met" if best["candidates_per_second"] >= GOAL_CANDIDATES_PER_SECOND else "not met"
        gpu = best["gpu"]
        busy = f"GPU busy {gpu['util_pct_mean']:g}% (mean of nvidia-smi samples)" if gpu.get("samples") else "no GPU"
        lines.append(
            f"**Best within a 20 ms p99: {best['candidates_per_second']:,.0f} candidates/s** at concurrency "
            f"{best['concurrency']} (p99 {best['latency_ms']['p99']} ms); {busy}, server {best['server_cpu_cores']} "
            f"CPU cores, generator {best['generator_cpu_cores']} cores. Goal of 5M candidates/s for `base`: {goal}."
        )
    return [*lines, ""]


def write_markdown(record: dict[str, Any]) -> str:
    """Render the ``bench gpu`` record."""
    lines = [
        *markdown_header(
            f"GPU bench: the ranker per precision in process and served as ranker_gpu ({record['device']['device']})",
            record,
        ),
        _device_line(record["device"]),
        "",
        *_models(record),
        "",
        *_in_process(record),
        *_quality(record),
        *_served(record),
        *_spec(record),
        f"Elapsed: {record.get('elapsed_s', 0):g} s (stages done at, s: "
        + ", ".join(f"{k} {v:g}" for k, v in record.get("stages_done_at_s", {}).items())
        + ").",
        "",
    ]
    return "\n".join(lines)
