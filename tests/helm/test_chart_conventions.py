"""Conventions of well-kept charts, through the real helm: namespace on every object, a registry override for
every image, extra volumes and containers, ServiceMonitor relabelings, extra alert rules, an egress policy and a
NetworkPolicy for every pod. Every render is also validated against the Kubernetes schemas (strict).
"""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest
from helm_render import CHART, NAMESPACE, RELEASE, SCENARIOS, Rendered, load_objects, template

pytestmark = pytest.mark.integration

FULLNAME = f"{RELEASE}-tritonrec"
KUBE_VERSION = "1.35.0"


def render(helm, *args: str, scenario: str = "minimal") -> Rendered:
    result = template(helm, "--values", str(CHART / "ci" / f"{scenario}-values.yaml"), *args)
    assert result.returncode == 0, result.stderr
    return Rendered(scenario, load_objects(result.stdout))


def containers_of(rendered: Rendered) -> list[dict[str, Any]]:
    pods = [o["spec"]["template"]["spec"] for o in rendered.objects if o["kind"] in ("Deployment", "Job")]
    return [c for pod in pods for c in [*pod.get("initContainers", []), *pod["containers"]]]


def assert_valid(rendered: Rendered) -> None:
    for obj in rendered.objects:
        if obj["apiVersion"].startswith(("monitoring.coreos.com", "keda.sh", "gateway.networking")):
            continue
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_object_names_its_namespace(rendered, scenario):
    """checkov CKV_K8S_21 and `kubectl apply -f` of a rendered file: no object may fall into `default`."""
    missing = [
        f"{o['kind']}/{o['metadata']['name']}"
        for o in rendered[scenario].objects
        if o["metadata"].get("namespace") != NAMESPACE
    ]
    assert not missing, missing


def test_namespace_override_moves_every_object_and_the_names_that_embed_it(helm):
    r = render(helm, "--set", "namespaceOverride=ranking-prod", scenario="gpu-hpa")
    assert {o["metadata"]["namespace"] for o in r.objects} == {"ranking-prod"}
    assert r.one("ServiceMonitor")["spec"]["namespaceSelector"]["matchNames"] == ["ranking-prod"]
    rules = json.dumps(r.one("PrometheusRule")["spec"])
    assert 'namespace=\\"ranking-prod\\"' in rules and 'namespace=\\"ranking\\"' not in rules


def test_global_image_registry_rewrites_every_image_and_keeps_its_path(helm):
    mirror = "mirror.example.com:5000/ngc"
    images = set()
    for scenario in ("gpu-hpa", "s3-engine-build", "cpu-only"):
        r = render(helm, "--set", f"global.imageRegistry={mirror}", scenario=scenario)
        images |= {c["image"] for c in containers_of(r)}
    assert images == {
        f"{mirror}/nvidia/tritonserver:24.10-py3",
        f"{mirror}/nvidia/tensorrt:24.10-py3",
        f"{mirror}/rclone/rclone:1.68.2",
        f"{mirror}/tritonrec-locust:0.1.0",
        f"{mirror}/tritonrec-triton-cpu:24.10-py3-ort",
    }


def test_an_image_registry_of_its_own_and_a_digest(helm):
    digest = "sha256:" + "a" * 64
    r = render(helm, "--set", f"image.registry=registry.internal,image.digest={digest}")
    assert r.triton_container["image"] == f"registry.internal/nvidia/tritonserver@{digest}"


def test_extra_volumes_mounts_containers_and_init_containers_reach_the_triton_pod(helm):
    extra = {
        "extraVolumes": [{"name": "ca", "configMap": {"name": "corp-ca"}}],
        "extraVolumeMounts": [{"name": "ca", "mountPath": "/etc/ssl/corp", "readOnly": True}],
        "extraContainers": [{"name": "log-shipper", "image": "fluent/fluent-bit:3.1.9"}],
        "extraInitContainers": [{"name": "warm-cache", "image": "busybox:1.36", "command": ["true"]}],
    }
    r = render(helm, "--set-json", json.dumps(extra), scenario="s3-engine-build")
    pod = r.triton["spec"]["template"]["spec"]
    assert {"name": "ca", "configMap": {"name": "corp-ca"}} in pod["volumes"]
    assert {"name": "ca", "mountPath": "/etc/ssl/corp", "readOnly": True} in r.triton_container["volumeMounts"]
    assert [c["name"] for c in pod["containers"]] == ["triton", "log-shipper"]
    # The chart's own init containers first: the extra one runs on a fetched repository with built engines.
    assert [c["name"] for c in pod["initContainers"]] == ["fetch-model-repository", "build-trt-engines", "warm-cache"]
    assert_valid(r)


def test_service_monitor_passes_relabelings_and_metric_relabelings(helm):
    relabel = {
        "metrics": {
            "serviceMonitor": {
                "relabelings": [{"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node"}],
                "metricRelabelings": [{"sourceLabels": ["__name__"], "regex": "nv_cpu_.*", "action": "drop"}],
            }
        }
    }
    r = render(helm, "--set-json", json.dumps(relabel), scenario="gpu-hpa")
    endpoint = r.one("ServiceMonitor")["spec"]["endpoints"][0]
    assert endpoint["relabelings"] == relabel["metrics"]["serviceMonitor"]["relabelings"]
    assert endpoint["metricRelabelings"] == relabel["metrics"]["serviceMonitor"]["metricRelabelings"]


def test_extra_alert_rules_are_appended_to_the_chart_group(helm):
    rule = {"alert": "TritonRecNoTraffic", "expr": "sum(rate(nv_inference_count[10m])) == 0", "for": "30m"}
    r = render(
        helm, "--set-json", json.dumps({"metrics": {"prometheusRule": {"extraRules": [rule]}}}), scenario="gpu-hpa"
    )
    rules = r.one("PrometheusRule")["spec"]["groups"][0]["rules"]
    assert rules[-1] == rule and len([x for x in rules if "alert" in x]) == 7


def test_egress_policy_is_off_by_default_and_allows_dns_plus_declared_rules_when_on(helm, rendered):
    assert rendered["minimal"].one("NetworkPolicy", FULLNAME)["spec"]["policyTypes"] == ["Ingress"]
    s3 = {"to": [{"ipBlock": {"cidr": "52.218.0.0/17"}}], "ports": [{"port": 443, "protocol": "TCP"}]}
    values = {"networkPolicy": {"egress": {"enabled": True, "rules": [s3]}}}
    r = render(helm, "--set-json", json.dumps(values), scenario="s3-engine-build")
    policy = r.one("NetworkPolicy", FULLNAME)["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    dns, declared = policy["egress"]
    assert dns["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
    assert {(p["port"], p["protocol"]) for p in dns["ports"]} == {(53, "UDP"), (53, "TCP")}
    assert declared == s3
    assert_valid(r)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_pod_of_the_chart_is_selected_by_a_network_policy(rendered, scenario):
    """checkov CKV2_K8S_6: the load-test and engine-build pods have policies too, not only Triton's."""
    r = rendered[scenario]
    policies = [p["spec"]["podSelector"]["matchLabels"] for p in r.all("NetworkPolicy")]
    for obj in r.objects:
        if obj["kind"] in ("Deployment", "Job"):
            labels = obj["spec"]["template"]["metadata"]["labels"]
            assert any(selector.items() <= labels.items() for selector in policies), obj["metadata"]["name"]
