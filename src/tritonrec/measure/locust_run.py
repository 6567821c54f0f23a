"""``tritonrec bench locust``: one headless locust run of a scenario, recorded like every other benchmark.

Runs ``locust -f bench/locustfile.py --headless`` (optionally ``--processes N``: a master and N worker processes)
as a child process, keeps locust's own CSV and HTML, and writes ``locust.json`` + ``locust.md`` with the
aggregated figures, the SLA verdict (locust's exit code: 0 met, 1 missed) and the CPU the locust processes used.
Requests per locust CPU-second is what one worker process could sustain with a core of its own: on a machine
where the server shares the cores, the measured requests/s says more about the server than the generator.
"""

from __future__ import annotations

import csv
import re
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tritonrec.measure.scenario import load_scenario
from tritonrec.records import Report, markdown_header, new_record, write_report

__all__ = ["LOCUSTFILE", "run_locust"]

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _aggregated(csv_prefix: Path) -> dict[str, Any]:
    rows = list(csv.DictReader(Path(f"{csv_prefix}_stats.csv").open()))
    total = next(r for r in rows if r["Name"] == "Aggregated")
    return {
        "requests": int(total["Request Count"]),
        "failures": int(total["Failure Count"]),
        "requests_per_second": round(float(total["Requests/s"]), 1),
        "latency_ms": {p: float(total[f"{p[1:]}%"]) for p in ("p50", "p90", "p95", "p99")},
        "mean_candidates": round(float(total["Average Content Size"]), 1),
    }


def _accounting(log: str) -> dict[str, int]:
    """Requests the users started and reported, summed over the locust processes (from their log lines)."""
    found = re.findall(r"tritonrec accounting: issued=(\d+) reported=(\d+) failed=(\d+) abandoned=(\d+)", log)
    if not found:
        return {}
    keys = ("issued", "ended", "failed_explicitly", "abandoned_at_stop")
    return {key: sum(int(row[i]) for row in found) for i, key in enumerate(keys)}


def _failures(csv_prefix: Path) -> dict[str, int]:
    path = Path(f"{csv_prefix}_failures.csv")
    if not path.exists():
        return {}
    return {row["Error"][:200]: int(row["Occurrences"]) for row in csv.DictReader(path.open())}


def run_locust(
    url: str,
    scenario: Path,
    out_dir: Path,
    *,
    processes: int = 0,
    command: str,
    locustfile: Path = LOCUSTFILE,
    timeout_s: float = 1800,
) -> Report:
    """Run ``scenario`` headless against ``url``; write locust's CSV/HTML and locust.json/.md into ``out_dir``."""
    parsed = load_scenario(scenario)  # a bad file fails here, with the key named, before locust starts
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = out_dir / "locust"
    cmd = [
        sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--host", url,
        "--scenario", str(scenario), "--csv", str(prefix), "--html", str(out_dir / "locust.html"), "--only-summary",
        # at the end of the run, users finish their request in flight (it is reported) instead of being killed
        "--stop-timeout", "30",
    ]  # fmt: skip
    if processes:
        cmd += ["--processes", str(processes)]
    cpu_before, started = _children_cpu_s(), time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    wall_s, cpu_s = time.perf_counter() - started, _children_cpu_s() - cpu_before
    (out_dir / "locust.log").write_text(done.stdout + done.stderr)
    verdict = [line.split(": ", 1)[-1] for line in done.stderr.splitlines() if "SLA m" in line]
    figures = _aggregated(prefix) if Path(f"{prefix}_stats.csv").exists() else {}
    figures.update(_accounting(done.stdout + done.stderr), failure_messages=_failures(prefix))
    report: dict[str, Any] = {
        **new_record(command),
        "url": url,
        "scenario": parsed.to_dict(),
        "processes": processes,
        "exit_code": done.returncode,
        "sla_verdict": verdict[-1] if verdict else None,
        "wall_s": round(wall_s, 1),
        "locust_cpu_s": round(cpu_s, 1),
        **figures,
    }
    if figures.get("requests"):
        report["requests_per_locust_cpu_second"] = round(figures["requests"] / max(cpu_s, 1e-9), 1)
        report["requests_per_second_per_worker"] = round(figures["requests_per_second"] / max(processes, 1), 1)
    return write_report(out_dir, "locust", report, write_markdown(report))


def write_markdown(report: dict[str, Any]) -> str:
    """Render one locust run (every figure from ``report``)."""
    s = report["scenario"]
    workers = f"{report['processes']} worker processes" if report["processes"] else "one process"
    lines = markdown_header(f"Locust: scenario {s['name']} ({s['shape']['kind']}), {workers}", report)
    if not report.get("requests"):
        return "\n".join([*lines, f"No request completed; exit code {report['exit_code']}. See locust.log.", ""])
    lat = report["latency_ms"]
    lines += [
        "| requests | failures | req/s | req/s per worker | p50 ms | p95 ms | p99 ms | mean candidates "
        "| locust CPU s | requests per locust CPU-second | exit code |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        f"| {report['requests']:,} | {report['failures']:,} | {report['requests_per_second']:,} "
        f"| {report['requests_per_second_per_worker']:,} | {lat['p50']:g} | {lat['p95']:g} | {lat['p99']:g} "
        f"| {report['mean_candidates']} | {report['locust_cpu_s']} | {report['requests_per_locust_cpu_second']:,} "
        f"| {report['exit_code']} |",
        "",
        f"SLA (p99 <= {s['sla']['p99_ms']:g} ms, errors <= {s['sla']['max_error_rate']:.2%}): "
        f"{report['sla_verdict'] or 'no verdict logged'}",
        "",
    ]
    return "\n".join(lines)
