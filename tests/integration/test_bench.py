"""The benchmark instruments against the real tritonserver: sweep, batching, efficiency, perf_analyzer, locust.

Figures are never asserted (these are noisy shared machines); what is asserted is that each instrument measures
what it says: requests counted, Triton's own statistics read over the same span, batching off means one user
per execution, the SLA exit code follows the SLA, distributed locust aggregates its workers.
"""

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tritonrec.bench.serving.batching import BatchingSettings, run_batching_bench
from tritonrec.bench.serving.efficiency import EfficiencySettings, run_efficiency_bench
from tritonrec.bench.serving.sweep import SweepSettings, run_sweep
from tritonrec.cli import main
from tritonrec.client import ModelLimits
from tritonrec.measure.loadgen import LoadMode, PointSettings, measure_point, prepare_requests
from tritonrec.measure.points import PaSettings, Target
from tritonrec.measure.traffic import CandidateCounts, TrafficSpec, load_user_pool
from tritonrec.serving.endpoint import local_endpoint

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
QUICK = PointSettings(warmup_s=0.5, window_s=1.0, stable_windows=2, max_windows=3, stability_pct=50)
TRAFFIC = TrafficSpec(candidates=CandidateCounts(low=20, high=60))


@pytest.fixture(scope="module")
def endpoint(export_dir):
    with local_endpoint(export_dir) as server:
        yield server


def test_sweep_measures_both_loops_with_the_server_breakdown(endpoint, tmp_path):
    settings = SweepSettings(concurrencies=(1, 4), rates=(20.0,), requests=64, repeats=2, point=QUICK)
    target = Target.at(endpoint.grpc_url, metrics_url=endpoint.metrics_url)
    report = run_sweep(target, TRAFFIC, settings, tmp_path, command="test").record
    assert [(p["mode"], p["level"]) for p in report["points"]] == [("closed", 1), ("closed", 4), ("open", 20)]
    for point in report["points"]:
        runs = point["tritonrec"]["runs"]
        assert sorted(r["repeat"] for r in runs) == [0, 1]
        for run in runs:
            assert run["errors"] == 0 and run["ok"] > 0
            assert (
                run["latency_ms"]["p50"]
                <= run["latency_ms"]["p99"]
                <= run["latency_ms"]["p99_9"]
                <= run["latency_ms"]["max"]
            )
            assert 20 <= run["mean_candidates"] <= 60 and run["candidates_per_second"] > run["requests_per_second"]
            assert run["server"]["successes"] > 0 and run["server"]["compute_infer_ms"] > 0
            # the server's two accounts of the same windows: statistics API and Prometheus metrics
            assert run["server_metrics"]["successes"] > 0 and run["server_metrics"]["compute_infer_ms"] > 0
            assert run["cpu"]["generator_s"] > 0 and run["cpu"]["server_s"] > 0
        summary = point["tritonrec"]["summary"]
        assert summary["runs"] == 2
        assert (
            summary["requests_per_second"]["min"]
            <= summary["requests_per_second"]["median"]
            <= summary["requests_per_second"]["max"]
        )
        assert point["headline_tool"] == "tritonrec" and point["perf_analyzer"] is None
    assert report["points"][0]["tritonrec"]["runs"][0]["server"]["mean_batch_users"] == pytest.approx(1.0, abs=0.05)
    open_run = report["points"][2]["tritonrec"]["runs"][0]
    assert open_run["offered_per_second"] == 20 and "latency_from_send_ms" in open_run and open_run["sender_lag_ms"]
    for name in ("sweep.json", "sweep.md", "sweep.png"):
        assert (tmp_path / name).stat().st_size > 0
    saved = json.loads((tmp_path / "sweep.json").read_text())
    assert (
        saved["traffic"]["source"] == "beauty"
        and saved["versions"]["tritonserver"]
        and saved["host"]["isa"] is not None
    )
    assert "| 4 |" in (tmp_path / "sweep.md").read_text()


