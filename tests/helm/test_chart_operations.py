"""Operational defects of the chart (issue 18), each pinned by a test on the real helm's render.

The PromQL itself is evaluated by `promtool test rules` (test_prometheus_rules.py) and by a real Prometheus
scraping a real tritonserver (tests/integration/test_chart_queries_prometheus.py); here: what the chart renders.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from helm_render import CHART, NAMESPACE, RELEASE, Rendered, load_objects, run_helm, template

pytestmark = pytest.mark.integration

FULLNAME = f"{RELEASE}-tritonrec"
SELECTOR = f'namespace="{NAMESPACE}",job="{FULLNAME}"'


def render(helm, *args: str, scenario: str = "minimal") -> Rendered:
    result = template(helm, "--values", str(CHART / "ci" / f"{scenario}-values.yaml"), *args)
    assert result.returncode == 0, result.stderr
    return Rendered(scenario, load_objects(result.stdout))


def promql_of(rendered: Rendered) -> list[str]:
    """Every PromQL expression the chart renders: adapter rules, KEDA triggers, alert/record rules, dashboard."""
    exprs = []
    for obj in rendered.objects:
        if obj["kind"] == "ConfigMap" and "rules.yaml" in obj.get("data", {}):
            exprs += [r["metricsQuery"] for r in yaml.safe_load(obj["data"]["rules.yaml"])]
        elif obj["kind"] == "ConfigMap" and "tritonrec-triton.json" in obj.get("data", {}):
            dashboard = json.loads(obj["data"]["tritonrec-triton.json"])
            exprs += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
        elif obj["kind"] == "ScaledObject":
            exprs += [t["metadata"]["query"] for t in obj["spec"]["triggers"]]
        elif obj["kind"] == "PrometheusRule":
            exprs += [r["expr"] for g in obj["spec"]["groups"] for r in g["rules"]]
    return exprs


def flags_of(container: dict[str, Any]) -> dict[str, str]:
    return dict(a.split("=", 1) for a in container["args"] if a.startswith("--") and "=" in a)


# -- error ratio: aggregated on both sides of the `reason` label --------------------------------------------------


@pytest.mark.parametrize("scenario", ["gpu-hpa"])
def test_failure_ratios_aggregate_success_and_failure_separately(rendered, scenario):
    """rate(success) + rate(failure) matches nothing: failure carries `reason`, success does not."""
    exprs = [e for e in promql_of(rendered[scenario]) if "nv_inference_request_failure" in e and "/" in e]
    assert len(exprs) >= 3  # overload and error alerts, dashboard ratio
    one_to_one = re.compile(r"rate\(nv_inference_request_success\{[^}]*\}\[[^]]*\]\)\s*\+\s*rate\(")
    for expr in exprs:
        assert not one_to_one.search(expr), expr
        for rate in re.finditer(r"rate\(nv_inference_request_(?:success|failure)\{", expr):
            assert re.search(r"sum by \([^)]*\) \($", expr[: rate.start()]), f"unaggregated rate in {expr}"


# -- series selected by the Service's job label ------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["gpu-hpa", "s3-engine-build"])
def test_series_are_selected_by_namespace_and_job_never_by_pod_name(rendered, scenario):
    exprs = promql_of(rendered[scenario])
    assert exprs
    for expr in exprs:
        assert "pod=~" not in expr, expr
        for selector in re.findall(r"(?:nv_|up)\w*\{([^}]*)\}", expr):
            if "<<.LabelMatchers>>" in selector:
                assert f'job="{FULLNAME}"' in selector, expr
            elif "$job" in selector:
                assert 'job="$job"' in selector, expr
            else:
                assert SELECTOR in selector, expr


def test_service_monitor_selects_only_the_service_whose_name_is_the_job_label(rendered):
    r = rendered["gpu-hpa"]
    wanted = r.one("ServiceMonitor")["spec"]["selector"]["matchLabels"]
    selected = [s for s in r.all("Service") if wanted.items() <= s["metadata"]["labels"].items()]
    assert [s["metadata"]["name"] for s in selected] == [FULLNAME]
    assert "metrics" in {p["name"] for p in selected[0]["spec"]["ports"]}


def test_a_release_name_that_kubernetes_truncates_in_pod_names_keeps_its_job_selector(helm):
    long_release = "ranking-service-production-eu-west-1-blue"  # pod names get cut at 63 characters
    result = run_helm(
        helm, "template", long_release, str(CHART), "-n", NAMESPACE, "-f", str(CHART / "ci" / "gpu-hpa-values.yaml")
    )
    assert result.returncode == 0, result.stderr
    objects = load_objects(result.stdout)
    (service,) = [
        o for o in objects if o["kind"] == "Service" and o["metadata"]["labels"].get("tritonrec.io/service") == "main"
    ]
    assert len(service["metadata"]["name"]) <= 63
    rules = next(o for o in objects if o["kind"] == "PrometheusRule")
    assert f'job="{service["metadata"]["name"]}"' in json.dumps(rules["spec"]).replace('\\"', '"')


# -- autoscaling: proportional primary metric, queue time as guard, no GPU utilisation on MIG --------------------


def test_primary_hpa_metric_is_the_per_pod_inference_rate_and_queue_time_is_second(rendered):
    metrics = rendered["gpu-hpa"].one("HorizontalPodAutoscaler")["spec"]["metrics"]
    names = [m["pods"]["metric"]["name"] for m in metrics]
    assert names[:2] == ["tritonrec_inferences_per_second", "tritonrec_queue_time_per_request_us"]


def test_autoscaling_needs_a_measured_rate_target(helm):
    result = template(helm, "--set", "autoscaling.enabled=true")
    assert result.returncode != 0
    assert "autoscaling.enabled needs autoscaling.inferenceRate.targetPerPod" in result.stderr
    assert "tritonrec bench sweep" in result.stderr


def test_gpu_utilisation_scaling_is_refused_on_mig_slices(helm):
    result = template(
        helm,
        "-f",
        str(CHART / "ci" / "gpu-hpa-values.yaml"),
        "--set",
        "gpu.resourceName=nvidia.com/mig-1g.10gb",
    )
    assert result.returncode != 0
    assert "autoscaling.gpuUtilization on MIG slices (gpu.resourceName nvidia.com/mig-1g.10gb) is refused" in (
        result.stderr
    )
    without = template(
        helm,
        "-f",
        str(CHART / "ci" / "gpu-hpa-values.yaml"),
        "--set",
        "gpu.resourceName=nvidia.com/mig-1g.10gb,autoscaling.gpuUtilization.enabled=false",
    )
    assert without.returncode == 0, without.stderr


# -- long-lived gRPC connections reach new pods ------------------------------------------------------------------


def test_grpc_connections_have_a_maximum_age_so_clients_reach_new_pods(rendered, helm):
    flags = flags_of(rendered["minimal"].triton_container)
    assert flags["--grpc-max-connection-age"] == "120000"  # milliseconds
    assert flags["--grpc-max-connection-age-grace"] == "30000"
    off = render(helm, "--set", "triton.grpcMaxConnectionAgeSeconds=0")
    assert not any(a.startswith("--grpc-max-connection-age") for a in off.triton_container["args"])


def _bundled_tritonserver() -> tuple[Path, Path] | None:
    try:
        import pytriton
    except ImportError:
        return None
    root = Path(pytriton.__file__).parent
    binary, libs = root / "tritonserver" / "bin" / "tritonserver", root.parent / "nvidia_pytriton.libs"
    return (binary, libs) if binary.is_file() else None


@pytest.mark.parametrize("scenario", ["gpu-hpa", "s3-engine-build", "cpu-only"])
def test_every_rendered_tritonserver_flag_exists_in_the_bundled_binary(rendered, scenario):
    """The flag names the chart passes, checked against `tritonserver --help` of Triton 2.51 (nvidia-pytriton)."""
    found = _bundled_tritonserver()
    if found is None:
        message = "nvidia-pytriton (tritonserver 2.51) is not installed: pip install -e '.[serve]'"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    binary, libs = found
    env = {**os.environ, "LD_LIBRARY_PATH": str(libs)}
    done = subprocess.run([str(binary), "--help"], capture_output=True, text=True, env=env, timeout=60, check=False)
    help_text = done.stdout + done.stderr  # tritonserver prints its usage on stderr
    known = set(re.findall(r"^\s+(--[a-z0-9-]+)", help_text, re.M))
    assert "--grpc-max-connection-age" in known  # guards the parsing
    rendered_flags = {a.split("=", 1)[0] for a in rendered[scenario].triton_container["args"][1:]}
    assert rendered_flags <= known, rendered_flags - known


# -- rollouts: progress deadline, alert durations, engine builds ---------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "budget"),
    [
        ("minimal", 600 + 10 * 60),  # image pull + startup probe
        ("s3-engine-build", 600 + 1800 + 10 * 90),  # + engine build timeout in the init container
        ("pvc-engine-job", 600 + 10 * 60),  # the hook Job builds before the Deployment changes
    ],
)
def test_progress_deadline_covers_image_pull_engine_build_and_model_loading(rendered, scenario, budget):
    """Kubernetes' default (600 s) marks a rollout failed while a new GPU pod is still pulling or building."""
    assert rendered[scenario].triton["spec"]["progressDeadlineSeconds"] == budget


