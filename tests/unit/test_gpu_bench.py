"""bench gpu's settings, the in-process timing on the CPU, the 20 ms p99 pick and the report it renders."""

import pytest

from tritonrec.bench.gpu.inprocess_stage import TimingRule, measure_batches
from tritonrec.bench.gpu.report import write_markdown
from tritonrec.bench.gpu.run import GpuBenchSettings
from tritonrec.bench.gpu.served_stage import ServedSettings, best_within_sla
from tritonrec.errors import ConfigError
from tritonrec.model.config import preset
from tritonrec.model.ranker import RankingModel
from tritonrec.scorers.torch_device import DeviceSettings, Execution, Precision

pytestmark = pytest.mark.unit


def test_settings_refuse_what_cannot_run():
    with pytest.raises(ConfigError, match="must start with fp32"):
        GpuBenchSettings(precisions=(Precision.BF16, Precision.FP32))
    with pytest.raises(ConfigError, match="models must be some of"):
        GpuBenchSettings(models=("huge",))
    with pytest.raises(ConfigError, match="CUDA graphs need --device cuda"):
        GpuBenchSettings(device="cpu", executions=(Execution.EAGER,))  # the served default replays graphs
    with pytest.raises(ConfigError, match="served_reserve_s < deadline_s"):
        GpuBenchSettings(deadline_s=100, served_reserve_s=200)
    with pytest.raises(ConfigError, match="served precision"):
        ServedSettings(precision="int8")


def test_in_process_settings_cross_precisions_and_executions():
    settings = GpuBenchSettings(precisions=(Precision.FP32, Precision.BF16), compile_precisions=(Precision.BF16,))
    labels = [s.label for s in settings.in_process(compiled=False)]
    assert labels == ["fp32 eager", "fp32 cuda_graph", "bf16 weights eager", "bf16 weights cuda_graph"]
    compiled = [s.label for s in settings.in_process(compiled=True)]
    assert compiled == ["bf16 weights compile", "bf16 weights compile_cuda_graph"]


def test_in_process_points_on_the_cpu_time_each_batch_and_stop_at_the_budget(tiny_spec_and_catalogue):
    spec, catalogue = tiny_spec_and_catalogue
    model = RankingModel(spec, preset("small"), catalogue)
    rule = TimingRule(warmup_calls=1, min_calls=3, min_s=0.0)
    points = measure_batches(model, DeviceSettings(device="cpu"), (2, 8), 20, rule=rule)
    assert [p["users"] for p in points] == [2, 8] and all(p["calls"] == 3 for p in points)
    assert all(p["candidates_per_second"] > 0 and p["median_ms"] >= p["min_ms"] > 0 for p in points)
    assert points[1]["candidates_per_second"] == pytest.approx(8 * 20 / points[1]["median_ms"] * 1e3, rel=1e-3)
    spent = measure_batches(model, DeviceSettings(device="cpu"), (2,), 20, rule=rule, time_left=lambda: 0.0)
    assert spent == [{"users": 2, "candidates": 20, "skipped": "time budget spent"}]


def _point(concurrency, cps, p99, errors=0):
    return {
        "concurrency": concurrency,
        "generator": "perf_analyzer",
        "requests_per_second": cps / 200,
        "candidates_per_second": cps,
        "latency_ms": {"p50": p99 / 2, "p99": p99},
        "errors": errors,
        "mean_batch_users": 12.5,
        "gpu": {"samples": 10, "util_pct_mean": 71.5, "util_pct_max": 99.0},
        "server_cpu_cores": 3.2,
        "generator_cpu_cores": 1.1,
    }


def test_best_point_within_20_ms_p99_ignores_slower_and_failing_points():
    points = [_point(16, 1e6, 5), _point(64, 3e6, 18), _point(256, 6e6, 35), _point(128, 4e6, 12, errors=3)]
    assert best_within_sla(points)["concurrency"] == 64
    assert best_within_sla([_point(256, 6e6, 35), {"concurrency": 512, "skipped": "time budget spent"}]) is None


def test_report_renders_every_stage_from_the_record():
    device = {"device": "cuda", "torch": "2.11.0", "name": "NVIDIA H200", "capability": "9.0", "memory_gib": 139.8,
              "cuda_runtime": "13.0", "fp32_matmul_precision": "highest"}  # fmt: skip
    point = {"users": 64, "candidates": 200, "median_ms": 0.5, "candidates_per_second": 25_600_000.0}
    best = _point(64, 3e6, 18)
    record = {
        "command": "bench/gpu/run.sh",
        "date": "2026-12-01T00:00:00Z",
        "host": {"cpu_model": "x", "cpu_count": 16, "cpu_affinity": 16, "isa": [], "memory_gib": 128, "gpu": "H200"},
        "versions": {},
        "device": device,
        "models": {"base": {"source": "checkpoint x", "parameters": 1_009_153, "trained": True}},
        "in_process": [
            {
                "model": "base",
                "label": "bf16 weights cuda_graph",
                "points": [point, {"users": 256, "candidates": 200, "error": "OutOfMemoryError: boom"}],
            }
        ],  # fmt: skip
        "quality": [
            {
                "label": "fp32 eager",
                "users": 22363,
                "ndcg@10": 0.38,
                "delta_ndcg@10": 0.0,
                "hr@10": 0.56,
                "delta_hr@10": 0.0,
                "auc": 0.81,
                "delta_auc": 0.0,
                "max_abs_score_diff": 0.0,
                "mean_abs_score_diff": 0.0,
            }
        ],  # fmt: skip
        "served": {
            "variant": {
                "name": "ranker_gpu",
                "precision": "bf16",
                "kind_gpu": True,
                "instances": 2,
                "cuda_graphs": True,
                "max_batch_size": 512,
            },
            "export": {"max_abs": 0.0},
            "tritonserver": "2.51.0",
            "parity": {
                "users": 512,
                "reference": "in process, bf16 autocast eager",
                "max_abs_diff": 0.01,
                "mean_abs_diff": 0.001,
                "tolerance": 0.05,
                "passed": True,
            },
            "points": [best],
            "best_within_sla": best,
        },  # fmt: skip
        "elapsed_s": 400,
    }
    text = write_markdown(record)
    assert "Device: NVIDIA H200 (compute 9.0" in text
    assert "| base | bf16 weights cuda_graph | 25.60M (0.5 ms) | error |" in text
    assert "OutOfMemoryError: boom" in text
    assert "| fp32 eager | 0.3800 | +0.0000 |" in text
    assert "| 64 | perf_analyzer | 15,000 | 3.00M | 9.0 | 18 | 12.5 | 71.5 (99) | 3.2 | 1.1 |" in text
    assert "**Best within a 20 ms p99: 3,000,000 candidates/s** at concurrency 64" in text
    assert "Goal of 5M candidates/s for `base`: not met." in text
    record["served"]["parity"] = {"error": "InferenceServerException: stub died"}
    assert "Parity over gRPC **failed to run**: `InferenceServerException: stub died`" in write_markdown(record)
    record["served"] = {**record["served"], "error": "ServerError: no GPU"}
    assert "**The server did not start**: `ServerError: no GPU`" in write_markdown(record)
    record["served"] = {"error": "RuntimeError: export failed", "points": []}
    assert "**The served stage failed**: `RuntimeError: export failed`" in write_markdown(record)