def test_open_loop_latency_shows_a_server_stall_that_the_send_time_hides(endpoint):
    """Coordinated omission, for real: tritonserver is stopped (SIGSTOP) for 1 s during an open-loop run whose
    sender may keep one request in flight. Requests scheduled during the stall leave late; from their scheduled
    time they waited the stall, from their actual send they did not."""
    limits = ModelLimits(max_history=50, max_candidates=2048)
    pool = load_user_pool(TrafficSpec(candidates=CandidateCounts.fixed(8)), history_len=50)
    requests = prepare_requests(pool.sample(64), limits)
    settings = PointSettings(warmup_s=0.5, window_s=6.0, stable_windows=1, max_windows=1, max_in_flight=1)
    result = {}

    def measure():
        result["point"] = measure_point(endpoint.grpc_url, "ranker_cpu", requests, LoadMode.OPEN, 100.0, settings)

    thread = threading.Thread(target=measure)
    thread.start()
    time.sleep(2.5)  # inside the measured window (0.5 s warm-up + 6 s)
    os.kill(endpoint.pid, signal.SIGSTOP)
    try:
        time.sleep(1.0)
    finally:
        os.kill(endpoint.pid, signal.SIGCONT)
    thread.join(timeout=60)
    point = result["point"]
    assert point["errors"] == 0
    assert point["latency_ms"]["p99"] >= 600, point["latency_ms"]  # the stall, counted from the schedule
    assert point["latency_from_send_ms"]["p99"] < 300, point["latency_from_send_ms"]  # what send-time timing shows
    assert point["sender_lag_ms"]["max"] >= 600


def test_bench_sweep_cli_against_a_running_endpoint(endpoint, tmp_path):
    argv = ["bench", "sweep", "--url", endpoint.grpc_url, "--out", str(tmp_path), "--concurrency", "2"]
    argv += ["--requests", "32", "--candidates", "8", "--warmup-s", "0.5", "--window-s", "1", "--max-windows", "2"]
    assert main([*argv, "--repeats", "1", "--perf-analyzer", "none"]) == 0
    report = json.loads((tmp_path / "sweep.json").read_text())
    assert report["traffic"]["candidates"] == {"low": 8, "high": 8, "distribution": "fixed"}
    assert report["points"][0]["tritonrec"]["runs"][0]["ok"] > 0


def test_sweep_cli_rejects_bad_flags(endpoint, tmp_path, capsys):
    base = ["bench", "sweep", "--url", endpoint.grpc_url, "--out", str(tmp_path), "--perf-analyzer", "none"]
    assert main([*base, "--candidates", "x"]) == 1
    assert "ConfigError: --candidates must be N or LOW-HIGH" in capsys.readouterr().err
    assert main([*base, "--model", "nope"]) == 1
    assert "nope" in capsys.readouterr().err
    assert main([*base, "--repeats", "0"]) == 1
    assert "repeats must be >= 1" in capsys.readouterr().err


def test_perf_analyzer_runs_beside_the_sweep_on_the_same_requests(endpoint, tmp_path, perf_analyzer):
    # the plumbing is under test, not the figures: accept any spread between perf_analyzer's windows
    settings = SweepSettings(
        concurrencies=(4,),
        requests=64,
        repeats=2,
        point=QUICK,
        perf_analyzer=PaSettings(measurement_ms=1000, stability_pct=100_000),
    )
    target = Target.at(endpoint.grpc_url, metrics_url=endpoint.metrics_url, perf_analyzer=perf_analyzer)
    point = run_sweep(target, TRAFFIC, settings, tmp_path, command="test").record["points"][0]
    runs = point["perf_analyzer"]["runs"]
    assert len(runs) == 2 and all("error" not in r for r in runs), runs
    assert all(r["requests_per_second"] > 0 and r["server"]["compute_infer_ms"] > 0 for r in runs)
    assert all(r["cpu"]["perf_analyzer_s"] > 0 and r["cpu"]["server_s"] > 0 for r in runs)
    assert "--input-data <input.json>" in runs[0]["command"]
    assert point["comparison"]["ratio"] > 0 and point["generator_bound"] in (True, False)
    assert point["headline_tool"] == ("perf_analyzer" if point["generator_bound"] else "tritonrec")
    assert "ours / perf_analyzer" in (tmp_path / "sweep.md").read_text()


