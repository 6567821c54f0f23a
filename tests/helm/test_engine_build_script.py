"""export/build_trt_engines.sh with stand-ins for trtexec and nvidia-smi: what it builds, when it skips.

The chart ships the script through a ConfigMap (`.Files.Get` reads only files inside the chart), so the chart
holds a copy; the first test keeps the copy byte-identical with export/'s. The engine's shapes come from the
model's config.pbtxt (max_batch_size and the max_history / max_candidates parameters), stated there once.
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
L4, H100, A10G = "NVIDIA L4, 8.9", "NVIDIA H100 80GB HBM3, 9.0", "NVIDIA A10G, 8.6"


def trt_config(name: str, *, max_batch: int = 64, history: int = 50, candidates: int = 2048, extra: str = "") -> str:
    """A tensorrt_plan config.pbtxt carrying the request limits the way `tritonrec repo build` writes them."""
    return (
        f'name: "{name}"\nplatform: "tensorrt_plan"\nmax_batch_size: {max_batch}\n'
        f'default_model_filename: "model.plan"\n{extra}'
        f'parameters {{\n  key: "max_candidates"\n  value {{\n    string_value: "{candidates}"\n  }}\n}}\n'
        f'parameters {{\n  key: "max_history"\n  value {{\n    string_value: "{history}"\n  }}\n}}\n'
        "model_warmup {\n  batch_size: 1\n}\n"
    )


@pytest.fixture
def repo(tmp_path):
    """A model repository as `tritonrec repo build` writes it without a plan (ranker_trt_fp16: config and the ONNX
    its engine is built from), plus a PATH with the stand-ins."""
    repo = tmp_path / "repo"
    (repo / "ranker_trt_fp16" / "1").mkdir(parents=True)
    (repo / "ranker_trt_fp16" / "1" / "model_offsets.onnx").write_bytes(b"onnx-v1")
    for name in ("ranker_trt_fp16", "ranker_trt_int8"):
        (repo / name).mkdir(exist_ok=True)
        (repo / name / "config.pbtxt").write_text(trt_config(name))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("trtexec", FAKE_TRTEXEC), ("nvidia-smi", FAKE_NVIDIA_SMI)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return repo


def build(repo: Path, *extra: str, model: str = "ranker_trt_fp16", precision: str = "fp16", **env: str):
    args = ["--repo", str(repo), "--model", model, "--precision", precision]
    args += ["--onnx", str(repo / "ranker_trt_fp16" / "1" / "model_offsets.onnx"), *extra]
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
    assert f"--onnx={repo}/ranker_trt_fp16/1/model_offsets.onnx" in call and "--fp16" in call and "--int8" not in call
    assert "--minShapes=history:1x50,candidates:1x1" in call
    assert "--optShapes=history:16x50,candidates:16x200" in call
    assert "--maxShapes=history:64x50,candidates:64x2048" in call
    stamp = (repo / "ranker_trt_fp16" / "1" / "model.plan.stamp").read_text()
    assert "gpu=NVIDIA L4, 8.9\ntensorrt=10.5.0.18\nprecision=fp16\nonnx_sha256=" in stamp
    assert not list((repo / "ranker_trt_fp16" / "1").glob(".model.plan.*"))  # no temporary file left


def test_skips_when_the_stamp_matches_and_rebuilds_for_another_tensorrt_or_onnx(repo):
    assert build(repo).returncode == 0
    again = build(repo)
    assert again.returncode == 0 and "up to date" in again.stdout
    assert len(trtexec_calls(repo)) == 1
    assert build(repo, TRT_VERSION="10.6.0.26").returncode == 0
    (repo / "ranker_trt_fp16" / "1" / "model_offsets.onnx").write_bytes(b"onnx-v2")
    assert build(repo, TRT_VERSION="10.6.0.26").returncode == 0
    assert len(trtexec_calls(repo)) == 3
    assert build(repo, "--force", TRT_VERSION="10.6.0.26").returncode == 0
    assert len(trtexec_calls(repo)) == 4


def test_shapes_come_from_the_model_config_not_from_the_environment(repo):
    config = repo / "ranker_trt_fp16" / "config.pbtxt"
    config.write_text(trt_config("ranker_trt_fp16", max_batch=32, history=40, candidates=1000))
    old_settings = {"TRITONREC_MAX_BATCH": "64", "TRITONREC_HISTORY_LENGTH": "50", "TRITONREC_MAX_CANDIDATES": "2048"}
    assert build(repo, **old_settings).returncode == 0
    (call,) = trtexec_calls(repo)
    assert "--minShapes=history:1x40,candidates:1x1" in call
    assert "--optShapes=history:16x40,candidates:16x200" in call
    assert "--maxShapes=history:32x40,candidates:32x1000" in call
    stamp = (repo / "ranker_trt_fp16" / "1" / "model.plan.stamp").read_text()
    assert "shapes=32x40,32x1000/16x200" in stamp
    # A changed limit in the config is a changed engine: rebuilt, not skipped.
    config.write_text(trt_config("ranker_trt_fp16", max_batch=32, history=40, candidates=1500))
    assert build(repo).returncode == 0 and len(trtexec_calls(repo)) == 2


@pytest.mark.parametrize("model", ["ranker_trt_fp16", "ranker_trt_int8"])
def test_committed_gpu_configs_give_the_repository_contract_shapes(repo, model):
    committed = ROOT / "model_repository" / model / "config.pbtxt"
    (repo / model / "config.pbtxt").write_text(committed.read_text())
    precision = "int8" if model.endswith("int8") else "fp16"
    assert build(repo, model=model, precision=precision).returncode == 0
    (call,) = trtexec_calls(repo)
    if model == "ranker_trt_int8":  # the Q/DQ file of `tritonrec quantize` is a padded graph
        assert "--minShapes=history:1x50,candidates:1x1" in call
        assert "--maxShapes=history:64x50,candidates:64x2048" in call
        return
    # ranker_trt_fp16 batches candidates raggedly: the offsets graph's profile, M up to B x N candidates
    assert "--minShapes=history:1x50,candidates:1,candidate_offsets:1" in call
    assert "--optShapes=history:16x50,candidates:3200,candidate_offsets:16" in call
    assert "--maxShapes=history:64x50,candidates:131072,candidate_offsets:64" in call


@pytest.mark.parametrize("model", ["ranker_trt_fp16", "ranker_trt_int8"])
def test_the_python_builder_states_the_same_trtexec_shapes_and_flags(repo, model):
    """`tritonrec export trt --print-trtexec` (weakly typed) and this script build the same engine from a config."""
    from tritonrec.export.tensorrt_plan import ShapeProfile, TrtPrecision, trtexec_command
    from tritonrec.repository import parse_config_text

    committed = (ROOT / "model_repository" / model / "config.pbtxt").read_text()
    (repo / model / "config.pbtxt").write_text(committed)
    precision = TrtPrecision.INT8 if model.endswith("int8") else TrtPrecision.FP16
    assert build(repo, model=model, precision=precision.value).returncode == 0
    (call,) = trtexec_calls(repo)
    onnx, plan = (arg.split("=", 1)[1] for arg in call[:2])
    python = trtexec_command(
        Path(onnx), Path(plan), precision, ShapeProfile.from_config(parse_config_text(committed)), strongly_typed=False
    )
    assert sorted(python[3:]) == sorted(call[2:]), "same precision flags and shapes"


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        ("max_batch_size", "has no positive max_batch_size"),
        ('key: "max_history"', 'has no positive parameters entry "max_history"'),
        ('key: "max_candidates"', 'has no positive parameters entry "max_candidates"'),
    ],
)
def test_a_config_without_a_limit_exits_2_naming_it(repo, drop, message):
    config = repo / "ranker_trt_fp16" / "config.pbtxt"
    text = trt_config("ranker_trt_fp16")
    if drop == "max_batch_size":
        text = text.replace("max_batch_size: 64\n", "")
    else:
        text = text.replace(drop, 'key: "unrelated"')
    config.write_text(text)
    result = build(repo)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "tritonrec repo build" in result.stderr
    assert trtexec_calls(repo) == []


def test_one_line_parameters_blocks_are_read_too(repo):
    (repo / "ranker_trt_fp16" / "config.pbtxt").write_text(
        'name: "ranker_trt_fp16" max_batch_size: 8\n'
        'parameters { key: "max_history" value { string_value: "12" } }\n'
        'parameters: { key: "max_candidates" value: { string_value: "300" } }  # comment\n'
    )
    assert build(repo, TRITONREC_OPT_BATCH="4").returncode == 0
    (call,) = trtexec_calls(repo)
    assert "--maxShapes=history:8x12,candidates:8x300" in call and "--optShapes=history:4x12,candidates:4x200" in call


def test_opt_shapes_beyond_the_config_limits_are_refused(repo):
    result = build(repo, TRITONREC_OPT_BATCH="128")
    assert result.returncode == 2
    assert "TRITONREC_OPT_BATCH (128) must be between 1 and max_batch_size (64)" in result.stderr


def test_gpus_of_another_type_sharing_the_volume_do_not_overwrite_the_plan(repo):
    """Mixed L4 / A10G nodes on one PVC: the second type is refused instead of replacing the first one's engine."""
    assert build(repo, FAKE_GPU=L4).returncode == 0
    version = repo / "ranker_trt_fp16" / "1"
    before = (version / "model.plan").read_text(), (version / "model.plan.stamp").read_text()
    refused = build(repo, FAKE_GPU=A10G)
    assert refused.returncode == 3, refused.stderr
    assert "was built on NVIDIA L4, 8.9 and this GPU is NVIDIA A10G, 8.6" in refused.stderr
    assert "cc_model_filenames" in refused.stderr
    assert ((version / "model.plan").read_text(), (version / "model.plan.stamp").read_text()) == before
    assert len(trtexec_calls(repo)) == 1
    # The node pool really changed GPU type: say so, and the plan is rebuilt for the new GPU.
    assert build(repo, "--replace-other-gpu", FAKE_GPU=H100).returncode == 0
    assert "gpu=NVIDIA H100 80GB HBM3, 9.0" in (version / "model.plan.stamp").read_text()
    assert build(repo, "--replace-other-gpu", FAKE_GPU=H100).returncode == 0  # up to date: skipped
    assert len(trtexec_calls(repo)) == 2


