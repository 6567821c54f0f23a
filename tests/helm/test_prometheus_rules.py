"""`promtool test rules` on the chart's own alert and recording rules, fed series shaped like Triton 2.51's.

The rules are the PrometheusRule the real helm renders for ci/gpu-hpa-values.yaml (release `rec`, namespace
`ranking`): `for` is 20m for the alerts a scale-up trips (the startup budget) and 5m for the others. The input
series carry exactly the labels a Triton 2.51 metrics endpoint exports (`model`, `version`; failures also
`reason`, one series per REJECTED / CANCELED / BACKEND / OTHER, all present from start) plus the target labels
the Prometheus Operator adds for a ServiceMonitor (`namespace`, `service`, `job` = the Service name, `endpoint`,
`pod`, `container`, `instance`). Counters grow linearly, one sample every 15 s (the ServiceMonitor's interval).

Annotations are dropped from the rules under test (promtool compares them verbatim); `promtool check rules`
checks the full rules, templates included. Each rule has cases where it must answer and where it must not.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from helm_render import CHART, load_objects, template

pytestmark = pytest.mark.integration

NS, JOB = "ranking", "rec-tritonrec"
TARGET = {"namespace": NS, "service": JOB, "job": JOB, "endpoint": "metrics", "container": "triton"}
POD_A, POD_B = "rec-tritonrec-7d9f8b6c5d-x2k9p", "rec-tritonrec-7d9f8b6c5d-q8w7e"
INSTANCES = {POD_A: "10.42.0.17:8002", POD_B: "10.42.1.23:8002"}
REASONS = ("REJECTED", "CANCELED", "BACKEND", "OTHER")
SAMPLES = 4 * 40  # 40 minutes of 15 s scrapes
SEVERITY = {"severity": "warning"}


def _labels(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def series(name: str, per_second: float, *, pod: str = POD_A, model: str = "ranker_onnx", **extra: str):
    """A Triton counter scraped from `pod`, growing `per_second`, with the target labels of the ServiceMonitor."""
    labels = {**TARGET, "pod": pod, "instance": INSTANCES.get(pod, "10.42.9.9:8002"), "model": model, "version": "1"}
    labels.update(extra)
    return {"series": name + _labels(labels), "values": f"0+{per_second * 15:g}x{SAMPLES}"}


def triton_pod(
    *, pod: str = POD_A, model: str = "ranker_onnx", success: float = 0, queue_us: float = 0, **failures: float
):
    """Every counter Triton 2.51 exports for one model on one pod (failure: one series per reason)."""
    out = [
        series("nv_inference_request_success", success, pod=pod, model=model),
        series("nv_inference_count", success, pod=pod, model=model),
        series("nv_inference_queue_duration_us", queue_us, pod=pod, model=model),
    ]
    out += [series("nv_inference_request_failure", failures.get(r, 0), pod=pod, model=model, reason=r) for r in REASONS]
    return out


def gauge(name: str, value: float, **labels: str):
    return {"series": name + _labels(labels), "values": f"{value:g}x{SAMPLES}"}


def alert(name: str, eval_time: str, *expected: dict[str, str]):
    return {"eval_time": eval_time, "alertname": name, "exp_alerts": [{"exp_labels": e} for e in expected]}


def group(series_list: list[dict[str, str]], *, alerts=(), exprs=()) -> dict[str, Any]:
    return {
        "interval": "15s",
        "input_series": series_list,
        "alert_rule_test": list(alerts),
        "promql_expr_test": list(exprs),
    }


def sample(value: float, **labels: str) -> dict[str, Any]:
    return {"labels": _labels(labels), "value": value}


RATE_RECORD = "namespace_job_pod:nv_inference_count:rate1m"
QUEUE_RECORD = "namespace_job_pod:nv_inference_queue_duration_us_per_request:rate1m"
OTHER_RELEASE = {"job": "canary-tritonrec", "service": "canary-tritonrec"}

# Per rule: promtool test groups. Names are the rule's `record` or `alert`.
CASES: dict[str, list[dict[str, Any]]] = {
    RATE_RECORD: [
        group(
            [
                *triton_pod(pod=POD_A, success=10),
                *triton_pod(pod=POD_A, model="ranker_trt_fp16", success=5),
                *triton_pod(pod=POD_B, success=20),
                # Another release in the namespace (its own Service, so its own job): not ours.
                series("nv_inference_count", 99, pod="canary-tritonrec-5c7d9-abcde", **OTHER_RELEASE),
            ],
            exprs=[
                {
                    "expr": RATE_RECORD,
                    "eval_time": "10m",
                    "exp_samples": [
                        sample(15, __name__=RATE_RECORD, namespace=NS, job=JOB, pod=POD_A),
                        sample(20, __name__=RATE_RECORD, namespace=NS, job=JOB, pod=POD_B),
                    ],
                }
            ],
        )
    ],
    QUEUE_RECORD: [
        group(
            [*triton_pod(pod=POD_A, success=10, queue_us=20_000), *triton_pod(pod=POD_B)],
            exprs=[
                {
                    "expr": QUEUE_RECORD,
                    "eval_time": "10m",
                    "exp_samples": [
                        sample(2000, __name__=QUEUE_RECORD, namespace=NS, job=JOB, pod=POD_A),
                        sample(0, __name__=QUEUE_RECORD, namespace=NS, job=JOB, pod=POD_B),  # idle: 0, not NaN
                    ],
                }
            ],
        )
    ],
    "TritonRecHighQueueTime": [
        group(
            # 60 ms per request on A (threshold 50 ms), 2 ms on B.
            [*triton_pod(pod=POD_A, success=10, queue_us=600_000), *triton_pod(pod=POD_B, success=10, queue_us=20_000)],
            alerts=[
                alert("TritonRecHighQueueTime", "15m"),  # pending: a scale-up may still be starting pods
                alert("TritonRecHighQueueTime", "30m", {"namespace": NS, "job": JOB, "pod": POD_A, **SEVERITY}),
            ],
        )
    ],
    "TritonRecOverloaded": [
        group(
            # 1 of 10 requests per second times out in the queue: 10% > 1%.
            [*triton_pod(success=9, REJECTED=1), *triton_pod(model="ranker_trt_fp16", success=10)],
            alerts=[
                alert("TritonRecOverloaded", "15m"),
                alert("TritonRecOverloaded", "30m", {"namespace": NS, "job": JOB, "model": "ranker_onnx", **SEVERITY}),
                alert("TritonRecHighErrorRate", "30m"),  # rejections are overload, not errors
            ],
            exprs=[
                {
                    # The defect the chart had: success + failure added one to one. `reason` is on failure only,
                    # so the sum matches nothing and the ratio is empty although requests fail.
                    "expr": (
                        f'sum by (namespace, pod) (rate(nv_inference_request_failure{{job="{JOB}"}}[5m])) / clamp_min('
                        f'sum by (namespace, pod) (rate(nv_inference_request_success{{job="{JOB}"}}[5m]) + '
                        f'rate(nv_inference_request_failure{{job="{JOB}"}}[5m])), 0.001) > 0.01'
                    ),
                    "eval_time": "30m",
                    "exp_samples": [],
                }
            ],
        )
    ],
    "TritonRecHighErrorRate": [
        group(
            # Model errors on pod A: 2 of 20 requests per second (10%), spread over two reasons; pod B is clean.
            [*triton_pod(pod=POD_A, success=18, BACKEND=1.5, OTHER=0.5), *triton_pod(pod=POD_B, success=20)],
            alerts=[
                alert("TritonRecHighErrorRate", "4m"),
                alert(
                    "TritonRecHighErrorRate", "10m", {"namespace": NS, "job": JOB, "model": "ranker_onnx", **SEVERITY}
                ),
                alert("TritonRecOverloaded", "30m"),
            ],
        ),
        group(
            # 0.5% errors: below the 1% threshold.
            [*triton_pod(success=199, BACKEND=1)],
            alerts=[alert("TritonRecHighErrorRate", "30m")],
        ),
    ],
    "TritonRecReplicasUnavailable": [
        group(
            [
                gauge(
                    "kube_deployment_status_replicas_unavailable",
                    1,
                    namespace=NS,
                    deployment=JOB,
                    job="kube-state-metrics",
                    instance="10.42.2.5:8080",
                ),
                gauge(
                    "kube_deployment_status_replicas_unavailable",
                    1,
                    namespace=NS,
                    deployment=f"{JOB}-locust-worker",
                    job="kube-state-metrics",
                    instance="10.42.2.5:8080",
                ),
            ],
            alerts=[
                alert("TritonRecReplicasUnavailable", "15m"),  # a scale-up that builds engines is still in time
                alert(
                    "TritonRecReplicasUnavailable",
                    "25m",
                    {
                        "namespace": NS,
                        "deployment": JOB,
                        "job": "kube-state-metrics",
                        "instance": "10.42.2.5:8080",
                        **SEVERITY,
                    },
                ),
            ],
        )
    ],
    "TritonRecRolloutStuck": [
        group(
            [
                gauge(
                    "kube_deployment_status_condition",
                    v,
                    namespace=NS,
                    deployment=JOB,
                    condition="Progressing",
                    status=s,
                    reason="ProgressDeadlineExceeded",
                    job="kube-state-metrics",
                )
                for s, v in (("true", 0), ("false", 1), ("unknown", 0))
            ],
            alerts=[
                alert("TritonRecRolloutStuck", "3m"),
                alert(
                    "TritonRecRolloutStuck",
                    "10m",
                    {
                        "namespace": NS,
                        "deployment": JOB,
                        "condition": "Progressing",
                        "status": "false",
                        "reason": "ProgressDeadlineExceeded",
                        "job": "kube-state-metrics",
                        **SEVERITY,
                    },
                ),
            ],
        )
    ],
    "TritonRecMetricsDown": [
        group(
            # Both targets fail their scrape (e.g. the NetworkPolicy blocks the scraper).
            [gauge("up", 0, **TARGET, pod=pod, instance=INSTANCES[pod]) for pod in (POD_A, POD_B)],
            alerts=[alert("TritonRecMetricsDown", "10m", {"namespace": NS, "job": JOB, **SEVERITY})],
        ),
        group(
            # No target at all (ServiceMonitor not picked up): only another release is scraped.
            [
                gauge(
                    "up", 1, **{**TARGET, **OTHER_RELEASE}, pod="canary-tritonrec-5c7d-abcde", instance="10.42.3.3:8002"
                )
            ],
            alerts=[alert("TritonRecMetricsDown", "10m", {"namespace": NS, "job": JOB, **SEVERITY})],
        ),
        group(
            # One of two pods is scraped: metrics flow, no alert.
            [gauge("up", v, **TARGET, pod=pod, instance=INSTANCES[pod]) for pod, v in ((POD_A, 1), (POD_B, 0))],
            alerts=[alert("TritonRecMetricsDown", "10m")],
        ),
    ],
}


@pytest.fixture(scope="module")
def chart_rules(helm) -> list[dict[str, Any]]:
    result = template(
        helm, "--values", str(CHART / "ci" / "gpu-hpa-values.yaml"), "-s", "templates/prometheusrule.yaml"
    )
    assert result.returncode == 0, result.stderr
    (rule,) = load_objects(result.stdout)
    return rule["spec"]["groups"]


@pytest.fixture(scope="module")
def rules_file(chart_rules, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("rules")
    (folder / "full.yaml").write_text(yaml.safe_dump({"groups": chart_rules}))
    stripped = [
        {**g, "rules": [{k: v for k, v in r.items() if k != "annotations"} for r in g["rules"]]} for g in chart_rules
    ]
    (folder / "rules.yaml").write_text(yaml.safe_dump({"groups": stripped}))
    return folder / "rules.yaml"


def test_promtool_checks_the_rendered_rules_with_their_annotation_templates(promtool, rules_file):
    result = subprocess.run(
        [str(promtool), "check", "rules", str(rules_file.with_name("full.yaml"))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 8 rules found" in result.stdout


def test_every_chart_rule_has_promtool_cases(chart_rules):
    names = {r.get("alert") or r["record"] for g in chart_rules for r in g["rules"]}
    assert names == set(CASES)


@pytest.mark.parametrize("rule", sorted(CASES))
def test_promtool_unit_tests_of_the_rule_pass_on_triton_shaped_series(promtool, rules_file, rule):
    test_file = rules_file.with_name(f"test_{rule.replace(':', '_')}.yaml")
    test_file.write_text(
        yaml.safe_dump({"rule_files": [rules_file.name], "evaluation_interval": "15s", "tests": CASES[rule]})
    )
    result = subprocess.run(
        [str(promtool), "test", "rules", test_file.name],
        cwd=rules_file.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
