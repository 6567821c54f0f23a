"""export/build_trt_engines.sh with stand-ins for trtexec and nvidia-smi: what it builds, when it skips.

The chart ships the script through a ConfigMap (`.Files.Get` reads only files inside the chart), so the chart
holds a copy; the first test keeps the copy byte-identical with export/'s.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "export" / "build_trt_engines.sh"
CHART_COPY = ROOT / "helm" / "tritonrec" / "scripts" / "build_trt_engines.sh"

pytestmark = pytest.mark.unit

FAKE_TRTEXEC = """#!/usr/bin/env bash
printf '%s\\n' "$*" >> "$CALLS"
[[ "${FAKE_TRTEXEC_RC:-0}" == 0 ]] || exit "$FAKE_TRTEXEC_RC"
for arg in "$@"; do
    case "$arg" in --saveEngine=*) echo "engine from $*" > "${arg#--saveEngine=}" ;; esac
done
"""
FAKE_NVIDIA_SMI = """#!/usr/bin/env bash
echo "${FAKE_GPU:-NVIDIA L4, 8.9}"
"""


@pytest.fixture
def repo(tmp_path):
    """A model repository with ranker_onnx's ONNX and ranker_trt_fp16's config, plus a PATH with the stand-ins."""
    repo = tmp_path / "repo"
    (repo / "ranker_onnx" / "1").mkdir(parents=True)
    (repo / "ranker_onnx" / "1" / "model.onnx").write_bytes(b"onnx-v1")
    (repo / "ranker_trt_fp16").mkdir()
    (repo / "ranker_trt_fp16" / "config.pbtxt").write_text('name: "ranker_trt_fp16"\n')
    (repo / "ranker_trt_int8").mkdir()
    (repo / "ranker_trt_int8" / "config.pbtxt").write_text('name: "ranker_trt_int8"\n')
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("trtexec", FAKE_TRTEXEC), ("nvidia-smi", FAKE_NVIDIA_SMI)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return repo


def build(repo: Path, *extra: str, model: str = "ranker_trt_fp16", precision: str = "fp16", **env: str):
    args = ["--repo", str(repo), "--model", model, "--precision", precision]
    args += ["--onnx", str(repo / "ranker_onnx" / "1" / "model.onnx"), *extra]
    environment = {
        **os.environ,
        "PATH": f"{repo.parent / 'bin'}:{os.environ['PATH']}",
        "CALLS": str(repo.parent / "calls.txt"),
        "TRT_VERSION": "10.5.0.18",
        **env,
    }
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env=environment, timeout=30, check=False
    )


def trtexec_calls(repo: Path) -> list[list[str]]:
    calls = repo.parent / "calls.txt"
    return [shlex.split(line) for line in calls.read_text().splitlines()] if calls.exists() else []


def test_chart_copy_is_byte_identical_to_the_export_script():
    assert CHART_COPY.read_bytes() == SCRIPT.read_bytes(), (
        "helm/tritonrec/scripts/build_trt_engines.sh drifted from export/build_trt_engines.sh: "
        "cp export/build_trt_engines.sh helm/tritonrec/scripts/"
    )
    assert os.access(SCRIPT, os.X_OK)


def test_builds_the_plan_with_the_repository_shapes_and_stamps_it(repo):
    result = build(repo)
    assert result.returncode == 0, result.stderr
    plan = repo / "ranker_trt_fp16" / "1" / "model.plan"
    assert plan.read_text().startswith("engine from")
    (call,) = trtexec_calls(repo)
    assert f"--onnx={repo}/ranker_onnx/1/model.onnx" in call and "--fp16" in call and "--int8" not in call
    assert "--minShapes=history:1x50,candidates:1x1" in call
    assert "--optShapes=history:16x50,candidates:16x200" in call
    assert "--maxShapes=history:64x50,candidates:64x2048" in call
    stamp = (repo / "ranker_trt_fp16" / "1" / "model.plan.stamp").read_text()
    assert "gpu=NVIDIA L4, 8.9\ntensorrt=10.5.0.18\nprecision=fp16\nonnx_sha256=" in stamp
    assert not list((repo / "ranker_trt_fp16" / "1").glob(".model.plan.*"))  # no temporary file left


def test_skips_when_the_stamp_matches_and_rebuilds_for_another_gpu_tensorrt_or_onnx(repo):
    assert build(repo).returncode == 0
    again = build(repo)
    assert again.returncode == 0 and "up to date" in again.stdout
    assert len(trtexec_calls(repo)) == 1
    assert build(repo, FAKE_GPU="NVIDIA H100 80GB HBM3, 9.0").returncode == 0
    assert build(repo, FAKE_GPU="NVIDIA H100 80GB HBM3, 9.0", TRT_VERSION="10.6.0.26").returncode == 0
    (repo / "ranker_onnx" / "1" / "model.onnx").write_bytes(b"onnx-v2")
    assert build(repo, FAKE_GPU="NVIDIA H100 80GB HBM3, 9.0", TRT_VERSION="10.6.0.26").returncode == 0
    assert len(trtexec_calls(repo)) == 4
    assert build(repo, "--force", FAKE_GPU="NVIDIA H100 80GB HBM3, 9.0", TRT_VERSION="10.6.0.26").returncode == 0
    assert len(trtexec_calls(repo)) == 5


def test_failed_build_keeps_the_previous_plan_and_stamp(repo):
    assert build(repo).returncode == 0
    version = repo / "ranker_trt_fp16" / "1"
    before = (version / "model.plan").read_text(), (version / "model.plan.stamp").read_text()
    failed = build(repo, TRT_VERSION="10.6.0.26", FAKE_TRTEXEC_RC="3")
    assert failed.returncode == 1 and "trtexec failed for ranker_trt_fp16" in failed.stderr
    assert ((version / "model.plan").read_text(), (version / "model.plan.stamp").read_text()) == before
    assert not list(version.glob(".model.plan.*"))


def test_int8_allows_fp16_fallback_layers(repo):
    assert build(repo, model="ranker_trt_int8", precision="int8").returncode == 0
    (call,) = trtexec_calls(repo)
    assert "--int8" in call and "--fp16" in call
    assert (repo / "ranker_trt_int8" / "1" / "model.plan").is_file()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"precision": "fp8"}, "--precision must be fp16 or int8, not 'fp8'"),
        ({"model": "ranker_missing"}, "ranker_missing/config.pbtxt not found"),
    ],
)
def test_bad_arguments_exit_2_with_the_reason(repo, kwargs, message):
    result = build(repo, **kwargs)
    assert result.returncode == 2 and message in result.stderr
    assert trtexec_calls(repo) == []
