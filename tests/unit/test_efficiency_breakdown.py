"""Where the machine's CPU went in a served run: the CPU deltas per request and the efficiency breakdown."""

import pytest

from tritonrec.bench.serving.efficiency import cpu_breakdown
from tritonrec.measure.cpu import CpuMark
from tritonrec.measure.loadgen import _cpu_between

pytestmark = pytest.mark.unit


def test_cpu_between_splits_the_server_into_tritonserver_and_its_stubs():
    before = CpuMark(generator_s=1.0, server_s=10.0, frontend_s=2.0, at_s=100.0)
    after = CpuMark(generator_s=1.5, server_s=14.0, frontend_s=2.8, at_s=104.0)
    cpu = _cpu_between(before, after, requests=1000)
    assert cpu == {
        "generator_s": 0.5,
        "server_s": 4.0,
        "wall_s": 4.0,
        "generator_ms_per_request": 0.5,
        "server_ms_per_request": 4.0,
        "tritonserver_ms_per_request": 0.8,
        "stubs_ms_per_request": 3.2,
    }


def test_cpu_between_without_a_local_server_has_no_server_parts():
    before = CpuMark(generator_s=1.0, server_s=None, frontend_s=None, at_s=0.0)
    after = CpuMark(generator_s=2.0, server_s=None, frontend_s=None, at_s=1.0)
    cpu = _cpu_between(before, after, requests=10)
    assert cpu["generator_ms_per_request"] == 100.0
    assert cpu["server_ms_per_request"] is cpu["tritonserver_ms_per_request"] is cpu["stubs_ms_per_request"] is None


def test_breakdown_accounts_for_every_core_second():
    # 2 cores, 100,000 candidates/s: the cores offer 20 CPU-ms per 1,000 candidates. Per request of 200 candidates:
    # generator 0.4 ms (2/1k), tritonserver 0.8 ms (4/1k), stubs 2.4 ms (12/1k) of which the model 10/1k.
    ours = {
        "mean_candidates": 200.0,
        "candidates_per_second": 100_000.0,
        "cpu": {"generator_ms_per_request": 0.4, "tritonserver_ms_per_request": 0.8, "stubs_ms_per_request": 2.4},
    }
    b = cpu_breakdown(ours, model_ms_per_1k=10.0, cores=2)
    assert b["machine_ms_per_1k_candidates"] == 20.0
    assert b["ms_per_1k_candidates"] == {
        "model": 10.0,
        "stubs_other": 2.0,
        "tritonserver": 4.0,
        "generator": 2.0,
        "idle_or_other": 2.0,
    }
    assert b["shares"] == {
        "model": 0.5,
        "stubs_other": 0.1,
        "tritonserver": 0.2,
        "generator": 0.1,
        "idle_or_other": 0.1,
    }


def test_breakdown_is_none_where_the_server_cpu_was_not_measured():
    ours = {"mean_candidates": 200.0, "candidates_per_second": 1e5, "cpu": {"generator_ms_per_request": 0.4}}
    assert cpu_breakdown(ours, model_ms_per_1k=10.0, cores=2) is None
    assert cpu_breakdown({"cpu": None}, model_ms_per_1k=10.0, cores=2) is None