def test_cc_model_filenames_give_each_compute_capability_its_own_plan(repo):
    mapping = (
        'cc_model_filenames {\n  key: "8.6"\n  value: "model_cc86.plan"\n}\n'
        'cc_model_filenames {\n  key: "8.9"\n  value: "model_cc89.plan"\n}\n'
    )
    (repo / "ranker_trt_fp16" / "config.pbtxt").write_text(trt_config("ranker_trt_fp16", extra=mapping))
    for gpu in (L4, A10G, L4, A10G):
        result = build(repo, FAKE_GPU=gpu)
        assert result.returncode == 0, result.stderr
    version = repo / "ranker_trt_fp16" / "1"
    assert len(trtexec_calls(repo)) == 2  # one build per capability, then both skipped
    assert "gpu=NVIDIA L4, 8.9" in (version / "model_cc89.plan.stamp").read_text()
    assert "gpu=NVIDIA A10G, 8.6" in (version / "model_cc86.plan.stamp").read_text()
    assert not (version / "model.plan").exists()  # nothing for Triton to fall back to on an unlisted GPU
    unlisted = build(repo, FAKE_GPU=H100)
    assert unlisted.returncode == 2
    assert "maps compute capabilities 8.6 8.9 to plans (cc_model_filenames) but not this GPU's 9.0" in unlisted.stderr


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