def test_batching_off_runs_one_user_per_execution(export_dir, tmp_path, perf_analyzer):
    settings = BatchingSettings(
        candidate_counts=(8,),
        concurrency=8,
        requests=64,
        settings=("no_batching", "dynamic", "dynamic_cancel_check"),
        repeats=2,
        point=QUICK,
        perf_analyzer=PaSettings(measurement_ms=1000, stability_pct=100_000),
    )
    report = run_batching_bench(export_dir, tmp_path, settings, command="test", perf_analyzer=perf_analyzer).record
    points = report["results"]["8"]
    checked = points["dynamic_cancel_check"]["tritonrec"]["runs"]  # model.py asking is_cancelled(), served
    assert all(r["requests_per_second"] > 0 and r["errors"] == 0 for r in checked)
    assert all(r["server"]["mean_batch_users"] == 1.0 for r in points["no_batching"]["tritonrec"]["runs"])
    assert all(r["server"]["mean_batch_users"] > 1.0 for r in points["dynamic"]["tritonrec"]["runs"])  # 8 in flight
    assert all(len(p["tritonrec"]["runs"]) == 2 and p["tritonrec"]["summary"]["runs"] == 2 for p in points.values())
    assert all(r["requests_per_second"] > 0 for p in points.values() for r in p["perf_analyzer"]["runs"])
    versus = points["dynamic"]["vs_no_batching"]
    assert {"tritonrec", "perf_analyzer", "headline", "headline_tool"} <= set(versus)
    assert versus["tritonrec"]["ratio_min"] <= versus["tritonrec"]["ratio"] <= versus["tritonrec"]["ratio_max"]
    assert points["no_batching"]["vs_no_batching"]["tritonrec"]["verdict"] == "no measurable difference"
    assert (tmp_path / "batching.png").stat().st_size > 0
    assert "vs no batching" in (tmp_path / "batching.md").read_text()


def test_efficiency_replays_the_batches_triton_formed_with_the_served_instances(export_dir, tmp_path):
    settings = EfficiencySettings(
        traffics=("8", "20-60"), concurrencies=(2, 4), repeats=2, requests=128, in_process_s=0.5, point=QUICK
    )
    report = run_efficiency_bench(export_dir, tmp_path, settings, command="test").record
    assert report["serving_shape"]["instances"] == 2  # ranker_cpu runs two instances; in process too
    for result in report["results"]:
        assert result["efficiency_min"] <= result["efficiency"] <= result["efficiency_max"]
        assert result["served_cand_per_s"] > 0 and result["in_process_cand_per_s"] > 0
        assert result["concurrency"] in (2, 4) and len(result["pairs"]) == 2
        search = {p["concurrency"]: p["candidates_per_second"] for p in result["search"]}
        assert set(search) == {2, 4} and search[result["concurrency"]] == max(search.values())  # every one measured
        assert result["best_at_largest_concurrency"] == (result["concurrency"] == 4)
        assert 0 < result["cpu_efficiency_min"] <= result["cpu_efficiency"] <= result["cpu_efficiency_max"]
        for pair in result["pairs"]:
            assert pair["batch_sizes"] and all(int(b) >= 1 for b in pair["batch_sizes"])
            assert pair["in_process"]["session_runs"] > 0 and pair["in_process"]["cpu_ms_per_1k_candidates"] > 0
            assert pair["server_cpu_ms_per_1k_candidates"] > 0
            # the whole machine accounted for: the stubs ran the model, tritonserver and our generator took some
            parts = pair["cpu_breakdown"]["ms_per_1k_candidates"]
            assert sum(parts.values()) == pytest.approx(pair["cpu_breakdown"]["machine_ms_per_1k_candidates"], rel=1e-3)
            assert parts["model"] > 0 and parts["tritonserver"] > 0 and parts["generator"] > 0
            assert parts["stubs_other"] + parts["model"] > 0
        assert set(result["cpu_breakdown_shares"]) == {
            "model",
            "stubs_other",
            "tritonserver",
            "generator",
            "idle_or_other",
        }
    assert [r["traffic"] for r in report["results"]] == [
        "beauty users, 8 candidates",
        "beauty users, 20-60 candidates (uniform)",
    ]
    markdown = (tmp_path / "efficiency.md").read_text()
    assert "Serving efficiency" in markdown and "Where the machine's" in markdown


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