def test_a_progress_deadline_below_the_startup_budget_is_refused(helm):
    result = template(helm, "--set", "updateStrategy.progressDeadlineSeconds=600")
    assert result.returncode != 0
    assert "updateStrategy.progressDeadlineSeconds (600) is shorter than a new pod's startup budget (1200 s" in (
        result.stderr
    )
    assert (
        render(helm, "--set", "updateStrategy.progressDeadlineSeconds=1500").triton["spec"]["progressDeadlineSeconds"]
        == 1500
    )


@pytest.mark.parametrize(("scenario", "scale_up_for"), [("gpu-hpa", "20m"), ("s3-engine-build", "55m")])
def test_alerts_a_scale_up_trips_wait_longer_than_a_new_pod_needs(helm, scenario, scale_up_for):
    r = render(helm, "--set", "metrics.prometheusRule.enabled=true", scenario=scenario)
    rules = {x["alert"]: x for x in r.one("PrometheusRule")["spec"]["groups"][0]["rules"] if "alert" in x}
    for name in ("TritonRecHighQueueTime", "TritonRecOverloaded", "TritonRecReplicasUnavailable"):
        assert rules[name]["for"] == scale_up_for, name
        minutes = int(rules[name]["for"].removesuffix("m"))
        assert minutes * 60 >= r.triton["spec"]["progressDeadlineSeconds"], name
    for name in ("TritonRecHighErrorRate", "TritonRecMetricsDown", "TritonRecRolloutStuck"):
        assert rules[name]["for"] == "5m", name
    explicit = render(
        helm, "--set", "metrics.prometheusRule.enabled=true,metrics.prometheusRule.scaleUpFor=90m", scenario=scenario
    )
    rules = explicit.one("PrometheusRule")["spec"]["groups"][0]["rules"]
    assert next(x for x in rules if x.get("alert") == "TritonRecHighQueueTime")["for"] == "90m"


