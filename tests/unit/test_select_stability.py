"""bench/tools/select_stability.py, run as the DLRM select script runs it: several select.json records of one
command side by side, the verdict on whether they picked the same candidate, and its exit status."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

TOOL = Path(__file__).resolve().parents[2] / "bench" / "tools" / "select_stability.py"


def _run_record(folder: Path, chosen: str, fast: float, out: str) -> Path:
    folder.mkdir(parents=True)
    spread = {"median": fast, "min": fast * 0.9, "max": fast * 1.1, "n": 3}
    candidates = [
        {"name": "base/triton/fp32", "measured": True, "served": True, "cand_per_s": spread},
        {"name": "base/onnxruntime/fp32", "measured": True, "served": False, "cand_per_s": spread},
        {"name": "base/tensorrt/fp16", "measured": False, "served": True, "cand_per_s": None},
    ]
    record = {"command": f"tritonrec select --spec s.toml --export e --out {out} --p99-ms 50", "chosen": chosen}
    record |= {"candidates": candidates, "wall_s": 600.0, "versions": {"tritonrec": "0.1.0 (abc)"}}
    (folder / "select.json").write_text(json.dumps(record))
    return folder


def _stability(tmp_path: Path, *runs: Path) -> tuple[int, dict]:
    out = tmp_path / "stability"
    done = subprocess.run([sys.executable, str(TOOL), str(out), *map(str, runs)], capture_output=True, text=True)
    return done.returncode, json.loads((out / "stability.json").read_text())["stability"]


def test_runs_of_one_command_that_pick_the_same_candidate_are_stable(tmp_path):
    runs = [_run_record(tmp_path / f"run-{i}", "base/triton/fp32", 1000.0 + i, f"o/run-{i}") for i in range(3)]
    code, s = _stability(tmp_path, *runs)
    assert code == 0 and s["stable"] and s["same_command"]  # each run's own --out does not make another command
    assert s["served"] == ["base/triton/fp32"] and s["runs"][2]["cand_per_s"]["base/triton/fp32"]["median"] == 1002.0
    assert "every run picked the same candidate" in (tmp_path / "stability" / "stability.md").read_text()


def test_runs_that_pick_differently_say_so_and_exit_1(tmp_path):
    a = _run_record(tmp_path / "a", "base/triton/fp32", 1000.0, "o/a")
    b = _run_record(tmp_path / "b", "int8/triton/int8", 1000.0, "o/b")
    code, s = _stability(tmp_path, a, b)
    assert code == 1 and not s["stable"] and s["picks"] == ["base/triton/fp32", "int8/triton/int8"]
    assert "the runs picked different candidates" in (tmp_path / "stability" / "stability.md").read_text()


def test_runs_of_different_commands_are_shown_apart_with_each_runs_commit(tmp_path):
    a = _run_record(tmp_path / "a", "base/triton/fp32", 1000.0, "o/a")
    b = _run_record(tmp_path / "b", "base/triton/fp32", 1000.0, "o/b")
    record = json.loads((b / "select.json").read_text())
    record["command"] += " --navigator"
    (b / "select.json").write_text(json.dumps(record))
    code, s = _stability(tmp_path, a, b)
    assert code == 0 and s["stable"] and not s["same_command"] and len(s["commands"]) == 2
    text = (tmp_path / "stability" / "stability.md").read_text()
    assert "2 runs of 2 commands" in text and "NOT the same" in text
    assert "runs 2:\n\n    tritonrec select --spec s.toml --export e --p99-ms 50 --navigator" in text
    assert "| 1 | base/triton/fp32 | 2 | 10.0 | 0.1.0 (abc) |" in text
