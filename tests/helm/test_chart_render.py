"""The chart, through the real helm: lint, render every ci/ scenario, validate every object, check the wiring.

Kubernetes objects are validated with kubernetes-validate (strict: unknown fields fail) against the schemas of
the Kubernetes releases in KUBE_VERSIONS; the CRDs (ServiceMonitor, PrometheusRule, ScaledObject, GRPCRoute)
against the minimal structural schemas in crd_schemas.py. Nothing here talks to a cluster.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from crd_schemas import CRD_SCHEMAS
from helm_render import CHART, NAMESPACE, RELEASE, ROOT, SCENARIOS, Rendered, load_objects, run_helm, template

pytestmark = pytest.mark.integration

# Helm v4.1 ships the 1.35 client; 1.37 is the newest release kubernetes-validate 1.37.0 bundles.
KUBE_VERSIONS = ("1.35.0", "1.37.0")
FULLNAME = f"{RELEASE}-tritonrec"
GPU_SCENARIOS = [s for s in SCENARIOS if s != "cpu-only"]


def _pod_specs(rendered: Rendered) -> list[tuple[str, dict[str, Any]]]:
    """(object name, pod spec) of every Deployment and Job."""
    return [
        (f"{o['kind']}/{o['metadata']['name']}", o["spec"]["template"]["spec"])
        for o in rendered.objects
        if o["kind"] in ("Deployment", "Job")
    ]


def _containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


def _args_of(container: dict[str, Any]) -> dict[str, str]:
    """--flag=value arguments as {flag: value}; repeated flags keep the last."""
    return dict(a.split("=", 1) for a in container["args"] if a.startswith("--") and "=" in a)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_helm_lint_strict_passes(helm, scenario):
    result = run_helm(helm, "lint", "--strict", str(CHART), "--values", str(CHART / "ci" / f"{scenario}-values.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout


def test_every_ci_scenario_is_rendered(rendered):
    assert {"minimal", "gpu-hpa", "s3-engine-build", "cpu-only"} <= set(rendered)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_object_validates_against_kubernetes_or_its_crd_schema(rendered, scenario):
    problems = []
    for obj in rendered[scenario].objects:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] in CRD_SCHEMAS:
            errors = jsonschema.Draft202012Validator(CRD_SCHEMAS[obj["kind"]]).iter_errors(obj)
            problems += [f"{name}: {'/'.join(map(str, e.path))}: {e.message}" for e in errors]
            continue
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                problems.append(f"{name} (Kubernetes {version}): {'.'.join(map(str, e.path))}: {e.message}")
            except kubernetes_validate.SchemaNotFoundError:
                problems.append(f"{name}: no Kubernetes {version} schema and no CRD schema in crd_schemas.py")
    assert not problems, "\n".join(problems)


def test_the_validator_rejects_an_unknown_field(rendered):
    """Guards the test above: strict validation must fail on a field Kubernetes does not know."""
    deployment = json.loads(json.dumps(rendered["minimal"].triton))
    deployment["spec"]["template"]["spec"]["containers"][0]["gpus"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSIONS[0], strict=True)


@pytest.mark.parametrize("scenario", GPU_SCENARIOS)
def test_triton_requests_and_limits_one_gpu_on_gpu_nodes(rendered, scenario):
    r = rendered[scenario]
    resources = r.triton_container["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == 1
    assert resources["requests"]["nvidia.com/gpu"] == 1
    assert {"cpu", "memory"} <= set(resources["requests"]) and {"cpu", "memory"} <= set(resources["limits"])
    pod = r.triton["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert _args_of(r.triton_container)["--allow-gpu-metrics"] == "true"


def test_cpu_only_pods_ask_for_no_gpu_and_load_ranker_cpu(rendered):
    r = rendered["cpu-only"]
    for name, pod in _pod_specs(r):
        for container in _containers(pod):
            for section in ("requests", "limits"):
                assert "nvidia.com/gpu" not in container.get("resources", {}).get(section, {}), name
        assert "tolerations" not in pod and "nvidia.com/gpu.present" not in pod.get("nodeSelector", {}), name
    args = r.triton_container["args"]
    assert "--load-model=ranker_cpu" in args and "--allow-gpu-metrics=false" in args


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_probes_use_triton_health_endpoints_and_startup_covers_model_loading(rendered, scenario):
    c = rendered[scenario].triton_container
    assert c["startupProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    # liveness by a real inference (files/infer_probe.py): a dead Python stub keeps /v2/health/live at 200
    command = c["livenessProbe"]["exec"]["command"]
    assert command[:2] == ["python3", "/opt/tritonrec/probe/infer_probe.py"] and "--models" in command
    startup = c["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600  # ten minutes to load models


def test_dead_backend_check_probes_the_served_models_with_the_bundled_script_or_a_given_command(helm):
    objects = load_objects(template(helm).stdout)
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    command = pod["containers"][0]["livenessProbe"]["exec"]["command"]
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert command[command.index("--models") + 1] == ",".join(values["triton"]["loadModels"])
    assert command[command.index("--url") + 1] == f"http://127.0.0.1:{values['ports']['http']}"
    probe = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-infer-probe"))
    assert probe["data"]["infer_probe.py"] == (CHART / "files" / "infer_probe.py").read_text().rstrip("\n")
    assert any(v.get("configMap", {}).get("name") == probe["metadata"]["name"] for v in pod["volumes"])
    own = '{"probes":{"deadBackendCheck":{"enabled":true,"command":["/opt/tritonrec/check","--model","x"]}}}'
    liveness = next(o for o in load_objects(template(helm, "--set-json", own).stdout) if o["kind"] == "Deployment")
    liveness = liveness["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]
    assert liveness["exec"]["command"] == ["/opt/tritonrec/check", "--model", "x"] and "httpGet" not in liveness
    off = template(helm, "--set", "probes.deadBackendCheck.enabled=false")
    plain = next(o for o in load_objects(off.stdout) if o["kind"] == "Deployment")
    assert plain["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_triton_keepalive_flags_are_the_local_launchers(rendered, scenario):
    from tritonrec.serving.server import KEEPALIVE_ARGS

    container = rendered[scenario].triton_container
    assert set(KEEPALIVE_ARGS) <= set(container.get("args", []) + container.get("command", []))


def test_restricted_apis_by_default_close_reconfiguration_and_leave_ranking_open():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    protocols = values["triton"]["restrictedApis"]["protocols"]
    assert "model-repository" in protocols  # loading/unloading models needs the admin key (tested for real)
    assert "inference" not in protocols and "model-config" not in protocols  # clients read their limits


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_termination_drains_in_flight_requests(rendered, scenario):
    r = rendered[scenario]
    pod = r.triton["spec"]["template"]["spec"]
    c = r.triton_container
    pre_stop = c["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    exit_timeout = int(_args_of(c)["--exit-timeout-secs"])
    assert pod["terminationGracePeriodSeconds"] >= int(pre_stop[1]) + exit_timeout
    strategy = r.triton["spec"]["strategy"]["rollingUpdate"]
    assert strategy["maxUnavailable"] == 0


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_triton_flags_come_from_values(rendered, scenario):
    c = rendered[scenario].triton_container
    assert c["args"][0] == "tritonserver" and "command" not in c  # the image's entrypoint stays in front
    flags = _args_of(c)
    assert flags["--model-repository"] == "/models"
    assert flags["--model-control-mode"] == "explicit"
    assert flags["--strict-readiness"] == "true"
    assert flags["--log-format"] in ("default", "ISO8601")
    assert (flags["--http-port"], flags["--grpc-port"], flags["--metrics-port"]) == ("8000", "8001", "8002")
    restricted = flags["--grpc-restricted-protocol"]
    assert restricted == "model-repository,shared-memory,trace,logging:admin-key=$(TRITON_ADMIN_KEY)"
    assert flags["--http-restricted-api"] == restricted
    key_env = next(e for e in c["env"] if e["name"] == "TRITON_ADMIN_KEY")
    secret = key_env["valueFrom"]["secretKeyRef"]
    rendered_secret = rendered[scenario].one("Secret", secret["name"])
    assert secret["key"] in rendered_secret["data"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_container_runs_restricted(rendered, scenario):
    for name, pod in _pod_specs(rendered[scenario]):
        pod_ctx = pod.get("securityContext", {})
        assert pod_ctx.get("runAsNonRoot") is True and pod_ctx.get("runAsUser", 0) != 0, name
        assert pod_ctx["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod.get("automountServiceAccountToken") is False, name
        for c in _containers(pod):
            ctx = c["securityContext"]
            where = f"{name} container {c['name']}"
            assert ctx["readOnlyRootFilesystem"] is True, where
            assert ctx["allowPrivilegeEscalation"] is False, where
            assert ctx["capabilities"]["drop"] == ["ALL"], where
            assert "/tmp" in {m["mountPath"] for m in c["volumeMounts"]}, f"{where}: no writable /tmp"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_triton_gets_writable_scratch_and_a_read_only_repository(rendered, scenario):
    r = rendered[scenario]
    mounts = {m["mountPath"]: m for m in r.triton_container["volumeMounts"]}
    assert mounts["/models"]["readOnly"] is True
    volumes = {v["name"]: v for v in r.triton["spec"]["template"]["spec"]["volumes"]}
    assert volumes[mounts["/dev/shm"]["name"]]["emptyDir"]["medium"] == "Memory"
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_image_is_pinned(rendered, scenario):
    for name, pod in _pod_specs(rendered[scenario]):
        for c in _containers(pod):
            image = c["image"]
            assert "@sha256:" in image or re.search(r":[A-Za-z0-9_.-]*[0-9][A-Za-z0-9_.-]*$", image), (name, image)
    assert rendered[scenario].triton_container["image"] == "nvcr.io/nvidia/tritonserver:24.10-py3" or (
        scenario == "cpu-only"
    )


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_selectors_of_services_pdb_policy_and_spread_match_the_triton_pods(rendered, scenario):
    r = rendered[scenario]
    pod_labels = r.triton["spec"]["template"]["metadata"]["labels"]
    selector = r.triton["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    assert r.one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == selector
    assert r.one("NetworkPolicy", FULLNAME)["spec"]["podSelector"]["matchLabels"] == selector
    for service in r.all("Service"):
        if service["metadata"]["name"].startswith(FULLNAME) and "locust" not in service["metadata"]["name"]:
            assert service["spec"]["selector"] == selector, service["metadata"]["name"]
    for constraint in r.triton["spec"]["template"]["spec"]["topologySpreadConstraints"]:
        assert constraint["labelSelector"]["matchLabels"] == selector
    # Other pods of the release (load test, engine build) must not be counted as Triton pods.
    for name, _pod_spec in _pod_specs(r):
        if name != f"Deployment/{FULLNAME}":
            other = next(o for o in r.objects if f"{o['kind']}/{o['metadata']['name']}" == name)
            assert not selector.items() <= other["spec"]["template"]["metadata"]["labels"].items(), name


def test_services_expose_grpc_http_metrics_and_a_headless_grpc_service(rendered):
    r = rendered["minimal"]
    ports = {p["name"]: p["port"] for p in r.one("Service", FULLNAME)["spec"]["ports"]}
    assert ports == {"grpc": 8001, "http": 8000, "metrics": 8002}
    headless = r.one("Service", f"{FULLNAME}-headless")["spec"]
    assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is False
    assert [(p["name"], p["port"]) for p in headless["ports"]] == [("grpc", 8001)]


def test_hpa_reads_exactly_the_metrics_the_adapter_rule_derives_from_triton(rendered):
    r = rendered["gpu-hpa"]
    hpa = r.one("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": FULLNAME}
    assert "replicas" not in r.triton["spec"]  # the HPA owns the count; an upgrade must not reset it
    hpa_metrics = {m["pods"]["metric"]["name"]: m["pods"]["target"] for m in hpa["spec"]["metrics"]}
    rules = yaml.safe_load(r.one("ConfigMap", f"{FULLNAME}-adapter-rules")["data"]["rules.yaml"])
    adapter = {rule["name"]["as"]: rule for rule in rules}
    assert (
        set(hpa_metrics)
        == set(adapter)
        == {"tritonrec_inferences_per_second", "tritonrec_queue_time_per_request_us", "tritonrec_gpu_utilization"}
    )
    for rule in adapter.values():
        assert rule["resources"]["overrides"] == {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
        assert f'job="{FULLNAME}"' in rule["seriesQuery"] and f'job="{FULLNAME}"' in rule["metricsQuery"]
    rate = adapter["tritonrec_inferences_per_second"]
    assert rate["seriesQuery"].startswith("nv_inference_count{")
    assert rate["metricsQuery"] == (
        f'sum by (<<.GroupBy>>) (rate(nv_inference_count{{<<.LabelMatchers>>,job="{FULLNAME}"}}[1m]))'
    )
    queue = adapter["tritonrec_queue_time_per_request_us"]["metricsQuery"]
    assert f'rate(nv_inference_queue_duration_us{{<<.LabelMatchers>>,job="{FULLNAME}"}}[1m])' in queue
    assert queue.count("by (<<.GroupBy>>)") == 2 and " / clamp_min(" in queue
    assert hpa_metrics["tritonrec_inferences_per_second"] == {"type": "AverageValue", "averageValue": "280"}
    assert hpa_metrics["tritonrec_queue_time_per_request_us"] == {"type": "AverageValue", "averageValue": "20000"}
    assert hpa_metrics["tritonrec_gpu_utilization"] == {"type": "AverageValue", "averageValue": "800m"}
    behavior = hpa["spec"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 300
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0


def test_keda_alternative_scales_on_the_total_inference_rate_per_replica_with_the_queue_guard(rendered):
    r = rendered["s3-engine-build"]
    assert r.maybe("HorizontalPodAutoscaler") is None
    scaled = r.one("ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] == FULLNAME
    triggers = {t["name"]: t for t in scaled["spec"]["triggers"]}
    selector = f'namespace="{NAMESPACE}",job="{FULLNAME}"'
    rate = triggers["inference-rate"]
    # AverageValue: the HPA KEDA creates divides the release's total by the replica count.
    assert rate["type"] == "prometheus" and rate["metricType"] == "AverageValue"
    assert rate["metadata"]["query"] == f"sum (rate(nv_inference_count{{{selector}}}[1m]))"
    assert rate["metadata"]["threshold"] == "280"
    guard = triggers["queue-time-guard"]
    assert guard["metricType"] == "Value" and guard["metadata"]["threshold"] == "20000"
    assert f"rate(nv_inference_queue_duration_us{{{selector}}}[1m])" in guard["metadata"]["query"]
    assert "pod=~" not in json.dumps(scaled)
    assert "replicas" not in r.triton["spec"]


def test_monitoring_objects_scrape_the_metrics_port_and_alert_on_queue_overload_errors_and_rollouts(rendered):
    r = rendered["gpu-hpa"]
    monitor = r.one("ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    rules = r.one("PrometheusRule")["spec"]["groups"][0]["rules"]
    alerts = {rule["alert"]: rule["expr"] for rule in rules if "alert" in rule}
    assert set(alerts) == {
        "TritonRecHighQueueTime",
        "TritonRecOverloaded",
        "TritonRecHighErrorRate",
        "TritonRecReplicasUnavailable",
        "TritonRecRolloutStuck",
        "TritonRecMetricsDown",
    }
    assert "nv_inference_queue_duration_us" in alerts["TritonRecHighQueueTime"]
    assert 'reason="REJECTED"' in alerts["TritonRecOverloaded"]
    assert 'reason!="REJECTED"' in alerts["TritonRecHighErrorRate"]
    assert f'deployment="{FULLNAME}"' in alerts["TritonRecReplicasUnavailable"]


def test_dashboard_is_grafana_json_plotting_queue_compute_throughput_errors_and_gpu(rendered):
    r = rendered["gpu-hpa"]
    config_map = r.one("ConfigMap", f"{FULLNAME}-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(config_map["data"]["tritonrec-triton.json"])
    exprs = " ".join(t["expr"] for panel in dashboard["panels"] for t in panel["targets"])
    for metric in (
        "nv_inference_queue_duration_us",
        "nv_inference_compute_infer_duration_us",
        "nv_inference_request_success",
        "nv_inference_request_failure",
        "nv_gpu_utilization",
        "nv_gpu_memory_used_bytes",
    ):
        assert metric in exprs, metric
    job = next(v for v in dashboard["templating"]["list"] if v["name"] == "job")
    assert job["query"] == FULLNAME
    assert "pod=~" not in exprs and exprs.count('job="$job"') == exprs.count("nv_")


def test_network_policy_admits_declared_clients_to_grpc_and_scrapers_to_metrics(rendered):
    r = rendered["gpu-hpa"]
    policy = r.one("NetworkPolicy", FULLNAME)["spec"]
    assert policy["policyTypes"] == ["Ingress"]
    by_ports = {tuple(sorted(p["port"] for p in rule["ports"])): rule["from"] for rule in policy["ingress"]}
    clients = by_ports[("grpc", "http")]
    assert {"kubernetes.io/metadata.name": "search"} in [
        c.get("namespaceSelector", {}).get("matchLabels") for c in clients
    ]
    assert {"app.kubernetes.io/instance": RELEASE, "app.kubernetes.io/component": "loadtest"} in [
        c.get("podSelector", {}).get("matchLabels") for c in clients
    ]
    assert by_ports[("metrics",)] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    minimal = rendered["minimal"].one("NetworkPolicy", FULLNAME)["spec"]["ingress"]
    assert [sorted(p["port"] for p in rule["ports"]) for rule in minimal] == [["metrics"]]  # no client declared


def test_grpc_ingress_and_route_send_grpc_to_the_grpc_port(rendered):
    r = rendered["gpu-hpa"]
    ingress = r.one("Ingress")
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/backend-protocol"] == "GRPC"
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": FULLNAME, "port": {"name": "grpc"}}
    route = r.one("GRPCRoute")["spec"]
    assert route["rules"][0]["backendRefs"] == [{"name": FULLNAME, "port": 8001}]


def test_object_storage_is_fetched_then_engines_built_before_triton_starts(rendered):
    r = rendered["s3-engine-build"]
    pod = r.triton["spec"]["template"]["spec"]
    fetch, build = pod["initContainers"]
    assert fetch["name"] == "fetch-model-repository"
    assert fetch["args"][:3] == ["copy", "src:tritonrec-models/beauty-base/model_repository", "/models"]
    assert {"name": "RCLONE_CONFIG_SRC_TYPE", "value": "s3"} in fetch["env"]
    assert build["name"] == "build-trt-engines"
    assert build["image"] == "nvcr.io/nvidia/tensorrt:24.10-py3"
    assert build["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert '--model "ranker_trt_fp16" --precision fp16' in build["args"][0]
    assert '--onnx "/models/ranker_trt_fp16/1/model_offsets.onnx"' in build["args"][0]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["model-repository"]["emptyDir"]["sizeLimit"] == "20Gi"
    script = r.one("ConfigMap", f"{FULLNAME}-engine-build")["data"]["build_trt_engines.sh"]
    assert script == (ROOT / "export" / "build_trt_engines.sh").read_text().rstrip("\n")


def test_engine_build_job_runs_as_a_hook_after_its_script(rendered):
    r = rendered["pvc-engine-job"]
    job = r.one("Job", f"{FULLNAME}-engine-build")
    config_map = r.one("ConfigMap", f"{FULLNAME}-engine-build")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert config_map["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(config_map["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        job["metadata"]["annotations"]["helm.sh/hook-weight"]
    )
    pod = job["spec"]["template"]["spec"]
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == "tritonrec-models-rwx"
    assert pod["containers"][0]["volumeMounts"][0]["subPath"] == "beauty-base"
    assert "serviceAccountName" not in pod  # the chart's ServiceAccount does not exist yet at pre-install
    assert "initContainers" not in r.triton["spec"]["template"]["spec"]


def test_locust_load_test_runs_the_bench_locustfile_against_the_grpc_service(rendered):
    r = rendered["gpu-hpa"]
    master = r.one("Job", f"{FULLNAME}-locust-master")["spec"]["template"]["spec"]["containers"][0]
    workers = r.one("Deployment", f"{FULLNAME}-locust-worker")
    assert master["args"][:4] == [
        "-f",
        "bench/locustfile.py",
        "--host",
        f"{FULLNAME}.{NAMESPACE}.svc.cluster.local:8001",
    ]
    assert "--headless" in master["args"] and master["args"][master["args"].index("--expect-workers") + 1] == "4"
    assert {"name": "TRITONREC_SCENARIO", "value": "bench/scenarios/smoke.toml"} in master["env"]
    worker = workers["spec"]["template"]["spec"]["containers"][0]
    assert worker["args"][worker["args"].index("--master-host") + 1] == f"{FULLNAME}-locust-master"
    assert workers["spec"]["replicas"] == 4


def test_values_file_points_editors_at_the_schema_and_comments_every_key_the_schema_defines():
    """Every key declared in values.schema.json's properties has a comment line right above it in values.yaml."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    assert lines[0] == "# yaml-language-server: $schema=values.schema.json"
    schema = json.loads((CHART / "values.schema.json").read_text())
    stack: list[tuple[int, dict[str, Any] | None]] = []
    bare = []
    for i, line in enumerate(lines):
        match = re.match(r"^(\s*)([A-Za-z][\w./-]*):", line)
        if not match:
            continue
        indent, key = len(match.group(1)), match.group(2)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1] if stack else schema
        node = (parent or {}).get("properties", {}).get(key)
        if node is not None and not lines[i - 1].lstrip().startswith("#"):
            bare.append(f"line {i + 1}: {line.strip()}")
        stack.append((indent, node))
    assert not bare, "keys without a comment right above them:\n" + "\n".join(bare)


