"""Reports of HPA simulations (``tritonrec.bench.capacity.autoscaling``): JSON record, Markdown table, PNG plot.

``write_hpa_comparison`` runs several HPA settings over the same traffic and writes ``hpa-simulation.json``,
``hpa-simulation.md`` and ``hpa-simulation.png`` into one results folder. Nothing is measured here: the inputs
are the bench's recorded capacity curve, the chart's autoscaling values and a traffic ramp, all recorded in the
JSON with the command.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tritonrec.bench.capacity.autoscaling import (
    CapacityCurve,
    HpaConfig,
    PodModel,
    SimulationResult,
    Summary,
    TrafficRamp,
    simulate,
    summarize,
)
from tritonrec.records import markdown_header, new_record, write_report

__all__ = ["comparison_markdown", "comparison_report", "plot_comparison", "summary_dict", "write_hpa_comparison"]


def _hpa_record(hpa: HpaConfig) -> dict[str, Any]:
    return {
        "min_replicas": hpa.min_replicas,
        "max_replicas": hpa.max_replicas,
        "metrics": [{"metric": m.kind.value, "target": m.target} for m in hpa.metrics],
        "tolerance": hpa.tolerance,
        "sync_period_s": hpa.sync_period_s,
        "behavior": {
            direction: {
                "stabilization_window_s": rules.stabilization_window_s,
                "select_policy": rules.select_policy.value,
                "policies": [{"type": p.kind.value, "value": p.value, "period_s": p.period_s} for p in rules.policies],
            }
            for direction, rules in (("scale_up", hpa.behavior.scale_up), ("scale_down", hpa.behavior.scale_down))
        },
    }


def comparison_report(
    runs: Mapping[str, SimulationResult],
    *,
    curve: CapacityCurve,
    traffic: TrafficRamp,
    pods: PodModel,
    windows: Sequence[tuple[int, int]],
    command: str,
) -> dict[str, Any]:
    """A JSON-ready record of several runs of the same traffic: settings, summaries per steady window, timelines."""
    return {
        **new_record(command),
        "capacity_curve": {"source": curve.source, "max_rps": curve.max_rps, "points": [list(p) for p in curve.points]},
        "traffic": [list(p) for p in traffic.points],
        "pods": {"startup_s": pods.startup_s, "max_queue": pods.max_queue, "metric_window_s": pods.metric_window_s},
        "runs": {
            name: {
                "hpa": _hpa_record(result.hpa),
                "summary": [summary_dict(summarize(result, window_from_s=a, window_to_s=b)) for a, b in windows],
                "timeline": {
                    "t_s": [s.t_s for s in result.samples],
                    "offered_rps": [round(s.offered_rps, 1) for s in result.samples],
                    "replicas": [s.replicas for s in result.samples],
                    "ready": [s.ready for s in result.samples],
                    "queue_ms": [round(s.queue_ms, 2) for s in result.samples],
                    "rejected_rps": [round(s.rejected_rps, 1) for s in result.samples],
                },
            }
            for name, result in runs.items()
        },
    }


def summary_dict(summary: Summary) -> dict[str, Any]:
    """A Summary as a dict (slotted dataclasses have no ``__dict__``)."""
    return {name: getattr(summary, name) for name in Summary.__dataclass_fields__}


def comparison_markdown(report: Mapping[str, Any], *, every_s: int = 600) -> str:
    """Markdown of a comparison record: summary per run and window, then replicas over time side by side."""
    names = list(report["runs"])
    lines = [
        *markdown_header("HPA simulation: replicas over a traffic ramp, per autoscaling metric", report),
        f"Capacity curve: {report['capacity_curve']['source']} (one pod: {report['capacity_curve']['max_rps']:g} req/s"
        f" at most); pods serve {report['pods']['startup_s']} s after creation, queue {report['pods']['max_queue']}.",
        "",
        "| run | metrics (targets) | window (min) | scale events in window | replicas in window | scale events "
        "(all) | reversals | rejected | mean queue ms | replica-hours |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        run = report["runs"][name]
        metrics = ", ".join(f"{m['metric']} ({m['target']:g})" for m in run["hpa"]["metrics"])
        for s in run["summary"]:
            span = f"{s['window_from_s'] // 60}-{s['window_to_s'] // 60}"
            replicas = f"{s['window_replicas_min']}-{s['window_replicas_max']}"
            lines.append(
                f"| {name} | {metrics} | {span} | {s['window_scale_events']} | {replicas} | {s['scale_events']} | "
                f"{s['reversals']} | {s['rejected_fraction']:.2%} | {s['mean_queue_ms']:.1f} | "
                f"{s['replica_hours']:.1f} |"
            )
    header = "| minute | offered req/s | " + " | ".join(f"{n}: replicas (ready) | {n}: queue ms" for n in names) + " |"
    lines += [
        "",
        "Replicas over time: the count after the HPA's decision at that minute, and in brackets the pods that served "
        "during it (new pods serve once started); queue ms = Triton's queue time per request at that second.",
        "",
        header,
        "|---|---|" + "---|---|" * len(names),
    ]
    first = report["runs"][names[0]]["timeline"]
    for i, t in enumerate(first["t_s"]):
        if t % every_s:
            continue
        cells = []
        for name in names:
            tl = report["runs"][name]["timeline"]
            cells += [f"{tl['replicas'][i]} ({tl['ready'][i]})", f"{tl['queue_ms'][i]:.1f}"]
        lines.append(f"| {t // 60} | {first['offered_rps'][i]:.0f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_comparison(report: Mapping[str, Any], path: Path) -> Path:
    """PNG: offered traffic, replicas and queue time over time, one line per run (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (traffic_ax, replicas_ax, queue_ax) = plt.subplots(3, 1, figsize=(8, 7.5), dpi=110, sharex=True)
    colours = ("tab:red", "tab:blue", "tab:green", "tab:purple")
    capacity = float(report["capacity_curve"]["max_rps"])
    for colour, (name, run) in zip(colours, report["runs"].items(), strict=False):
        tl = run["timeline"]
        minutes = [t / 60 for t in tl["t_s"]]
        replicas_ax.step(minutes, tl["replicas"], where="post", color=colour, label=f"{name}: replicas")
        traffic_ax.plot(minutes, [r * capacity for r in tl["ready"]], color=colour, lw=1, label=f"{name}: capacity")
        queue_ax.plot(minutes, [max(q, 0.1) for q in tl["queue_ms"]], color=colour, lw=1, label=name)
        if colour == colours[0]:
            traffic_ax.plot(minutes, tl["offered_rps"], color="black", lw=2, label="offered req/s")
    traffic_ax.set_ylabel("req/s")
    traffic_ax.legend(fontsize=7)
    replicas_ax.set_ylabel("replicas")
    replicas_ax.legend(fontsize=7)
    queue_ax.set_ylabel("queue ms / request (log)")
    queue_ax.set_yscale("log")
    queue_ax.set_xlabel("minutes")
    queue_ax.legend(fontsize=7)
    for ax in (traffic_ax, replicas_ax, queue_ax):
        ax.grid(True, alpha=0.3)
    traffic_ax.set_title("HPA on queue time alone vs inferences/s per pod with the queue-time guard", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_hpa_comparison(
    out_dir: Path,
    hpas: Mapping[str, HpaConfig],
    *,
    curve: CapacityCurve,
    traffic: TrafficRamp,
    pods: PodModel,
    windows: Sequence[tuple[int, int]],
    command: str,
) -> dict[str, Any]:
    """Simulate each HPA setting on the same traffic; write JSON, Markdown and PNG into ``out_dir``.

    Args:
        out_dir: the results folder (created).
        hpas: the settings to compare, by name (the first is drawn first).
        curve: one pod's measured capacity curve.
        traffic: offered requests/s over time.
        pods: startup time, queue bound and metric window.
        windows: ``(from_s, to_s)`` spans of steady traffic the summaries cover.
        command: how the run was started (recorded).

    Returns:
        The JSON record.
    """
    runs: dict[str, SimulationResult] = {name: simulate(curve, traffic, hpa, pods) for name, hpa in hpas.items()}
    report = comparison_report(runs, curve=curve, traffic=traffic, pods=pods, windows=windows, command=command)
    plots = {"hpa-simulation.png": lambda path: plot_comparison(report, path)}
    write_report(out_dir, "hpa-simulation", report, comparison_markdown(report), plots)
    return report
