"""The selection report: ``select.json``, ``select.md``, two Pareto plots and ``select.html`` (one self-contained page).

Every figure is read from the record :func:`tritonrec.select.run.run_select` builds; the HTML page embeds the
plots as data URIs so it can be mailed or attached to a ticket as one file.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from tritonrec.records import Report, markdown_header, write_report
from tritonrec.spread import Spread

__all__ = ["HOW_TO_READ", "write_select_report"]

HOW_TO_READ = [
    "Each row is one way to deploy one model: a runtime, a precision and a model (the base checkpoint or a "
    "compressed one; with --spec, the spec's model or a graph of it given with --graph). Every measured row was "
    "scored on the same evaluation rows (test users; a spec's evaluation queries) by the same metrics module as "
    "`tritonrec evaluate`, and timed on the same requests (real Beauty users; the spec's own queries).",
    "Quality deltas are against the FP32 reference (the base model in PyTorch eager). The quality budget is an "
    "absolute drop: the default AUC budget (0.0008) is MLPerf's 99.9% tier for DLRM; NDCG@10 0.005.",
    "Served rows are what users get: the CPU variant (`ranker_cpu`, a spec's `<name>_cpu`) in Triton over gRPC. "
    "Their throughput is perf_analyzer's candidates/s at the best concurrency whose p99 meets the SLA, re-measured "
    "side by side in shuffled rounds (median, min-max). In-process rows time the runtime alone in its own process "
    "(one user or query per call for the p99, a batch for the throughput): they show what a runtime could give, "
    "but only served rows can be picked, because the SLA is a served latency.",
    "Two throughputs whose min-max ranges overlap are the same to this report: among the candidates tied with the "
    "fastest, the pick is the best NDCG@10, then the smallest model. That keeps the pick stable across reruns.",
    "Cost per million candidates = the machine price per hour / (candidates/s x 3600) x 10^6, at the row's "
    "throughput; set your price with --price-per-hour.",
    "A row marked 'not measured' could not run here; its reason says what it needs (a GPU, a quantized graph, a "
    "package).",
    "Peers (--navigator): Triton Model Navigator converts the same model (the checkpoint, or the spec's module) and "
    "picks a format by its own profiling speed alone. Its pick is scored here by the same metrics on the same users "
    "(or evaluation queries) and held to the same quality budget; its speed is its own in-process profiling (rows of "
    "a fixed candidate count), not a served figure, so compare its quality verdict with ours, not its candidates/s "
    "with the served rows.",
]


def _spread_text(data: dict[str, Any] | None, fmt: str = ",.0f") -> str:
    return "-" if not data else Spread.from_dict(data).text(fmt)


def _num(value: Any, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _delta(row: dict[str, Any], key: str) -> str:
    d = row["delta"].get(key)
    return "" if d is None else f" ({d:+.4f})"


def _verdict(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def _table(record: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    head = ["candidate", "where", "NDCG@10 (delta)", "AUC (delta)", "HR@10", "logloss", "p99 ms", "cand/s"]
    head += ["MiB file", "peak RSS MiB", "load s", "$ / M cand", "SLA", "quality", "reason"]
    rows = []
    for r in record["candidates"]:
        if not r["measured"]:
            rows.append([r["name"], "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", r["reason"]])
            continue
        rows.append(
            [
                ("**" + r["name"] + "**") if r["name"] == record["chosen"] else r["name"],
                r["where"],
                f"{r['ndcg@10']:.4f}{_delta(r, 'ndcg@10')}",
                f"{r['auc']:.4f}{_delta(r, 'auc')}",
                f"{r['hr@10']:.4f}",
                f"{r['logloss']:.4f}",
                _num(r["p99_ms"], ".1f"),
                _spread_text(r["cand_per_s"]),
                f"{r['bytes'] / 2**20:.2f}",
                f"{r['peak_rss_mib']:.0f}",
                _spread_text(r["in_process"]["load_s"], ".2f"),
                _num(r["cost_per_million"], ".4f"),
                _verdict(r["meets_sla"]),
                _verdict(r["meets_quality"]),
                r["reason"] or "",
            ]
        )
    return head, rows


def _served_table(record: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    head = ["candidate", "rate req/s", "p50 ms", "p95 ms", "p99 ms", "best concurrency", "cand/s", "p99 ms there"]
    rows = []
    for r in record["candidates"]:
        s = r.get("served_figures")
        if not s:
            continue
        lat, t = s["rate_point"]["latency_ms"], s.get("throughput") or {}
        rows.append(
            [
                r["name"],
                f"{s['rate_point']['rate']:g}" + ("" if s["rate_point"]["stable"] else " (unstable)"),
                _num(lat.get("p50"), ".1f"),
                _num(lat.get("p95"), ".1f"),
                _num(lat.get("p99"), ".1f"),
                str(t.get("concurrency", "-")),
                _spread_text(t.get("candidates_per_second")),
                _spread_text(t.get("p99_ms"), ".1f"),
            ]
        )
    return head, rows


def _in_process_table(record: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    head = [
        "candidate",
        "p50 ms (1 user or query)",
        "p99 ms (1 user or query)",
        "batch cand/s",
        "warm-up s",
        "model RSS MiB",
    ]
    rows = []
    for r in record["candidates"]:
        ip = r.get("in_process")
        if not ip or not ip.get("measured"):
            continue
        rows.append(
            [
                r["name"],
                _spread_text(ip["latency_p50_ms"], ".2f"),
                _spread_text(ip["latency_p99_ms"], ".2f"),
                _spread_text(ip["batch_cand_per_s"]),
                _spread_text(ip["warmup_s"], ".3f"),
                f"{ip['model_rss_mib']:.0f}",
            ]
        )
    return head, rows


def _md_table(head: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        *("| " + " | ".join(cells) + " |" for cells in rows),
        "",
    ]


def _pick_sentence(record: dict[str, Any]) -> str:
    c = record["settings"]["constraints"]
    limits = f"p99 <= {c['p99_ms']:g} ms, AUC drop <= {c['max_auc_drop']:g}, NDCG@10 drop <= {c['max_ndcg_drop']:g}"
    if c.get("memory_mib"):
        limits += f", peak RSS <= {c['memory_mib']:g} MiB"
    row = record["chosen_row"]
    if row is None:
        return f"**No candidate meets every constraint** ({limits}); each row says why."
    return (
        f"**Pick: {row['name']}** for {limits}: {_spread_text(row['cand_per_s'])} candidates/s served, p99 "
        f"{row['p99_ms']:.1f} ms, NDCG@10 {row['ndcg@10']:.4f} ({row['delta']['ndcg@10']:+.4f}), AUC "
        f"{row['auc']:.4f} ({row['delta']['auc']:+.4f}) against the reference {record['reference']}."
    )


def _peer_lines(record: dict[str, Any]) -> list[str]:
    if not record["peers"]:
        return ["No peer tool was run (see the command's --navigator option).", ""]
    lines = []
    for peer in record["peers"]:
        lines.append(f"- **{peer['tool']}**: {peer['summary']}")
    return [*lines, ""]


def _sample_text(record: dict[str, Any]) -> str:
    """Which test users (a spec's evaluation queries) the quality figures are on, and the reference on all of them."""
    sample = record.get("quality_sample")
    if sample is None:  # records before the sample was drawn at random: the first users
        return f"on the first {record['quality_users']:,} test users"
    unit = sample.get("unit", "test users")  # a spec's model: its evaluation queries
    if sample["users"] >= sample["of"]:
        return f"on all {sample['of']:,} {unit}"
    text = f"on {sample['users']:,} of {sample['of']:,} {unit} (a random sample, seed {sample['seed']})"
    full = sample.get("reference_all_users")
    if full:
        text += (
            f"; the reference {record['reference']} on all of them: NDCG@10 {full['ndcg@10']:.4f}, "
            f"AUC {full['auc']:.4f}"
        )
    return text


def _wall_text(record: dict[str, Any]) -> str:
    wall = record.get("wall_s")  # absent from records made before it was kept
    return "" if wall is None else f" The run took {wall / 60:.1f} min."


def _markdown_parts(record: dict[str, Any]) -> tuple[list[str], str, list[str]]:
    """The report's Markdown in three parts: the header, the pick sentence, the rest."""
    measured = sum(1 for r in record["candidates"] if r["measured"])
    header = markdown_header("tritonrec select: every candidate measured the same way, and the pick", record)
    body = [
        "",
        f"{measured} of {len(record['candidates'])} candidates measured; quality {_sample_text(record)}; plots: "
        f"`select_quality.png`, `select_latency.png`.{_wall_text(record)}",
        "",
        "## All candidates",
        "",
        *_md_table(*_table(record)),
        "## Served (Triton, gRPC)",
        "",
        *_md_table(*_served_table(record)),
        "## In process",
        "",
        *_md_table(*_in_process_table(record)),
        "## Pareto frontiers",
        "",
    ]
    for group, fronts in record["pareto"].items():
        for axis, names in fronts.items():
            body.append(f"- {group.replace('_', ' ')}, {axis.replace('_', ' ')}: {', '.join(names) or '-'}")
    body += ["", "## Peers", "", *_peer_lines(record), "## How to read this report", ""]
    body += [f"- {text}" for text in HOW_TO_READ]
    return header, _pick_sentence(record), body


def markdown(record: dict[str, Any]) -> str:
    """The whole report as Markdown."""
    header, pick, body = _markdown_parts(record)
    return "\n".join([*header, pick, *body]) + "\n"


def _plot(record: dict[str, Any], path: Path, *, y_key: str, y_label: str, line: float | None, frontier: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    for group, marker, served in (("served", "o", True), ("in_process", "^", False)):
        rows = [r for r in record["candidates"] if r["measured"] and r["served"] is served and r[y_key] is not None]
        if not rows:
            continue
        ax.scatter([r["cand_per_s"]["median"] for r in rows], [r[y_key] for r in rows], marker=marker, label=group)
        for r in rows:
            ax.annotate(r["name"], (r["cand_per_s"]["median"], r[y_key]), fontsize=6, alpha=0.8)
        front = [r for r in rows if r["name"] in record["pareto"][group][frontier]]
        front.sort(key=lambda r: r["cand_per_s"]["median"])
        ax.plot([r["cand_per_s"]["median"] for r in front], [r[y_key] for r in front], "--", alpha=0.5)
    chosen = record["chosen_row"]
    if chosen is not None:
        ax.scatter([chosen["cand_per_s"]["median"]], [chosen[y_key]], s=200, facecolors="none", edgecolors="red")
    if line is not None:
        ax.axhline(line, color="red", linestyle=":", label="constraint")
    ax.set_xlabel("candidates/s (served: perf_analyzer within the SLA; in process: serving batch)")
    ax.set_ylabel(y_label)
    ax.set_xscale("log")
    ax.legend(fontsize=7)
    ax.set_title(f"{y_label} vs throughput (dashed: Pareto frontier; circled: the pick)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _quality_plot(record: dict[str, Any], path: Path) -> Path:
    ref = next((r for r in record["candidates"] if r["name"] == record["reference"]), None)
    floor = ref["ndcg@10"] - record["settings"]["constraints"]["max_ndcg_drop"] if ref else None
    return _plot(record, path, y_key="ndcg@10", y_label="NDCG@10", line=floor, frontier="quality_vs_throughput")


def _latency_plot(record: dict[str, Any], path: Path) -> Path:
    sla = record["settings"]["constraints"]["p99_ms"]
    return _plot(record, path, y_key="p99_ms", y_label="p99 ms", line=sla, frontier="latency_vs_throughput")


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def write_html(record: dict[str, Any], out: Path, plots: dict[str, Path]) -> Path:
    """One self-contained page: the report's Markdown rendered by markdown-it-py, the pick marked, the plots embedded.

    The page is the Markdown report itself (CommonMark with tables; raw HTML in it is escaped, not passed through),
    so the two never say different things.
    """
    from markdown_it import MarkdownIt

    render = MarkdownIt("commonmark", {"html": False}).enable("table")
    header, pick, body = _markdown_parts(record)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>tritonrec select</title><style>",
        "body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;font-size:12px}",
        "td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}th{background:#eee}",
        "#pick{font-size:16px;padding:8px;background:#eef7ee;border:1px solid #7a7}img{max-width:100%}",
        "</style></head><body>",
        render.render("\n".join(header)),
        f"<p id='pick' data-chosen='{html.escape(record['chosen'] or '')}'>{render.renderInline(pick)}</p>",
        "<h2>Plots</h2>",
        *(_img(path, name) for name, path in plots.items()),
        render.render("\n".join(body)),
        "</body></html>",
    ]
    out.write_text("\n".join(parts))
    return out


def write_select_report(out_dir: Path, record: dict[str, Any]) -> Report:
    """Write select.json, select.md, select_quality.png, select_latency.png and select.html into ``out_dir``."""
    plots = {
        "select_quality.png": lambda p: _quality_plot(record, p),
        "select_latency.png": lambda p: _latency_plot(record, p),
    }
    report = write_report(out_dir, "select", record, markdown(record), plots)
    write_html(record, out_dir / "select.html", {p.name: p for p in report.plots})
    return report
