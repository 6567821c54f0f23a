"""Triton's Prometheus metrics endpoint, scraped before and after a measurement, read as per-request averages.

This is the server's own account of the same span, independent of the statistics API: it also counts failures
by reason (``nv_inference_request_failure{reason=...}``), which the statistics API leaves out. Parsing is
``prometheus_client``'s text-format parser. Metric names are those of Triton 2.51's ``/metrics`` endpoint.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections import defaultdict
from typing import Any
from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["MetricsSnapshot", "default_metrics_url", "metrics_delta", "parse_metrics", "scrape"]

MetricsSnapshot = dict[str, float]
"""``{series key: value}`` for one model; keys are metric names, ``..._failure:<reason>`` for failures."""

_COUNTERS = (
    "nv_inference_request_success",
    "nv_inference_count",
    "nv_inference_exec_count",
    "nv_inference_request_duration_us",
    "nv_inference_queue_duration_us",
    "nv_inference_compute_input_duration_us",
    "nv_inference_compute_infer_duration_us",
    "nv_inference_compute_output_duration_us",
)
_FAILURE = "nv_inference_request_failure"


def default_metrics_url(grpc_url: str, port: int = 8002) -> str:
    """``http://<host of the gRPC url>:8002/metrics``, Triton's default metrics port."""
    host = urlsplit(f"//{grpc_url.split('://', 1)[-1]}").hostname or "127.0.0.1"
    return f"http://{host}:{port}/metrics"


def scrape(metrics_url: str, model: str, *, timeout_s: float = 5.0) -> MetricsSnapshot | None:
    """The model's counters now (summed over versions), or None when the endpoint does not answer."""
    try:
        with urllib.request.urlopen(metrics_url, timeout=timeout_s) as response:  # noqa: S310 - operator's URL
            text = response.read().decode()
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return parse_metrics(text, model)


def parse_metrics(text: str, model: str) -> MetricsSnapshot:
    """The model's counters in a Prometheus text exposition (summed over versions)."""
    out: dict[str, float] = defaultdict(float)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("model") != model:
                continue
            name = sample.name.removesuffix("_total")  # the parser names counter samples <family>_total
            if name in _COUNTERS:
                out[name] += sample.value
            elif name == _FAILURE:
                out[f"{_FAILURE}:{sample.labels.get('reason', 'OTHER')}"] += sample.value
    return dict(out)


def metrics_delta(before: MetricsSnapshot | None, after: MetricsSnapshot | None) -> dict[str, Any] | None:
    """Per-request averages (ms) of queue and compute, successes, failures by reason, users per execution."""
    if before is None or after is None:
        return None
    delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    successes = delta.get("nv_inference_request_success", 0.0)
    per = max(successes, 1.0)

    def ms(name: str) -> float:
        return round(delta.get(f"nv_inference_{name}_duration_us", 0.0) / per / 1e3, 3)

    executions = delta.get("nv_inference_exec_count", 0.0)
    failures = {k.split(":", 1)[1]: int(v) for k, v in delta.items() if k.startswith(f"{_FAILURE}:") and v}
    return {
        "successes": int(successes),
        "failures": failures,
        "request_ms": ms("request"),
        "queue_ms": ms("queue"),
        "compute_input_ms": ms("compute_input"),
        "compute_infer_ms": ms("compute_infer"),
        "compute_output_ms": ms("compute_output"),
        "mean_batch_users": round(delta.get("nv_inference_count", 0.0) / executions, 2) if executions else None,
    }
