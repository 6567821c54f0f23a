"""PNG plots of benchmark reports (matplotlib, headless ``Agg`` backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["plot_batching", "plot_latency_throughput"]


def plot_latency_throughput(report: dict[str, Any], path: Path) -> Path:
    """Latency (p50 solid, p99 dashed) against served requests/s for each loop, perf_analyzer as crosses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=120)
    colours = {"closed": "tab:blue", "open": "tab:orange"}
    for mode, colour in colours.items():
        points = [p for p in report.get(mode, []) if p["latency_ms"]["p50"] is not None]
        if not points:
            continue
        x = [p["requests_per_second"] for p in points]
        ax.plot(x, [p["latency_ms"]["p50"] for p in points], "o-", color=colour, label=f"{mode} loop p50")
        ax.plot(x, [p["latency_ms"]["p99"] for p in points], "s--", color=colour, label=f"{mode} loop p99")
        for p in points:
            ax.annotate(f"{p['level']:g}", (p["requests_per_second"], p["latency_ms"]["p50"]), fontsize=7)
        pa = [r for r in report.get("perf_analyzer", {}).get(mode, {}).values() if "error" not in r]
        if pa:
            ax.plot(
                [r["requests_per_second"] for r in pa],
                [r["latency_ms"]["p50"] for r in pa],
                "x",
                color=colour,
                markersize=9,
                label=f"perf_analyzer {mode} p50",
            )
    ax.set_xlabel("served requests/s")
    ax.set_ylabel("latency, ms (log)")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(f"{report['model']['name']}: latency vs throughput", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_batching(report: dict[str, Any], path: Path, *, baseline: str) -> Path:
    """Throughput of each batcher setting relative to ``baseline``, one group of bars per candidate count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = report["results"]
    names = list(next(iter(results.values())))
    fig, ax = plt.subplots(figsize=(7.5, 4.0), dpi=120)
    width = 0.8 / max(len(results), 1)
    for i, (n, by_setting) in enumerate(results.items()):
        base = by_setting[baseline]["requests_per_second"] or 1.0
        ratios = [by_setting[name]["requests_per_second"] / base for name in names]
        ax.bar([k + i * width for k in range(len(names))], ratios, width, label=f"N={n}")
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_xticks([k + width * (len(results) - 1) / 2 for k in range(len(names))], names, rotation=20, fontsize=7)
    ax.set_ylabel(f"requests/s relative to {baseline}")
    ax.set_title("Dynamic batching settings, same load", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
