"""The Markdown and the plot of a ``tritonrec bench model-analyzer`` record (every figure from the record)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tritonrec.records import markdown_header

__all__ = ["plot", "write_markdown"]


def _setup_lines(record: dict[str, Any]) -> list[str]:
    ma = record["model_analyzer"]
    s = record["settings"]
    pa = s["perf_analyzer"]
    lines = [
        f"Model Analyzer {ma.get('version') or '(version unknown)'} (`{ma.get('binary')}`), local launch mode: it "
        "started the bundled tritonserver itself for each configuration and measured it with our perf_analyzer.",
        "",
        f"- search (brute): instances {s['min_instances']}-{s['max_instances']}, max_batch_size "
        f"{s['min_batch_size']}-{s['max_batch_size']} (doubling), dynamic batching on, concurrency "
        f"{s['min_concurrency']}-{s['max_concurrency']} (doubling); objective throughput, constraint p99 <= "
        f"{record['p99_target_ms']:g} ms",
        *_traffic_lines(record),
        f"- perf_analyzer: time windows of {pa['measurement_ms']} ms, stable within {pa['stability_pct']}%",
    ]
    if ma.get("config_file"):
        lines.append(f"- its config: `{ma['config_file']}`; its full log: `{ma['log']}`")
    base = record.get("base_config")
    if base and base.get("preferred_batch_sizes_removed") and record.get("spec") is None:
        lines.append(
            "- it started from the shipped ranker_cpu less its preferred batch sizes: its search keeps the base "
            "config's `preferred_batch_size`, so with the shipped 16/32/64 every max_batch_size below 64 is "
            "illegal to it and its walk ends at the first one (`--keep-preferred` shows it)"
        )
    return [*lines, ""]


def _traffic_lines(record: dict[str, Any]) -> list[str]:
    traffic, requests = record.get("traffic"), record["settings"]["requests"]
    mean = f", {record['mean_candidates']:g} candidates on average" if "mean_candidates" in record else ""
    if not traffic:
        return []
    if record.get("spec"):
        rows = traffic["rows_per_request"]
        return [
            f"- traffic: {traffic['source']}, {requests} distinct requests drawn with query skew "
            f"{traffic['query_skew']:g}, rows per request: {rows}{mean}"
        ]
    candidates = traffic["candidates"]
    return [
        f"- traffic: {traffic['source']} users, {candidates['low']}-{candidates['high']} candidates "
        f"({candidates['distribution']}), {requests} distinct requests{mean}"
    ]


def _failure_lines(failure: dict[str, Any]) -> list[str]:
    lines = [
        f"**Model Analyzer failed at step `{failure['step']}`**: {failure['reason']}",
        "",
    ]
    if failure.get("command"):
        lines += [f"Command: `{failure['command']}`  "]
    if failure.get("exit_code") is not None:
        lines += [f"Exit code: {failure['exit_code']}  "]
    if failure.get("log_tail"):
        lines += [f"Last lines of `{failure['log']}`:", "", "```", failure["log_tail"], "```"]
    return [*lines, ""]


def _best_lines(record: dict[str, Any]) -> list[str]:
    best, default = record.get("best"), record.get("default")
    if best is None:
        return [f"No configuration Model Analyzer measured met p99 <= {record['p99_target_ms']:g} ms.", ""]
    lines = [
        f"Its best within the target: **{best['config']['name']}** ({best['config_label']}) at concurrency "
        f"{best['concurrency']}: {best['requests_per_second']:,.1f} req/s, {best['candidates_per_second']:,.0f} "
        f"candidates/s, p99 {best['p99_ms']:g} ms.",
    ]
    if default is not None:
        gain = record.get("gain_over_default")
        lines.append(
            f"Its default (the configuration it started from) at its best: {default['requests_per_second']:,.1f} "
            f"req/s, {default['candidates_per_second']:,.0f} candidates/s at concurrency {default['concurrency']}"
            + (f"; best / default {gain:.2f}x (one measurement each)." if gain else ".")
        )
    else:
        lines.append("Its default (the configuration it started from) met the target at no concurrency it measured.")
    lines += [
        "",
        "`tritonrec bench tune --model-analyzer <this folder>` measures it side by side with the shipped and the "
        "tuned configurations (same requests, same p99 target, repeated rounds with their spread).",
        "",
    ]
    if best.get("config_pbtxt"):
        lines += [
            f"Its `config.pbtxt` (`{best['config_pbtxt_path']}`):",
            "",
            "```",
            best["config_pbtxt"].rstrip(),
            "```",
        ]
    return [*lines, ""]


def _table_lines(record: dict[str, Any]) -> list[str]:
    rows = record.get("measured") or []
    if not rows:
        return []
    configs = record.get("configs", {})
    lines = [
        "Every measurement, in Model Analyzer's order (its ranking of configurations, best first):",
        "",
        "| configuration | instances | max batch | batcher | concurrency | req/s | cand/s | p99 ms | within target |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        c = configs.get(r["config"], {})
        pref = "/".join(str(b) for b in c.get("preferred_batch_sizes", [])) or "none"
        batcher = (
            f"pref {pref}, delay {c.get('max_queue_delay_us', 0) / 1000:g} ms" if c.get("dynamic_batching") else "off"
        )
        lines.append(
            f"| {r['config']} | {c.get('instances', '?')} | {r['max_batch_size']} | {batcher} | {r['concurrency']} "
            f"| {r['requests_per_second']:,.1f} | {r['candidates_per_second']:,.0f} | {r['p99_ms']:g} "
            f"| {'yes' if r['satisfies_constraints'] else 'no'} |"
        )
    return [*lines, ""]


def write_markdown(record: dict[str, Any]) -> str:
    """Render the record: setup, failure (if any), Model Analyzer's best and every measurement."""
    model, target = record.get("model", "ranker_cpu"), record["p99_target_ms"]
    lines = [
        *markdown_header(f"NVIDIA Triton Model Analyzer on {model}: its best within p99 {target:g} ms", record),
        *_setup_lines(record),
    ]
    if record.get("failure"):
        lines += _failure_lines(record["failure"])
    else:
        lines += _best_lines(record)
    lines += _table_lines(record)
    return "\n".join(lines)


def plot(record: dict[str, Any], path: Path) -> Path:
    """p99 against candidates/s, one line per configuration (points = concurrencies), the target dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=120)
    by_config: dict[str, list[dict[str, Any]]] = {}
    for r in record["measured"]:
        by_config.setdefault(r["config"], []).append(r)
    best = (record.get("best") or {}).get("config", {}).get("name")
    for name, rows in by_config.items():
        rows = sorted(rows, key=lambda r: r["concurrency"])
        style = {"color": "black", "linewidth": 2} if name == best else {"alpha": 0.5}
        label = f"{name} ({rows[0]['config_label']})" + (" best" if name == best else "")
        ax.plot([r["candidates_per_second"] for r in rows], [r["p99_ms"] for r in rows], "o-", label=label, **style)
    ax.axhline(record["p99_target_ms"], color="red", linestyle="--", label="p99 target")
    ax.set_xlabel("candidates/s (perf_analyzer, through Model Analyzer)")
    ax.set_ylabel("p99 ms")
    ax.set_title("Model Analyzer's measurements (one line per configuration, points = concurrencies)", fontsize=9)
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
