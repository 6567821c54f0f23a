"""The chart's own PromQL, evaluated by a real Prometheus scraping a real tritonserver under a bounded load.

What runs: the bundled tritonserver (Triton 2.51, nvidia-pytriton) serving `ranker_cpu` and a copy with a tiny
queue (max_queue_size 8, queue timeout 20 ms, one instance, batches of 8), started with the gRPC flags the chart
renders (connection age cut to 2 s here, so clients reconnect many times during the load); a real Prometheus 2.42
(`make tools-prometheus`) scraping its metrics endpoint every second and evaluating the chart's rendered rules;
load from `RankingClient` threads, each bounded in requests and seconds, all on 127.0.0.1.

Series labels: a local scrape has no Kubernetes, so no ServiceMonitor sets `job` and `pod`. The Prometheus config
gives the target exactly the labels the Prometheus Operator would: the scrape job is named like the chart's
Service (`rec-tritonrec`, which becomes `job`), and a static_config adds `namespace="ranking"`, a pod name,
`service`, `endpoint` and `container`. The queries are taken verbatim from `helm template` output: the
prometheus-adapter rules (with `<<.LabelMatchers>>` / `<<.GroupBy>>` filled as the adapter fills them for a pod
query), the KEDA triggers, the PrometheusRule's alert and recording expressions, the dashboard's error ratio.

Overload: Triton 2.51 counts no metric for requests refused because the queue is full ("Exceeds maximum queue
size"), but counts queue timeouts ("Request timeout expired") as nv_inference_request_failure{reason="REJECTED"}.
The chart's overload alert is built on the latter, so the tiny queue has a timeout; the test checks both facts
(REJECTED grows by exactly the timeouts the clients saw, and not by the queue-full refusals) and that the alert
expression is non-empty while the error-rate expression stays empty.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tritonrec.client import ClientOptions, RankingClient, RetryPolicy
from tritonrec.repository import VARIANTS, Batching, build_repository
from tritonrec.serving.server import LocalTriton

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "helm"))  # the chart tests' helm helpers
from helm_render import (  # noqa: E402
    CHART,
    INSTALL_HINT,
    PROMETHEUS_HINT,
    find_helm,
    find_prometheus_tool,
    load_objects,
    require_tool,
    run_helm,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NAMESPACE, JOB = "ranking", "rec-tritonrec"
POD = "rec-tritonrec-5f6c7d8b9-local"
OVERLOAD = dataclasses.replace(
    VARIANTS["ranker_cpu"],
    name="ranker_cpu_tiny_queue",
    instances=1,
    batching=Batching(max_batch_size=8, preferred_batch_sizes=(8,), max_queue_size=8, queue_timeout_us=20_000),
)
STEADY_S, STEADY_THREADS = 20.0, 4
OVERLOAD_S, OVERLOAD_THREADS = 12.0, 24
MAX_REQUESTS_PER_THREAD = 4000


# -- the chart, rendered -------------------------------------------------------------------------------------------


def _render(helm: Path, scenario: str, *args: str) -> list[dict[str, Any]]:
    result = run_helm(
        helm, "template", "rec", str(CHART), "-n", NAMESPACE, "-f", str(CHART / "ci" / f"{scenario}-values.yaml"), *args
    )
    assert result.returncode == 0, result.stderr
    return load_objects(result.stdout)


@pytest.fixture(scope="module")
def chart() -> dict[str, Any]:
    """What the tests need from `helm template`: Triton flags, adapter rules, KEDA triggers, rules, dashboard."""
    helm = require_tool(find_helm(), "helm", INSTALL_HINT)
    hpa = _render(
        helm, "gpu-hpa", "--set", "triton.grpcMaxConnectionAgeSeconds=2,triton.grpcMaxConnectionAgeGraceSeconds=1"
    )
    keda = _render(helm, "s3-engine-build")
    deployment = next(o for o in hpa if o["kind"] == "Deployment" and o["metadata"]["name"] == JOB)
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    adapter = next(o for o in hpa if o["kind"] == "ConfigMap" and o["metadata"]["name"] == f"{JOB}-adapter-rules")
    dashboard = next(o for o in hpa if o["kind"] == "ConfigMap" and o["metadata"]["name"] == f"{JOB}-dashboard")
    scaled = next(o for o in keda if o["kind"] == "ScaledObject")
    return {
        "grpc_flags": [a for a in args if a.startswith("--grpc-max-connection-age")],
        "adapter": {r["name"]["as"]: r["metricsQuery"] for r in yaml.safe_load(adapter["data"]["rules.yaml"])},
        "keda": {t["name"]: t for t in scaled["spec"]["triggers"]},
        "rule_groups": next(o for o in hpa if o["kind"] == "PrometheusRule")["spec"]["groups"],
        "dashboard": json.loads(dashboard["data"]["tritonrec-triton.json"]),
    }


def _alert_expr(chart: dict[str, Any], name: str) -> str:
    return next(r["expr"] for g in chart["rule_groups"] for r in g["rules"] if r.get("alert") == name)


def _adapter_query(template: str) -> str:
    """The adapter's substitution for `kubectl get --raw .../namespaces/ranking/pods/*/<metric>`."""
    return template.replace("<<.LabelMatchers>>", f'namespace="{NAMESPACE}",pod=~"{POD}"').replace(
        "<<.GroupBy>>", "pod"
    )