def test_engine_builds_in_an_init_container_are_bounded_by_a_timeout(rendered):
    build = next(
        c
        for c in rendered["s3-engine-build"].triton["spec"]["template"]["spec"]["initContainers"]
        if c["name"] == "build-trt-engines"
    )
    script = build["args"][0]
    assert "deadline=$((SECONDS + 1800))" in script and 'timeout "$left" /opt/tritonrec/build_trt_engines.sh' in script
    assert "--replace-other-gpu" not in script


def test_replacing_plans_of_another_gpu_type_is_an_explicit_choice(helm):
    r = render(helm, "--set", "engineBuild.replaceOtherGpuPlans=true", scenario="s3-engine-build")
    build = next(c for c in r.triton["spec"]["template"]["spec"]["initContainers"] if c["name"] == "build-trt-engines")
    assert '"$@" --replace-other-gpu' in build["args"][0]


def _job_render(helm, *args: str) -> Rendered:
    return render(helm, *args, scenario="pvc-engine-job")


def test_engine_build_job_is_fingerprinted_and_bounded(helm, rendered):
    r = rendered["pvc-engine-job"]
    job = r.one("Job", f"{FULLNAME}-engine-build")
    assert job["spec"]["activeDeadlineSeconds"] == 1800
    fingerprint = r.triton["spec"]["template"]["metadata"]["annotations"]["tritonrec.io/engine-build-inputs"]
    assert re.fullmatch(r"[0-9a-f]{16}", fingerprint)
    # Same inputs, same fingerprint (so an upgrade that changes nothing else skips the Job) ...
    again = _job_render(helm, "--set", "replicaCount=3", "--is-upgrade")
    assert again.triton["spec"]["template"]["metadata"]["annotations"]["tritonrec.io/engine-build-inputs"] == (
        fingerprint
    )
    # ... and without a cluster to compare with (helm template, GitOps) the Job is rendered even on upgrade.
    assert again.one("Job", f"{FULLNAME}-engine-build")
    for change in (
        "modelRepository.revision=v2",
        "engineBuild.image.tag=24.11-py3",
        "engineBuild.shapes.optCandidates=400",
        "modelRepository.pvc.subPath=other",
    ):
        changed = _job_render(helm, "--set", change)
        annotations = changed.triton["spec"]["template"]["metadata"]["annotations"]
        assert annotations["tritonrec.io/engine-build-inputs"] != fingerprint, change


