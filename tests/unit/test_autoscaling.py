"""The HPA control law of tritonrec.bench.capacity.autoscaling, and the comparison bench/hpa_simulation.py records."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tritonrec.bench.capacity.autoscaling import (
    Behavior,
    CapacityCurve,
    HpaConfig,
    HpaController,
    MetricKind,
    MetricTarget,
    PodModel,
    TrafficRamp,
    metric_proposal,
    simulate,
    summarize,
)
from tritonrec.bench.capacity.autoscaling_report import comparison_markdown, write_hpa_comparison
from tritonrec.errors import ConfigError

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
RECORDED = ROOT / "bench" / "results" / "2026-12-07-epyc-2c" / "hpa-simulation"
# The chart's default autoscaling.behavior (helm/tritonrec/values.yaml).
CHART_BEHAVIOR = {
    "scaleUp": {
        "stabilizationWindowSeconds": 0,
        "selectPolicy": "Max",
        "policies": [
            {"type": "Pods", "value": 2, "periodSeconds": 60},
            {"type": "Percent", "value": 100, "periodSeconds": 60},
        ],
    },
    "scaleDown": {
        "stabilizationWindowSeconds": 300,
        "selectPolicy": "Min",
        "policies": [{"type": "Pods", "value": 1, "periodSeconds": 120}],
    },
}
RATE = MetricTarget(kind=MetricKind.INFERENCE_RATE, target=100.0)


def hpa(*metrics: MetricTarget, min_replicas: int = 1, max_replicas: int = 20, behavior=None) -> HpaConfig:
    return HpaConfig(
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        metrics=metrics or (RATE,),
        behavior=Behavior.from_values(behavior or CHART_BEHAVIOR),
    )


def load_script():
    spec = importlib.util.spec_from_file_location("hpa_simulation", ROOT / "bench" / "hpa_simulation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the documented formula and tolerance --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "ready", "expected"),
    [
        (200.0, 2, 4),  # twice the target: twice the pods
        (50.0, 4, 2),  # half: half
        (105.0, 3, 7),  # within the 10% tolerance: keep the current count (7), not ceil(3.15)
        (95.0, 3, 7),
        (111.0, 3, 4),  # just outside: ceil(3 x 1.11)
        (0.0, 3, 0),  # idle; min replicas apply later
    ],
)
def test_a_metric_proposes_ceil_of_pods_times_value_over_target_outside_the_tolerance(value, ready, expected):
    assert metric_proposal(value, 100.0, current=7, ready=ready, tolerance=0.1) == expected


def test_no_ready_pod_keeps_the_current_count():
    assert metric_proposal(500.0, 100.0, current=3, ready=0, tolerance=0.1) == 3


def test_the_largest_proposal_of_the_metrics_wins():
    guard = MetricTarget(kind=MetricKind.QUEUE_TIME, target=20_000.0)
    controller = HpaController(hpa(RATE, guard))
    # Rate asks for ceil(4 x 1.5) = 6, the guard (2 ms of 20 ms) for 1: six.
    assert controller.decide(15, 4, 4, [150.0, 2_000.0]) == 6


# -- behavior: policies and stabilization windows ------------------------------------------------------------------


def test_scale_up_takes_the_policy_allowing_more_pods_per_minute_counting_from_the_period_start():
    controller = HpaController(hpa())
    # From 2: Pods +2 -> 4, Percent 100% -> 4; the metric asks for 20.
    assert controller.decide(15, 2, 2, [1000.0]) == 4
    # 15 s later, same minute: the period started at 2 replicas, so still at most 4.
    assert controller.decide(30, 4, 2, [1000.0]) == 4
    # After the 60 s period: from 4, Percent gives 8 (more than Pods' 6).
    assert controller.decide(90, 4, 4, [1000.0]) == 8


def test_scale_down_waits_for_the_window_then_removes_one_pod_per_period():
    controller = HpaController(hpa())
    assert controller.decide(15, 8, 8, [100.0]) == 8  # on target
    decisions = {t: None for t in range(30, 1000, 15)}
    current = 8
    for t in decisions:
        current = controller.decide(t, current, current, [10.0])  # load dropped: the metric asks for 1
        decisions[t] = current
    # The recommendation of 8 at t=15 holds the count for the 300 s window ...
    assert all(v == 8 for t, v in decisions.items() if t < 15 + 300)
    # ... then one pod per 120 s.
    assert decisions[315] == 7
    assert decisions[315 + 105] == 7 and decisions[315 + 120] == 6


def test_policies_are_read_from_the_kubernetes_structure_and_checked():
    behavior = Behavior.from_values(CHART_BEHAVIOR)
    assert behavior.scale_down.stabilization_window_s == 300
    assert [p.kind.value for p in behavior.scale_up.policies] == ["Pods", "Percent"]
    with pytest.raises(ConfigError, match="stabilizationWindowSeconds"):
        Behavior.from_values({**CHART_BEHAVIOR, "scaleDown": {"stabilizationWindowSeconds": 7200}})
    with pytest.raises(ConfigError, match="min_replicas"):
        hpa(min_replicas=5, max_replicas=2)


# -- capacity curve, traffic, pods ---------------------------------------------------------------------------------


def test_capacity_curve_comes_from_the_recorded_sweep():
    sweep = json.loads((ROOT / "bench/results/2026-11-27-epyc-2c/sweep/sweep.json").read_text())
    curve = CapacityCurve.from_sweep(sweep, source="sweep.json")
    assert curve.max_rps == 397.9  # closed loop, concurrency 16: the most served without errors
    queues = [q for _, q in curve.points]
    assert queues == sorted(queues)
    assert 400.0 not in [r for r, _ in curve.points]  # the overloaded open-loop point (895 errors) is left out
    assert curve.queue_us(47.2) == pytest.approx(2110.0)
    assert curve.queue_us(10_000.0) == pytest.approx(queues[-1] * 1000)


def test_traffic_ramp_interpolates_between_points():
    ramp = TrafficRamp(points=((0, 100.0), (60, 100.0), (120, 400.0)))
    assert ramp.rps_at(30) == 100.0 and ramp.rps_at(90) == 250.0 and ramp.rps_at(500) == 400.0
    assert ramp.duration_s == 120
    with pytest.raises(ConfigError):
        TrafficRamp(points=((10, 1.0), (0, 1.0)))


def test_a_saturated_pod_queues_up_to_its_bound_and_rejects_the_rest():
    curve = CapacityCurve(points=((10.0, 1.0), (100.0, 1.0)), max_rps=100.0)
    traffic = TrafficRamp(points=((0, 150.0), (120, 150.0)))
    pinned = hpa(RATE, min_replicas=1, max_replicas=1)
    result = simulate(curve, traffic, pinned, PodModel(startup_s=0, max_queue=500))
    assert max(result.served_per_second) == 100.0
    # 50 req/s too many: the queue fills in 10 s, then 50 req/s are refused.
    assert result.rejected_per_second[5] == 0 and result.rejected_per_second[60] == pytest.approx(50.0)
    assert result.queue_ms_per_second[60] == pytest.approx(1.0 + 500 / 100 * 1000)


def test_new_pods_serve_only_after_their_startup_time():
    curve = CapacityCurve(points=((10.0, 1.0), (200.0, 1.0)), max_rps=200.0)  # target 100 = 50% of a pod
    traffic = TrafficRamp(points=((0, 300.0), (600, 300.0)))
    result = simulate(curve, traffic, hpa(RATE, max_replicas=6), PodModel(startup_s=120), initial_replicas=1)
    first_sync = next(s for s in result.samples if s.replicas > 1)
    serving_later = next(s for s in result.samples if s.ready > 1)
    assert serving_later.t_s - first_sync.t_s >= 120


# -- the comparison recorded under bench/results -------------------------------------------------------------------


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    script = load_script()
    out = tmp_path_factory.mktemp("hpa")
    curve = CapacityCurve.from_sweep(json.loads((ROOT / script.SWEEP).read_text()), source=script.SWEEP)
    report = write_hpa_comparison(
        out,
        script.chart_hpas(),
        curve=curve,
        traffic=script.TRAFFIC,
        pods=PodModel(startup_s=script.STARTUP_S, max_queue=script.max_queue_size()),
        windows=script.WINDOWS,
        command="python bench/hpa_simulation.py",
    )
    return out, report


def test_the_new_metric_converges_and_queue_time_alone_oscillates(comparison):
    _, report = comparison
    old, new = (report["runs"][name]["summary"] for name in report["runs"])
    for window in new:  # both plateaus: not one scale event once converged
        assert window["window_scale_events"] == 0
        assert window["window_replicas_min"] == window["window_replicas_max"]
    for window in old:  # both plateaus: repeated up/down swings between saturation and over-provisioning
        assert window["window_scale_events"] >= 6
        assert window["window_replicas_max"] - window["window_replicas_min"] >= 3
    assert old[0]["reversals"] >= 3 * new[0]["reversals"]
    assert new[0]["rejected_fraction"] < old[0]["rejected_fraction"] / 5
    assert new[0]["replica_hours"] < old[0]["replica_hours"]


def test_the_new_metric_settles_at_traffic_over_the_rate_target(comparison):
    _, report = comparison
    name = list(report["runs"])[1]
    target = report["runs"][name]["hpa"]["metrics"][0]["target"]
    plateaus = [(2400.0, report["runs"][name]["summary"][0]), (900.0, report["runs"][name]["summary"][1])]
    for offered, window in plateaus:
        replicas = window["window_replicas_min"]
        # Within the 10% tolerance of ceil(offered / target), never below what the load needs.
        assert abs(offered / replicas / target - 1) <= 0.1 or replicas == -(-offered // target)


HEADER_KEYS = ("command", "date", "host", "versions")  # where and when: differ from run to run by design


def test_recorded_results_are_what_the_script_writes(comparison):
    out, report = comparison
    recorded = json.loads((RECORDED / "hpa-simulation.json").read_text())
    assert all(key in recorded for key in HEADER_KEYS)
    strip = lambda r: {k: v for k, v in r.items() if k not in HEADER_KEYS}  # noqa: E731
    assert strip(recorded) == strip(json.loads(json.dumps(report)))
    body = lambda text: text.split("\nCapacity curve:", 1)[1]  # noqa: E731  (after the header lines)
    assert body((out / "hpa-simulation.md").read_text()) == body((RECORDED / "hpa-simulation.md").read_text())
    assert (out / "hpa-simulation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_helm_readme_shows_the_recorded_table_and_plot():
    readme = (ROOT / "helm" / "README.md").read_text()
    markdown = (RECORDED / "hpa-simulation.md").read_text()
    summary_rows = [
        line
        for line in markdown.splitlines()
        if line.startswith("| queue time only") or line.startswith("| inferences/s")
    ]
    assert summary_rows and all(row in readme for row in summary_rows)
    timeline = markdown.split("| minute |", 1)[1]
    assert "| minute |" + timeline.rstrip() in readme
    assert "../bench/results/2026-12-07-epyc-2c/hpa-simulation/hpa-simulation.png" in readme


def test_markdown_names_every_run(comparison):
    _, report = comparison
    text = comparison_markdown(report)
    assert all(name in text for name in report["runs"])


def test_the_autoscaling_modules_import_no_torch():
    code = (
        "import sys, tritonrec.bench.capacity.autoscaling, tritonrec.bench.capacity.autoscaling_report; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr


def test_summary_counts_reversals_of_direction():
    curve = CapacityCurve(points=((10.0, 1.0), (100.0, 1.0)), max_rps=100.0)
    traffic = TrafficRamp(points=((0, 50.0), (60, 50.0)))
    result = simulate(curve, traffic, hpa(RATE), PodModel(startup_s=0))
    summary = summarize(result, window_from_s=0, window_to_s=60)
    assert summary.scale_events == summary.reversals == 0 and summary.window_replicas_min == 1
