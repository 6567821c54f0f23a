"""The Helm path as helm/README.md writes it: the repository its commands build holds every model the chart loads.

The commands of the "Model repository" step run as written (the real `tritonrec` CLI, in a folder whose
`artifacts/beauty-base` is a briefly trained checkpoint), then every `ci/` scenario is rendered by the real helm and
each model it loads (`--load-model`) and each ONNX file its engine build reads (`--onnx`) is looked up in the built
repository. Before this test, the documented build wrote `ranker_cpu` only while the chart loads `ranker_onnx`.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "helm"))  # the chart tests' helm helpers
from helm_render import CHART, INSTALL_HINT, SCENARIOS, find_helm, load_objects, require_tool, template  # noqa: E402

from tritonrec.repository import parse_config_text  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "helm" / "README.md"
MOUNT = "/models"  # modelRepository.mountPath


def _step_commands(step: str) -> list[str]:
    """The `tritonrec ...` lines of the fenced blocks, and of inline code, in the numbered step that starts so."""
    text = GUIDE.read_text()
    start = text.index(step)
    section = text[start : text.index("\n3. ", start)]
    fenced = [line.strip() for block in re.findall(r"```bash\n(.*?)```", section, re.S) for line in block.splitlines()]
    inline = re.findall(r"`(tritonrec [^`]+)`", re.sub(r"```bash\n.*?```", "", section, flags=re.S))
    return [c for c in fenced + inline if c.startswith("tritonrec ") and " --" in c]


def _run(command: str, cwd: Path) -> None:
    words = shlex.split(command.split(" #", 1)[0])[1:]
    result = subprocess.run(
        [sys.executable, "-m", "tritonrec", *words], cwd=cwd, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, f"`{command}` failed:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def documented_repository(checkpoint_path, quantized_export, tmp_path_factory) -> Path:
    """The repository the documented commands build (GPU variants, then ranker_int8 from `tritonrec quantize`)."""
    work = tmp_path_factory.mktemp("platform-team")
    shutil.copytree(checkpoint_path, work / "artifacts" / "beauty-base")
    commands = _step_commands("2. **Model repository.**")
    int8 = [c for c in commands if "artifacts/quantize/" in c]
    cpu = [c for c in commands if "--variants" not in c and c.startswith("tritonrec repo build")]
    gpu = [c for c in commands if c not in int8 + cpu]
    assert [c.split()[1] for c in gpu] == ["export", "repo"], gpu  # export with the GPU graph, then the variants
    assert len(int8) == 1 and len(cpu) == 1, commands
    for command in gpu:
        _run(command, work)
    # `tritonrec quantize` ran (shortened) in the shared fixture; the guide's int8 command reads its folder
    shutil.copytree(quantized_export, work / "artifacts" / "quantize" / "beauty-base")
    _run(int8[0], work)
    cpu_repo = re.search(r"--out (\S+)", cpu[0]).group(1)
    _run(cpu[0].replace(f"--out {cpu_repo}", "--out repo-cpu"), work)  # the CPU nodes' repository, beside it
    return work


def _loaded_models(objects: list[dict]) -> tuple[list[str], list[str]]:
    """The models Triton is told to load, and the ONNX files the engine build reads (paths in the pod)."""
    args = [a for o in objects if o["kind"] in ("Deployment", "Job") for c in _containers(o) for a in _args(c)]
    loaded = [a.split("=", 1)[1] for a in args if a.startswith("--load-model=")]
    onnx = [m for a in args for m in re.findall(r'--onnx "([^"]+)"', a)]
    return loaded, onnx


def _containers(o: dict) -> list[dict]:
    spec = o["spec"]["template"]["spec"]
    return spec.get("initContainers", []) + spec["containers"]


def _args(container: dict) -> list[str]:
    return [str(a) for a in container.get("command", []) + container.get("args", [])]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_model_a_scenario_loads_is_in_the_documented_repository(documented_repository, scenario):
    helm = require_tool(find_helm(), "helm", INSTALL_HINT)
    result = template(helm, "--values", str(CHART / "ci" / f"{scenario}-values.yaml"))
    assert result.returncode == 0, result.stderr
    loaded, onnx = _loaded_models(load_objects(result.stdout))
    assert loaded, f"{scenario} loads no model explicitly"
    repo = documented_repository / ("repo-cpu" if "ranker_cpu" in loaded else "repo")
    for name in loaded:
        config = repo / name / "config.pbtxt"
        assert config.is_file(), f"{scenario} loads {name}, which the documented build does not write"
        assert parse_config_text(config.read_text()).name == name
        artifacts = [p.name for p in (repo / name / "1").glob("*")] if (repo / name / "1").is_dir() else []
        engine_built_here = name.startswith("ranker_trt_")  # the plan is built on the node from the ONNX below
        assert artifacts or engine_built_here, f"{name} has no artifacts in {repo}"
    for path in onnx:
        assert path.startswith(f"{MOUNT}/")
        assert (repo / path.removeprefix(f"{MOUNT}/")).is_file(), f"{scenario}'s engine build reads {path}: missing"


def test_the_default_values_load_what_the_documented_gpu_build_serves(documented_repository):
    helm = require_tool(find_helm(), "helm", INSTALL_HINT)
    result = template(helm)
    assert result.returncode == 0, result.stderr
    loaded, _ = _loaded_models(load_objects(result.stdout))
    assert loaded == ["ranker_onnx"]
    served = documented_repository / "repo" / "ranker_onnx" / "1"
    assert (served / "model_offsets.onnx").is_file()  # the config's default_model_filename
    config = parse_config_text((documented_repository / "repo" / "ranker_onnx" / "config.pbtxt").read_text())
    assert config.default_model_filename == "model_offsets.onnx"