def test_notes_tell_the_helm_timeout_a_hook_build_needs(helm):
    values = str(CHART / "ci" / "pvc-engine-job-values.yaml")
    result = run_helm(helm, "install", "--dry-run=client", RELEASE, str(CHART), "-n", NAMESPACE, "-f", values)
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)[1]
    assert "--timeout 2100s" in notes and "engineBuild.timeoutSeconds (1800 s)" in notes


# -- admin key under helm template / GitOps ----------------------------------------------------------------------


def test_an_existing_admin_key_secret_makes_renders_reproducible(helm):
    args = ("--set", "triton.restrictedApis.existingSecret=triton-admin,triton.restrictedApis.secretKey=key")
    first, second = (template(helm, *args) for _ in range(2))
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout  # nothing random: a GitOps sync finds no diff
    objects = load_objects(first.stdout)
    assert not [o for o in objects if o["kind"] == "Secret"]
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    key = next(e for e in env if e["name"] == "TRITON_ADMIN_KEY")
    assert key["valueFrom"]["secretKeyRef"] == {"name": "triton-admin", "key": "key"}


def test_notes_warn_that_a_generated_admin_key_changes_on_every_gitops_render(helm):
    result = run_helm(helm, "install", "--dry-run=client", RELEASE, str(CHART), "-n", NAMESPACE)
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)[1]
    assert "renders a new random key on every sync" in notes and "triton.restrictedApis.existingSecret" in notes
    with_secret = run_helm(
        helm,
        "install",
        "--dry-run=client",
        RELEASE,
        str(CHART),
        "-n",
        NAMESPACE,
        "--set",
        "triton.restrictedApis.existingSecret=triton-admin",
    )
    assert "random key" not in with_secret.stdout.split("NOTES:", 1)[1]


def _triton_container(rendered: Rendered) -> dict[str, Any]:
    pod = rendered.one("Deployment")["spec"]["template"]["spec"]
    return next(c for c in pod["containers"] if c["name"] == "triton")


def test_cpu_pods_share_their_cpu_limit_out_as_instances_x_threads(rendered, tmp_path, monkeypatch):
    """The rendered CPU limit, written as the container's cgroup quota, is exactly what ranker_cpu's threads use.

    A Kubernetes node and its quota cannot be had here: the node's 64 cores are a patched ``sched_getaffinity``
    and the quota a ``cpu.max`` file, read by the same code the model runs inside the server.
    """
    from google.protobuf import json_format

    from tritonrec.backends.ranker_cpu_model import session_threads
    from tritonrec.data.feature_spec import FeatureSpec
    from tritonrec.repository import VARIANTS, VariantName
    from tritonrec.repository.variants import model_config

    resources = _triton_container(rendered["cpu-only"])["resources"]
    assert resources["requests"]["cpu"] == resources["limits"]["cpu"]
    limit = int(resources["limits"]["cpu"])
    config = json_format.MessageToDict(
        model_config(VARIANTS[VariantName.CPU], FeatureSpec(n_items=100, history_len=50)),
        preserving_proto_field_name=True,
    )
    instances = sum(int(g.get("count", 1)) for g in config["instance_group"])
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    (tmp_path / "cpu.max").write_text(f"{limit * 100_000} 100000\n")
    assert instances * session_threads(config, tmp_path) == limit
    (tmp_path / "cpu.max").write_text("max 100000\n")  # no quota: the node's cores, 8x the limit
    assert instances * session_threads(config, tmp_path) == 64


@pytest.mark.parametrize(
    ("requests", "limits"),
    [("4", "8"), ("7500m", "7500m"), ("2.5", "2.5")],
    ids=["request-below-limit", "fractional-millicores", "fractional-cpus"],
)
def test_cpu_pods_with_requests_below_limits_or_fractional_cpus_are_refused(helm, requests, limits):
    result = template(
        helm,
        "--values",
        str(CHART / "ci" / "cpu-only-values.yaml"),
        "--set-string",
        f"resources.requests.cpu={requests},resources.limits.cpu={limits}",
    )
    assert result.returncode != 0
    assert "must equal resources.limits.cpu" in result.stderr


def test_cpu_pods_accept_a_limit_in_millicores_equal_to_the_request(helm):
    result = template(
        helm,
        "--values",
        str(CHART / "ci" / "cpu-only-values.yaml"),
        "--set-string",
        "resources.requests.cpu=8,resources.limits.cpu=8000m",
    )
    assert result.returncode == 0, result.stderr
