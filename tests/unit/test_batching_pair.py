"""bench/tools/batching_pair.py as the cancel-check record's README runs it: its output is the record's pair.txt."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RECORD = ROOT / "bench" / "results" / "2026-12-08-epyc-2c" / "cancel-check"


def test_the_pair_tool_reproduces_the_records_comparison():
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "tools" / "batching_pair.py"), str(RECORD / "batching.json"),
         "dynamic_no_cancel_check", "dynamic"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stdout == (RECORD / "pair.txt").read_text()
    assert "N=200, perf_analyzer: 1.06x (1.01-1.14)" in done.stdout and "no measurable difference" in done.stdout