def test_readme_adapter_rule_is_the_one_the_chart_renders(rendered):
    readme = (ROOT / "helm" / "README.md").read_text()
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", readme, re.S) if "custom:" in b)
    pasted = yaml.safe_load(block)["rules"]["custom"]
    rules = yaml.safe_load(rendered["gpu-hpa"].one("ConfigMap", f"{FULLNAME}-adapter-rules")["data"]["rules.yaml"])
    assert pasted == rules[:2]  # inference rate and queue-time guard (GPU utilisation is optional)


def test_notes_name_the_headless_target_and_the_adapter_check(helm):
    values = str(CHART / "ci" / "gpu-hpa-values.yaml")
    result = run_helm(helm, "install", "--dry-run=client", RELEASE, str(CHART), "-n", NAMESPACE, "-f", values)
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)[1]
    assert f"dns:///{FULLNAME}-headless.{NAMESPACE}.svc.cluster.local:8001" in notes
    assert "grpc.lb_policy_name=round_robin" in notes
    assert "/apis/custom.metrics.k8s.io/v1beta1/namespaces/ranking/pods/*/tritonrec_queue_time_per_request_us" in notes
    assert "/apis/custom.metrics.k8s.io/v1beta1/namespaces/ranking/pods/*/tritonrec_inferences_per_second" in notes
    assert "--model ranker_onnx" in notes


def test_engine_build_takes_the_request_limits_from_the_model_config_not_from_values(rendered):
    """Request limits are stated once, in config.pbtxt: the chart passes only the shapes TensorRT tunes for."""
    for scenario in ("s3-engine-build", "pvc-engine-job"):
        r = rendered[scenario]
        pods = [pod for _name, pod in _pod_specs(r)]
        (build,) = [c for pod in pods for c in _containers(pod) if c["name"] == "build-trt-engines"]
        names = {e["name"] for e in build["env"]}
        assert {"TRITONREC_OPT_BATCH", "TRITONREC_OPT_CANDIDATES"} <= names, scenario
        assert not names & {"TRITONREC_MAX_BATCH", "TRITONREC_HISTORY_LENGTH", "TRITONREC_MAX_CANDIDATES"}, scenario
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(values["engineBuild"]["shapes"]) == {"optBatch", "optCandidates"}
