"""PNG plots of benchmark reports (matplotlib, headless ``Agg`` backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["plot_batching", "plot_latency_throughput"]


def _median(summary: dict[str, Any] | None, key: str) -> float:
    """The median of ``key`` in a run summary; NaN (not drawn) when it is missing."""
    if summary is None or key not in summary:
        return float("nan")
    return float(summary[key]["median"])


def plot_latency_throughput(report: dict[str, Any], path: Path) -> Path:
    """Median latency (p50 solid, p99 dashed) against median requests/s for each loop, perf_analyzer as crosses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=120)
    colours = {"closed": "tab:blue", "open": "tab:orange"}
    for mode, colour in colours.items():
        ours = [(p["level"], p["tritonrec"]["summary"]) for p in report["points"] if p["mode"] == mode]
        ours = [(level, s) for level, s in ours if s is not None and "p50_ms" in s]
        if ours:
            x = [_median(s, "requests_per_second") for _, s in ours]
            ax.plot(x, [_median(s, "p50_ms") for _, s in ours], "o-", color=colour, label=f"{mode} loop p50")
            ax.plot(x, [_median(s, "p99_ms") for _, s in ours], "s--", color=colour, label=f"{mode} loop p99")
            for (level, s), xi in zip(ours, x, strict=True):
                ax.annotate(f"{level:g}", (xi, _median(s, "p50_ms")), fontsize=7)
        pa = [p["perf_analyzer"]["summary"] for p in report["points"] if p["mode"] == mode and p["perf_analyzer"]]
        pa = [s for s in pa if s is not None and "p50_ms" in s]
        if pa:
            ax.plot(
                [_median(s, "requests_per_second") for s in pa],
                [_median(s, "p50_ms") for s in pa],
                "x",
                color=colour,
                markersize=9,
                label=f"perf_analyzer {mode} p50",
            )
    ax.set_xlabel("served requests/s (median of the runs)")
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
    """Requests/s of each batcher setting relative to ``baseline`` (headline tool), median with min-max bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = report["results"]
    names = list(next(iter(results.values())))
    fig, ax = plt.subplots(figsize=(7.5, 4.0), dpi=120)
    width = 0.8 / max(len(results), 1)
    for i, (n, by_setting) in enumerate(results.items()):
        heads = [(by_setting[name].get("vs_no_batching") or {}).get("headline") for name in names]
        ratios = [h["ratio"] if h else 0.0 for h in heads]
        low = [h["ratio"] - h["ratio_min"] if h else 0.0 for h in heads]
        high = [h["ratio_max"] - h["ratio"] if h else 0.0 for h in heads]
        xs = [k + i * width for k in range(len(names))]
        ax.bar(xs, ratios, width, yerr=[low, high], capsize=3, label=f"N={n}")
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_xticks([k + width * (len(results) - 1) / 2 for k in range(len(names))], names, rotation=20, fontsize=7)
    ax.set_ylabel(f"requests/s relative to {baseline}")
    ax.set_title("Dynamic batching settings, same load (median, min-max over repeats)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