def test_tune_searches_confirms_side_by_side_and_repo_build_uses_its_choice(export_dir, tmp_path, perf_analyzer):
    out = tmp_path / "tune"
    args = ["bench", "tune", "--export", str(export_dir), "--out", str(out), "--perf-analyzer", str(perf_analyzer)]
    args += ["--candidates", "20-60", "--concurrency", "4", "--max-batch-sizes", "8", "--queue-delays-us", "0"]
    args += ["--instance-threads", "1x1,2x1", "--passes", "1", "--confirm-repeats", "2", "--requests", "64"]
    args += ["--measurement-ms", "1000", "--pa-stability-pct", "100000", "--p99-ms", "10000"]
    assert main(args) == 0
    record = json.loads((out / "tune.json").read_text())
    labels = {r["label"] for r in record["ranked"]}
    assert len(labels) == len(record["ranked"]) >= 5  # shipped + every neighbour along each dimension, once each
    assert any(r["config"]["layout"] == "padded" for r in record["ranked"])
    assert any((r["config"]["instances"], r["config"]["threads"]) == (1, 1) for r in record["ranked"])
    scores = [r["best"]["candidates_per_second"] if r["best"] else 0 for r in record["ranked"]]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0
    confirmation = record["confirmation"]
    other = {"ragged": "padded", "padded": "ragged"}[record["chosen_overrides"]["layout"]]  # the search decides
    assert set(confirmation) == {"shipped", "tuned", "shipped, padded", f"tuned, {other}"}  # each in the other layout
    assert confirmation["shipped, padded"]["label"].startswith("padded") and len(confirmation) == 4
    for row in confirmation.values():
        cps = row["candidates_per_second"]
        assert cps["n"] == 2 and cps["min"] <= cps["median"] <= cps["max"]
        assert row["vs_shipped"]["ratio_min"] <= row["vs_shipped"]["ratio"] <= row["vs_shipped"]["ratio_max"]
    assert "Side by side" in (out / "tune.md").read_text() and (out / "tune.png").stat().st_size > 0

    repo = tmp_path / "repo"
    assert (
        main(["repo", "build", "--export", str(export_dir), "--out", str(repo), "--tuned", str(out / "tune.json")]) == 0
    )
    config = (repo / "ranker_cpu" / "config.pbtxt").read_text()
    chosen = record["chosen_overrides"]
    assert f"max_batch_size: {chosen['max_batch_size']}" in config
    assert f"count: {chosen['instances']}" in config
    assert f'string_value: "{chosen["layout"]}"' in config


def test_repo_build_refuses_a_file_that_is_not_a_tune_report(export_dir, tmp_path, capsys):
    bogus = tmp_path / "not-tune.json"
    bogus.write_text('{"points": []}')
    assert (
        main(["repo", "build", "--export", str(export_dir), "--out", str(tmp_path / "r"), "--tuned", str(bogus)]) != 0
    )
    assert "is not a `tritonrec bench tune` report" in capsys.readouterr().err
