"""The measuring instruments: HdrHistogram percentiles, spreads and their verdicts, the Prometheus reading,
the host facts every record carries."""

import numpy as np
import pytest

from tritonrec.errors import ConfigError
from tritonrec.measure.latency import summarize
from tritonrec.measure.points import side_by_side, summarize_runs
from tritonrec.measure.prometheus import default_metrics_url, metrics_delta, parse_metrics
from tritonrec.records import ISA_FLAGS, cgroup_cpu_quota, host_facts, markdown_header, new_record
from tritonrec.spread import NO_DIFFERENCE, Spread, compare, shuffled_trials, spread

pytestmark = pytest.mark.unit


def test_hdr_percentiles_match_numpy_within_the_histograms_precision():
    rng = np.random.default_rng(0)
    latencies = rng.lognormal(mean=-4.5, sigma=0.8, size=20_000)  # ~11 ms median, long tail
    summary = summarize(latencies)
    for q, key in ((50, "p50"), (90, "p90"), (99, "p99"), (99.9, "p99_9")):
        assert summary[key] == pytest.approx(np.percentile(latencies, q) * 1e3, rel=2e-3)
    assert summary["max"] == pytest.approx(latencies.max() * 1e3, rel=1e-3) and summary["count"] == 20_000
    assert summarize([])["p99"] is None and summarize([])["count"] == 0


def test_overlapping_ranges_are_no_measurable_difference():
    a, b = spread([100, 105, 110]), spread([104, 108, 120])
    assert a == Spread(105.0, 100.0, 110.0, 3)
    verdict = compare(a, b)
    assert not verdict.measurable and verdict.verdict == NO_DIFFERENCE
    assert verdict.ratio == pytest.approx(105 / 108, abs=1e-4) and verdict.ratio_min == pytest.approx(
        100 / 120, abs=1e-4
    )
    separated = compare(spread([150, 155, 160]), b, a_name="dynamic", b_name="none")
    assert separated.measurable and separated.verdict.startswith("dynamic / none = 1.44x")
    with pytest.raises(ConfigError):
        spread([])


def test_trials_cover_every_setting_and_repeat_in_a_seeded_random_order():
    trials = shuffled_trials(["a", "b", "c"], 3, seed=1)
    assert sorted(trials) == [(s, r) for s in "abc" for r in range(3)]
    assert trials == shuffled_trials(["a", "b", "c"], 3, seed=1) != shuffled_trials(["a", "b", "c"], 3, seed=2)
    assert trials[:3] != [("a", 0), ("b", 0), ("c", 0)]


def _run(rps, p99):
    return {"requests_per_second": rps, "candidates_per_second": rps * 10, "latency_ms": {"p50": p99 / 2, "p99": p99}}


def test_perf_analyzer_is_the_headline_where_our_generator_was_the_bottleneck():
    ours = summarize_runs([_run(1000, 9), _run(1020, 10), _run(990, 11)])
    pa_close = summarize_runs([_run(1050, 8), _run(1060, 8), _run(1040, 9)])
    pa_far = summarize_runs([_run(1300, 8), _run(1310, 8), _run(1290, 9)])
    assert ours["requests_per_second"] == {"median": 1000, "min": 990, "max": 1020, "n": 3}
    close = side_by_side(ours, pa_close)
    assert close["generator_bound"] is False and close["headline_tool"] == "tritonrec"
    far = side_by_side(ours, pa_far)
    assert far["generator_bound"] is True and far["headline_tool"] == "perf_analyzer"
    assert far["headline_requests_per_second"]["median"] == 1300 and far["comparison"]["measurable"]
    assert summarize_runs([{"error": "x"}]) is None and side_by_side(ours, None)["headline_tool"] == "tritonrec"


TRITON_METRICS = """# HELP nv_inference_request_success Number of successful inference requests
# TYPE nv_inference_request_success counter
nv_inference_request_success{model="ranker_cpu",version="1"} {success}
nv_inference_request_success{model="other",version="1"} 999
# HELP nv_inference_request_failure Number of failed inference requests
# TYPE nv_inference_request_failure counter
nv_inference_request_failure{model="ranker_cpu",reason="REJECTED",version="1"} {rejected}
nv_inference_request_failure{model="ranker_cpu",reason="BACKEND",version="1"} 0
# HELP nv_inference_count Number of inferences performed
# TYPE nv_inference_count counter
nv_inference_count{model="ranker_cpu",version="1"} {success}
# HELP nv_inference_exec_count Number of model executions performed
# TYPE nv_inference_exec_count counter
nv_inference_exec_count{model="ranker_cpu",version="1"} {executions}
# HELP nv_inference_queue_duration_us Cumulative inference queuing duration in microseconds
# TYPE nv_inference_queue_duration_us counter
nv_inference_queue_duration_us{model="ranker_cpu",version="1"} {queue_us}
# HELP nv_inference_compute_infer_duration_us Cumulative compute inference duration in microseconds
# TYPE nv_inference_compute_infer_duration_us counter
nv_inference_compute_infer_duration_us{model="ranker_cpu",version="1"} {infer_us}
"""


def _snapshot(**values):
    text = TRITON_METRICS
    for key, value in values.items():
        text = text.replace("{" + key + "}", str(value))
    return parse_metrics(text, "ranker_cpu")


def test_metrics_delta_reads_triton_counters_as_per_request_averages():
    before = _snapshot(success=100, rejected=0, executions=50, queue_us=1_000, infer_us=10_000)
    after = _snapshot(success=300, rejected=7, executions=90, queue_us=401_000, infer_us=1_010_000)
    delta = metrics_delta(before, after)
    assert delta["successes"] == 200 and delta["failures"] == {"REJECTED": 7}
    assert delta["queue_ms"] == pytest.approx(2.0) and delta["compute_infer_ms"] == pytest.approx(5.0)
    assert delta["mean_batch_users"] == 5.0
    assert metrics_delta(None, after) is None
    assert default_metrics_url("10.0.0.5:8001") == "http://10.0.0.5:8002/metrics"


def test_every_record_names_its_host_isa_and_versions(tmp_path):
    facts = host_facts()
    assert facts.cpu_count >= facts.cpu_affinity >= 1 and set(facts.isa) <= set(ISA_FLAGS)
    record = new_record("tritonrec bench sweep ...", tritonserver="2.51.0", perf_analyzer=True)
    assert record["versions"]["tritonserver"] == "2.51.0" and record["versions"]["perf_analyzer"]
    assert record["versions"]["tritonrec"] and record["versions"]["numpy"] == np.__version__
    header = "\n".join(markdown_header("T", record))
    assert "tritonserver 2.51.0" in header and facts.cpu_model in header


def test_cgroup_quota_is_read_from_cpu_max(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_quota(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(tmp_path) is None
    assert cgroup_cpu_quota(tmp_path / "absent") is None