def test_a_spec_model_engine_takes_the_profile_its_config_states(repo, tmp_path):
    import sys

    from tritonrec.pipeline.spec_steps import spec_rows
    from tritonrec.repository import config_text
    from tritonrec.repository.spec_variants import SpecVariant, SpecVariantKind, spec_model_config
    from tritonrec.spec import load_spec

    sys.path.insert(0, str(ROOT / "tests" / "unit"))
    from test_spec import SPEC_TOML, write_rows

    write_rows(tmp_path / "rows.parquet")
    (tmp_path / "spec.toml").write_text(SPEC_TOML.format(factory="make_bag_ranker", here=ROOT / "tests" / "unit"))
    spec = load_spec(tmp_path / "spec.toml")
    rows = spec_rows(spec)
    config = spec_model_config(spec, SpecVariant(kind=SpecVariantKind.TRT_FP16, max_len=64), rows)
    (repo / "bag_ranker_trt_fp16" / "1").mkdir(parents=True)
    (repo / "bag_ranker_trt_fp16" / "config.pbtxt").write_text(config_text(config))
    result = build(repo, model="bag_ranker_trt_fp16")
    assert result.returncode == 0, result.stderr
    (call,) = trtexec_calls(repo)
    start, stop = next(rows.queries())
    longest = int(rows.lengths["title"][start:stop].max())  # the warm-up query's longest title
    assert "--minShapes=title:1x1,price:1" in call
    assert f"--optShapes=title:256x{longest},price:256" in call
    assert "--maxShapes=title:4096x64,price:4096" in call
    stamp = (repo / "bag_ranker_trt_fp16" / "1" / "model.plan.stamp").read_text()
    assert "shapes=title:1x1,price:1/" in stamp


def test_a_config_stating_part_of_a_profile_exits_2_naming_it(repo):
    config = repo / "ranker_trt_fp16" / "config.pbtxt"
    config.write_text(
        config.read_text() + 'parameters {\n  key: "trt_min_shapes"\n  value {\n    string_value: "x:1"\n  }\n}\n'
    )
    result = build(repo)
    assert result.returncode == 2 and "states only some of trt_min_shapes" in result.stderr
