"""What a served point costs: nvidia-smi samples (a stand-in nvidia-smi here), CPU of process groups and children."""

import os
import subprocess
import sys
import time

import pytest

from tritonrec.measure.gpu_monitor import GpuSampler, children_cpu_s, process_group_cpu_s

pytestmark = pytest.mark.unit

BUSY = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"


def test_gpu_sampler_summarises_what_nvidia_smi_prints(tmp_path, monkeypatch):
    smi = tmp_path / "nvidia-smi"  # prints what `--query-gpu=... --format=csv,noheader,nounits -lms=...` prints
    smi.write_text(
        "#!/usr/bin/env bash\n"
        'echo "40, 1000, 300.5, 1980"\necho "80, 1200, 500.5, 1980"\necho "[N/A], 1, 1, 1"\nexec sleep 30\n'
    )
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    with GpuSampler(period_ms=100) as sampler:
        deadline = time.monotonic() + 10
        while len(sampler.samples) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    summary = sampler.summary()
    assert summary["samples"] == 2
    assert summary["util_pct_mean"] == 60.0 and summary["util_pct_max"] == 80.0
    assert summary["memory_used_mib_max"] == 1200.0 and summary["power_w_mean"] == 400.5


def test_gpu_sampler_without_nvidia_smi_records_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with GpuSampler() as sampler:
        pass
    assert sampler.summary() == {"samples": 0}


def test_process_group_cpu_counts_a_busy_group_and_children_cpu_counts_finished_children():
    busy = subprocess.Popen([sys.executable, "-c", BUSY + "time.sleep(5)\n"], start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while process_group_cpu_s(busy.pid) < 0.25 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert process_group_cpu_s(busy.pid) >= 0.25
        assert process_group_cpu_s(busy.pid + 10**6) == 0.0  # no such group
    finally:
        busy.kill()
        busy.wait()
    before = children_cpu_s()
    subprocess.run([sys.executable, "-c", BUSY], check=True)
    assert children_cpu_s() - before >= 0.25
