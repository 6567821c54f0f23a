"""Bad values fail `helm template` and `helm lint --strict` with a message that names the key and the problem."""

from __future__ import annotations

import pytest
from helm_render import CHART, run_helm, template

pytestmark = pytest.mark.integration

# (--set/--set-json arguments, fragments the error must contain)
SCHEMA_ERRORS = {
    "negative replicas": (["--set", "replicaCount=-1"], ["/replicaCount", "minimum: got -1, want 0"]),
    "unknown model control mode": (
        ["--set", "triton.modelControlMode=auto"],
        ["/triton/modelControlMode", "value must be one of 'none', 'explicit', 'poll'"],
    ),
    "s3 source without bucket": (
        ["--set", "modelRepository.source=s3"],
        ["/modelRepository/s3/bucket", "minLength: got 0, want 3"],
    ),
    "gcs source with a bad bucket name": (
        ["--set", "modelRepository.source=gcs", "--set", "modelRepository.gcs.bucket=Models!"],
        ["/modelRepository/gcs/bucket", "does not match pattern"],
    ),
    "pvc source without claim": (
        ["--set", "modelRepository.pvc.existingClaim="],
        ["/modelRepository/pvc/existingClaim", "minLength: got 0, want 1"],
    ),
    "unpinned image": (["--set", "image.tag=latest"], ["/image/tag", "'latest' does not match pattern"]),
    "misspelt key": (["--set", "triton.strictReadyness=false"], ["/triton", "'strictReadyness' not allowed"]),
    "unknown restricted protocol": (
        ["--set-json", 'triton.restrictedApis.protocols=["model-control"]'],
        ["/triton/restrictedApis/protocols/0", "value must be one of"],
    ),
    "unknown engine precision": (
        ["--set-json", 'engineBuild.engines=[{"model":"m","precision":"fp8","onnx":"m/1/model.onnx"}]'],
        ["/engineBuild/engines/0/precision", "value must be one of 'fp16', 'int8'"],
    ),
    "engine limits repeated in values": (
        ["--set", "engineBuild.shapes.maxCandidates=2048"],
        ["/engineBuild/shapes", "'maxCandidates' not allowed"],
    ),
    "GPU utilisation above 1": (
        ["--set", "autoscaling.gpuUtilization.target=80"],
        ["/autoscaling/gpuUtilization/target", "maximum: got 80, want 1"],
    ),
}

# Rules across keys, checked in the templates with `fail`.
TEMPLATE_ERRORS = {
    "grace period shorter than drain": (
        ["--set", "termination.gracePeriodSeconds=20"],
        ["termination.gracePeriodSeconds (20) must be at least", "(45)"],
    ),
    "engine Job without a PVC": (
        [
            "--set",
            "engineBuild.enabled=true,engineBuild.mode=job,modelRepository.source=s3,modelRepository.s3.bucket=models",
        ],
        ["engineBuild.mode=job writes engines onto the PVC and needs modelRepository.source=pvc"],
    ),
    "engine build without a GPU": (
        ["--set", "engineBuild.enabled=true,gpu.count=0"],
        ["engineBuild.enabled needs a GPU"],
    ),
    "explicit mode with no model": (
        ["--set-json", "triton.loadModels=[]"],
        ["triton.modelControlMode=explicit with an empty triton.loadModels loads no model"],
    ),
    "load test without an image": (["--set", "loadTest.enabled=true"], ["loadTest.enabled needs loadTest.image"]),
}

CASES = {**SCHEMA_ERRORS, **TEMPLATE_ERRORS}


@pytest.mark.parametrize("case", sorted(CASES))
def test_helm_template_rejects_bad_values_with_a_readable_message(helm, case):
    args, fragments = CASES[case]
    result = template(helm, *args)
    assert result.returncode != 0, f"{case}: rendered without error"
    for fragment in fragments:
        assert fragment in result.stderr, f"{case}: {fragment!r} not in:\n{result.stderr}"


@pytest.mark.parametrize("case", sorted(SCHEMA_ERRORS))
def test_helm_lint_strict_rejects_values_the_schema_forbids(helm, case):
    args, fragments = SCHEMA_ERRORS[case]
    result = run_helm(helm, "lint", "--strict", str(CHART), *args)
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"{case}: lint passed"
    assert "[ERROR] values.yaml" in output and fragments[0] in output, output
