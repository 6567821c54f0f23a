"""The benchmark instruments against the real tritonserver: sweep, batching, efficiency, perf_analyzer, locust.

Figures are never asserted (these are noisy shared machines); what is asserted is that each instrument measures
what it says: requests counted, Triton's own statistics read over the same span, batching off means one user
per execution, the SLA exit code follows the SLA, distributed locust aggregates its workers.
"""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tritonrec.bench.batching import BatchingSettings, run_batching_bench
from tritonrec.bench.efficiency import EfficiencySettings, run_efficiency_bench
from tritonrec.bench.endpoint import local_endpoint
from tritonrec.bench.loadgen import PointSettings
from tritonrec.bench.sweep import SweepSettings, run_sweep
from tritonrec.bench.traffic import CandidateCounts, TrafficSpec
from tritonrec.cli import main

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
QUICK = PointSettings(warmup_s=0.5, window_s=1.0, stable_windows=2, max_windows=3, stability_pct=50)
TRAFFIC = TrafficSpec(candidates=CandidateCounts(low=20, high=60))


@pytest.fixture(scope="module")
def endpoint(export_dir):
    with local_endpoint(export_dir) as server:
        yield server


def test_sweep_measures_both_loops_with_the_server_breakdown(endpoint, tmp_path):
    settings = SweepSettings(concurrencies=(1, 4), rates=(20.0,), requests=64, point=QUICK)
    report = run_sweep(endpoint.grpc_url, TRAFFIC, settings, tmp_path, command="test").record
    assert [p["level"] for p in report["closed"]] == [1, 4] and report["open"][0]["level"] == 20
    for point in report["closed"] + report["open"]:
        assert point["errors"] == 0 and point["ok"] > 0
        assert point["latency_ms"]["p50"] <= point["latency_ms"]["p99"]
        assert 20 <= point["mean_candidates"] <= 60
        assert point["candidates_per_second"] > point["requests_per_second"]
        server = point["server"]
        assert server["successes"] > 0 and server["compute_infer_ms"] > 0
    assert report["closed"][0]["server"]["mean_batch_users"] == pytest.approx(1.0, abs=0.05)  # one in flight
    for name in ("sweep.json", "sweep.md", "sweep.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert json.loads((tmp_path / "sweep.json").read_text())["traffic"]["source"] == "beauty"
    assert "| 4 |" in (tmp_path / "sweep.md").read_text()


def test_bench_sweep_cli_against_a_running_endpoint(endpoint, tmp_path):
    argv = ["bench", "sweep", "--url", endpoint.grpc_url, "--out", str(tmp_path), "--concurrency", "2"]
    argv += ["--requests", "32", "--candidates", "8", "--warmup-s", "0.5", "--window-s", "1", "--max-windows", "2"]
    assert main(argv) == 0
    report = json.loads((tmp_path / "sweep.json").read_text())
    assert report["traffic"]["candidates"] == {"low": 8, "high": 8, "distribution": "fixed"}
    assert report["closed"][0]["ok"] > 0


def test_sweep_cli_rejects_bad_flags(endpoint, tmp_path, capsys):
    assert main(["bench", "sweep", "--url", endpoint.grpc_url, "--out", str(tmp_path), "--candidates", "x"]) == 1
    assert "ConfigError: --candidates must be N or LOW-HIGH" in capsys.readouterr().err
    assert main(["bench", "sweep", "--url", endpoint.grpc_url, "--out", str(tmp_path), "--model", "nope"]) == 1
    assert "nope" in capsys.readouterr().err


def test_perf_analyzer_runs_beside_the_sweep_on_the_same_requests(endpoint, tmp_path, perf_analyzer):
    # the plumbing is under test, not the figures: accept any spread between perf_analyzer's windows
    settings = SweepSettings(
        concurrencies=(4,), requests=64, point=QUICK, perf_analyzer_ms=1000, perf_analyzer_stability_pct=100_000
    )
    report = run_sweep(
        endpoint.grpc_url, TRAFFIC, settings, tmp_path, command="test", perf_analyzer=perf_analyzer
    ).record
    pa = report["perf_analyzer"]["closed"]["4"]
    assert "error" not in pa, pa.get("error")
    assert pa["requests_per_second"] > 0 and pa["server"]["compute_infer_ms"] > 0
    assert "--input-data <input.json>" in pa["command"]
    assert "ours / perf_analyzer" in (tmp_path / "sweep.md").read_text()


def test_batching_off_runs_one_user_per_execution(export_dir, tmp_path, perf_analyzer):
    settings = BatchingSettings(
        candidate_counts=(8,),
        concurrency=8,
        requests=64,
        settings=("no_batching", "dynamic"),
        point=QUICK,
        perf_analyzer_ms=1000,
        perf_analyzer_stability_pct=100_000,
    )
    report = run_batching_bench(export_dir, tmp_path, settings, command="test", perf_analyzer=perf_analyzer).record
    points = report["results"]["8"]
    assert points["no_batching"]["server"]["mean_batch_users"] == 1.0
    assert points["dynamic"]["server"]["mean_batch_users"] > 1.0  # 8 in flight: the batcher stacks them
    assert all(p["errors"] == 0 for p in points.values())
    assert all(p["perf_analyzer"]["requests_per_second"] > 0 for p in points.values())
    assert (tmp_path / "batching.png").stat().st_size > 0
    assert "vs no batching" in (tmp_path / "batching.md").read_text()


def test_efficiency_compares_at_the_batch_triton_formed(export_dir, tmp_path):
    settings = EfficiencySettings(n_candidates=50, concurrencies=(2, 8), requests=128, in_process_s=1.0, point=QUICK)
    report = run_efficiency_bench(export_dir, tmp_path, settings, command="test").record
    batch = report["best"]["batch_users"]
    assert str(batch) in report["in_process"] and "1" in report["in_process"]
    assert report["in_process"][str(batch)]["session_runs"] > 0
    assert report["efficiency"] > 0
    assert "Serving efficiency" in (tmp_path / "efficiency.md").read_text()


def _scenario(tmp_path, *, p99_ms, users=4, duration_s=6, n=8):
    path = tmp_path / f"sla-{p99_ms}.toml"
    path.write_text(
        f'name = "test"\nmodel = "ranker_cpu"\n[traffic]\n'
        f'candidates = {{ low = {n}, high = {n}, distribution = "fixed" }}\n'
        f'[shape]\nkind = "constant"\nusers = {users}\nduration_s = {duration_s}\nspawn_rate = 50\n'
        f"[sla]\np99_ms = {p99_ms}\nmax_error_rate = 0.0\n"
    )
    return path


def _locust(endpoint, scenario, out, *extra):
    cmd = [
        sys.executable, "-m", "locust", "-f", str(ROOT / "bench" / "locustfile.py"), "--headless",
        "--host", endpoint.grpc_url, "--scenario", str(scenario), "--csv", str(out), "--only-summary", *extra,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env, cwd=ROOT)


def _totals(csv_prefix):
    rows = list(csv.DictReader(Path(f"{csv_prefix}_stats.csv").open()))
    return next(r for r in rows if r["Name"] == "Aggregated"), rows


def test_locust_run_that_meets_its_sla_exits_zero(endpoint, tmp_path):
    done = _locust(endpoint, _scenario(tmp_path, p99_ms=60_000), tmp_path / "ok")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "SLA met" in done.stderr
    total, rows = _totals(tmp_path / "ok")
    assert int(total["Request Count"]) > 0 and int(total["Failure Count"]) == 0
    assert any(r["Type"] == "grpc" and r["Name"] == "ranker_cpu" for r in rows)


def test_locust_run_that_misses_its_sla_exits_non_zero(endpoint, tmp_path):
    done = _locust(endpoint, _scenario(tmp_path, p99_ms=0.001, duration_s=4), tmp_path / "miss")
    assert done.returncode == 1
    assert "SLA missed" in done.stderr and "> SLA 0.001 ms" in done.stderr


def test_bench_locust_runs_two_workers_and_records_the_run(endpoint, tmp_path):
    scenario = _scenario(tmp_path, p99_ms=60_000, users=8, duration_s=8)
    argv = ["bench", "locust", "--url", endpoint.grpc_url, "--scenario", str(scenario), "--processes", "2"]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 0
    report = json.loads((tmp_path / "run" / "locust.json").read_text())
    assert report["exit_code"] == 0 and report["sla_verdict"].startswith("SLA met")
    assert report["requests"] > 0 and report["failures"] == 0 and report["mean_candidates"] == 8.0
    assert report["locust_cpu_s"] > 0 and report["requests_per_locust_cpu_second"] > 0
    assert "2 worker processes" in (tmp_path / "run" / "locust.md").read_text()
    assert (tmp_path / "run" / "locust.html").stat().st_size > 0
    log = (tmp_path / "run" / "locust.log").read_text()
    assert log.count("Worker") + log.count("worker") >= 2  # the master saw its workers


def test_locust_rejects_a_bad_scenario_clearly(endpoint, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[shape]\nkind = "wave"\n')
    done = _locust(endpoint, bad, tmp_path / "bad")
    assert done.returncode != 0
    assert "shape.kind must be one of" in done.stderr