# -- the servers ----------------------------------------------------------------------------------------------------


def _metrics(url: str) -> dict[str, float]:
    """Triton's metrics endpoint as {series text: value}."""
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - 127.0.0.1
        text = response.read().decode()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line[:3] == "nv_"}


def _counter(metrics: dict[str, float], name: str, model: str, **labels: str) -> float:
    wanted = {"model": model, **labels}
    total = 0.0
    for series, value in metrics.items():
        if series.startswith(name + "{"):
            found = dict(re.findall(r'(\w+)="([^"]*)"', series))
            if all(found.get(k) == v for k, v in wanted.items()):
                total += value
    return total


@pytest.fixture(scope="module")
def triton(data, export_dir, chart, tmp_path_factory):
    repo = tmp_path_factory.mktemp("repo")
    build_repository(repo, data.spec, [VARIANTS["ranker_cpu"], OVERLOAD], export_dir=export_dir)
    assert chart["grpc_flags"] == ["--grpc-max-connection-age=2000", "--grpc-max-connection-age-grace=1000"]
    with LocalTriton(
        repo, log_file=repo / "server.log", models=["ranker_cpu", OVERLOAD.name], extra_args=chart["grpc_flags"]
    ) as server:
        yield server


class Prometheus:
    """A real prometheus process on 127.0.0.1 with a temporary TSDB; queried over its HTTP API."""

    def __init__(self, binary: Path, folder: Path, target_port: int, rule_groups: list[dict[str, Any]]) -> None:
        self.port = _free_port()
        (folder / "rules.yaml").write_text(yaml.safe_dump({"groups": rule_groups}))
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": ["rules.yaml"],
            "scrape_configs": [
                {
                    # The job name the Prometheus Operator derives from the chart's ServiceMonitor (Service name).
                    "job_name": JOB,
                    "static_configs": [
                        {
                            "targets": [f"127.0.0.1:{target_port}"],
                            "labels": {
                                "namespace": NAMESPACE,
                                "pod": POD,
                                "service": JOB,
                                "endpoint": "metrics",
                                "container": "triton",
                            },
                        }
                    ],
                }
            ],
        }
        (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = (folder / "prometheus.log").open("wb")
        self.process = subprocess.Popen(  # noqa: S603 - our own arguments
            [
                str(binary),
                f"--config.file={folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={folder / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def api(self, path: str, **params: str) -> Any:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - 127.0.0.1
            answer = json.loads(response.read())
        assert answer["status"] == "success", answer
        return answer["data"]

    def query(self, expr: str, at: float) -> list[dict[str, Any]]:
        return list(self.api("query", query=expr, time=f"{at:.3f}")["result"])

    def wait(self, predicate: Any, what: str, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"prometheus exited with {self.process.returncode}")
            try:
                if predicate():
                    return
            except OSError:
                pass  # not listening yet
            time.sleep(0.2)
        raise AssertionError(f"prometheus: {what} not seen within {timeout_s:g} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def prometheus(triton, chart, tmp_path_factory):
    binary = require_tool(find_prometheus_tool("prometheus"), "prometheus", PROMETHEUS_HINT)
    server = Prometheus(binary, tmp_path_factory.mktemp("prometheus"), triton.metrics_port, chart["rule_groups"])
    try:
        server.wait(
            lambda: server.query(f'up{{job="{JOB}",namespace="{NAMESPACE}"}} == 1', time.time()),
            "the tritonserver target up",
        )
        yield server
    finally:
        server.stop()


# -- bounded load ---------------------------------------------------------------------------------------------------


def _load(triton, data, *, model: str, threads: int, seconds: float, tile: int) -> dict[str, Any]:
    """`threads` clients, one request at a time, until `seconds` pass or MAX_REQUESTS_PER_THREAD; no retries."""
    histories = np.asarray(data.test.histories, dtype=np.int64)
    candidates = np.asarray(data.test.candidates, dtype=np.int64)
    options = ClientOptions(timeout_s=10.0, retry=RetryPolicy(max_attempts=1))
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker(offset: int) -> None:
        with RankingClient(triton.grpc_url, model=model, options=options) as client:
            for i in range(MAX_REQUESTS_PER_THREAD):
                if time.monotonic() >= deadline:
                    break
                row = (offset * MAX_REQUESTS_PER_THREAD + i) % len(histories)
                try:
                    client.rank(histories[row], np.tile(candidates[row], tile))
                    outcome = "ok"
                except Exception as e:  # noqa: BLE001 - counted by kind, asserted below
                    message = str(e).lower()
                    outcome = next(
                        (k for k in ("exceeds maximum queue size", "request timeout expired") if k in message),
                        f"{type(e).__name__}: {e}",
                    )
                with lock:
                    outcomes[outcome] += 1

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    started = time.time()
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=seconds + 30)
    assert not any(w.is_alive() for w in workers), "a load thread did not stop"
    return {"outcomes": outcomes, "started": started, "ended": time.time()}


def _scraped(prometheus: Prometheus, triton, model: str, at_least: float) -> None:
    """Wait until Prometheus holds Triton's current count of `model` (the load's last requests are in)."""
    query = f'sum(nv_inference_request_success{{job="{JOB}",model="{model}"}})'
    prometheus.wait(
        lambda: (r := prometheus.query(query, time.time())) and float(r[0]["value"][1]) >= at_least,
        f"nv_inference_request_success of {model} >= {at_least:g}",
    )


def _value(result: list[dict[str, Any]]) -> float:
    assert len(result) == 1, result
    return float(result[0]["value"][1])


# -- the tests ------------------------------------------------------------------------------------------------------


def test_autoscaling_queries_return_the_inference_rate_and_queue_time_triton_counted(
    triton, prometheus, data, chart, record_property
):
    before = _metrics(triton.metrics_url)
    run = _load(triton, data, model="ranker_cpu", threads=STEADY_THREADS, seconds=STEADY_S, tile=2)
    after = _metrics(triton.metrics_url)
    # Every request succeeded although the server closed each connection after 2 s (chart's --grpc-max-connection-age).
    assert set(run["outcomes"]) == {"ok"}, run["outcomes"]
    served = run["outcomes"]["ok"]
    delta = {
        name: _counter(after, name, "ranker_cpu") - _counter(before, name, "ranker_cpu")
        for name in ("nv_inference_count", "nv_inference_request_success", "nv_inference_queue_duration_us")
    }
    assert delta["nv_inference_count"] == delta["nv_inference_request_success"] == served
    _scraped(prometheus, triton, "ranker_cpu", _counter(after, "nv_inference_request_success", "ranker_cpu"))
    at = time.time()
    assert at - run["started"] < 58  # the whole load lies inside the 1m windows the queries use

    rate_query = _adapter_query(chart["adapter"]["tritonrec_inferences_per_second"])
    queue_query = _adapter_query(chart["adapter"]["tritonrec_queue_time_per_request_us"])
    keda_rate = chart["keda"]["inference-rate"]["metadata"]["query"]
    keda_queue = chart["keda"]["queue-time-guard"]["metadata"]["query"]
    values = {
        "adapter inference rate": _value(prometheus.query(rate_query, at)),
        "adapter queue time": _value(prometheus.query(queue_query, at)),
        "keda inference rate": _value(prometheus.query(keda_rate, at)),
        "keda queue time": _value(prometheus.query(keda_queue, at)),
        "recorded inference rate": _value(prometheus.query("namespace_job_pod:nv_inference_count:rate1m", at)),
    }
    # rate(x[1m]) = what the window holds / 60 s, up to Prometheus' extrapolation at the window's edges (< 5%).
    expected_rate = served / 60.0
    expected_queue_us = delta["nv_inference_queue_duration_us"] / delta["nv_inference_request_success"]
    for key in ("adapter inference rate", "keda inference rate"):
        assert values[key] == pytest.approx(expected_rate, rel=0.05), (key, values)
    # A ratio of two counters sampled together: the extrapolation cancels.
    for key in ("adapter queue time", "keda queue time"):
        assert values[key] == pytest.approx(expected_queue_us, rel=0.02), (key, values)
    # One pod: the adapter's per-pod value and KEDA's release total agree; KEDA's HPA divides by the replicas.
    assert values["keda inference rate"] == pytest.approx(values["adapter inference rate"], rel=1e-9)
    assert values["recorded inference rate"] == pytest.approx(values["adapter inference rate"], rel=0.05)
    threshold = float(chart["keda"]["inference-rate"]["metadata"]["threshold"])
    record_property("values", {**values, "requests": served, "load_s": round(run["ended"] - run["started"], 1)})
    print(
        f"\nsteady load: {served} requests in {run['ended'] - run['started']:.1f} s "
        f"({served / (run['ended'] - run['started']):.1f}/s); Prometheus at +{at - run['started']:.1f} s: "
        + ", ".join(f"{k} = {v:.4g}" for k, v in values.items())
        + f"; expected rate {expected_rate:.4g}/s, queue {expected_queue_us:.4g} us; "
        f"KEDA replicas for target {threshold:g}/pod: ceil({values['keda inference rate']:.4g} / {threshold:g})"
    )


def test_overload_alert_expression_fires_on_queue_timeouts_and_error_rate_stays_empty(
    triton, prometheus, data, chart, record_property
):
    model = OVERLOAD.name
    before = _metrics(triton.metrics_url)
    run = _load(triton, data, model=model, threads=OVERLOAD_THREADS, seconds=OVERLOAD_S, tile=8)
    after = _metrics(triton.metrics_url)
    outcomes = run["outcomes"]
    unexpected = {
        k: v for k, v in outcomes.items() if k not in ("ok", "exceeds maximum queue size", "request timeout expired")
    }
    assert not unexpected, unexpected
    assert outcomes["request timeout expired"] > 0 and outcomes["exceeds maximum queue size"] > 0, outcomes
    rejected = _counter(after, "nv_inference_request_failure", model, reason="REJECTED") - _counter(
        before, "nv_inference_request_failure", model, reason="REJECTED"
    )
    other_failures = sum(
        _counter(after, "nv_inference_request_failure", model, reason=r)
        - _counter(before, "nv_inference_request_failure", model, reason=r)
        for r in ("BACKEND", "OTHER", "CANCELED")
    )
    # Triton 2.51: queue timeouts are REJECTED failures; queue-full refusals are counted nowhere.
    assert rejected == outcomes["request timeout expired"], (rejected, outcomes)
    assert other_failures == 0
    _scraped(prometheus, triton, model, _counter(after, "nv_inference_request_success", model))
    prometheus.wait(
        lambda: (
            _value(
                prometheus.query(
                    f'sum(nv_inference_request_failure{{job="{JOB}",model="{model}",reason="REJECTED"}})', time.time()
                )
            )
            >= _counter(after, "nv_inference_request_failure", model, reason="REJECTED")
        ),
        "the REJECTED count",
    )
    at = time.time()

    overloaded = prometheus.query(_alert_expr(chart, "TritonRecOverloaded"), at)
    errors = prometheus.query(_alert_expr(chart, "TritonRecHighErrorRate"), at)
    ratio_panel = next(p for p in chart["dashboard"]["panels"] if p["title"] == "Errors")["targets"][1]["expr"]
    dashboard = prometheus.query(
        ratio_panel.replace("$namespace", NAMESPACE).replace("$job", JOB).replace("$__rate_interval", "1m"), at
    )
    old_ratio = (
        f'sum by (namespace, pod) (rate(nv_inference_request_failure{{job="{JOB}"}}[5m])) / clamp_min('
        f'sum by (namespace, pod) (rate(nv_inference_request_success{{job="{JOB}"}}[5m]) + '
        f'rate(nv_inference_request_failure{{job="{JOB}"}}[5m])), 0.001)'
    )
    assert len(overloaded) == 1, overloaded
    alert = overloaded[0]
    assert alert["metric"] == {"namespace": NAMESPACE, "job": JOB, "model": model}
    served = outcomes["ok"]
    # The alert's value: rejected / (successes + failures) over 5m, of this model (the extrapolation cancels).
    assert float(alert["value"][1]) == pytest.approx(rejected / (served + rejected), rel=0.02)
    assert errors == []  # rejections are overload, not errors
    panel = {s["metric"]["model"]: float(s["value"][1]) for s in dashboard}
    assert panel[model] == pytest.approx(rejected / (served + rejected), rel=0.02)
    assert prometheus.query(old_ratio, at) == []  # the chart's former expression: nothing, whatever fails
    record_property("overload", {"outcomes": dict(outcomes), "rejected_metric": rejected, "alert": alert["value"][1]})
    print(
        f'\noverload: {dict(outcomes)}; nv_inference_request_failure{{reason="REJECTED"}} +{rejected:g}; '
        f"TritonRecOverloaded expr = {float(alert['value'][1]):.4g} ({alert['metric']}); "
        f"TritonRecHighErrorRate expr = {errors}; former ratio = []"
    )


def test_the_prometheus_under_test_is_real_and_loaded_the_chart_rules(prometheus):
    rules = prometheus.api("rules")["groups"]
    names = {r["name"] for g in rules for r in g["rules"]}
    assert {"TritonRecOverloaded", "namespace_job_pod:nv_inference_count:rate1m"} <= names
    assert all(r["health"] == "ok" for g in rules for r in g["rules"]), rules
    build = prometheus.api("status/buildinfo")
    assert build["version"].startswith("2.42.0")
    assert os.path.basename(str(prometheus.process.args[0])) == "prometheus"
