"""Model Analyzer's files read back, its best as a `bench tune` contender, its config, and failures reported by step.

The fixtures in tests/unit/data/model_analyzer/ come from a real run of Model Analyzer 1.58.0 on beauty-small
(local launch, the bundled tritonserver 2.51, perf_analyzer 2.50 on Beauty requests, the shipped ranker_cpu less its
preferred batch sizes; 1-2 instances, max batch 4-8, concurrency 2-4): the results table as it wrote it, one row of
which misses the p99 constraint (one instance: the batcher stall), and its checkpoint cut down to the model
configs of the measured configurations (measurements and perf_analyzer settings removed; what is left is as it
wrote it). Kept small on purpose.
"""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tritonrec.bench.tuning.model_analyzer import ModelAnalyzerSettings, find_model_analyzer, model_analyzer_config
from tritonrec.bench.tuning.model_analyzer_results import (
    MaConfig,
    best_measurement,
    read_configs,
    read_measurements,
    report_contender,
    to_tune_config,
)
from tritonrec.bench.tuning.tune import TuneConfig
from tritonrec.cli import main
from tritonrec.errors import ConfigError, DataError
from tritonrec.measure.points import PaSettings
from tritonrec.repository import VARIANTS, VariantName

pytestmark = pytest.mark.unit

DATA = Path(__file__).parent / "data" / "model_analyzer"
TABLE = DATA / "metrics-model-inference.csv"
CHECKPOINT = DATA / "checkpoint.ckpt"


def _raw_rows():
    with TABLE.open(newline="") as f:
        return [r for r in csv.DictReader(f) if any(r.values())]


def test_the_results_table_is_read_in_model_analyzers_order_with_its_verdicts():
    rows = read_measurements(TABLE)
    raw = _raw_rows()
    assert [(r.config, r.concurrency) for r in rows] == [(r["Model Config Path"], int(r["Concurrency"])) for r in raw]
    assert [r.satisfies_constraints for r in rows] == [r["Satisfies Constraints"] == "Yes" for r in raw]
    assert not all(r.satisfies_constraints for r in rows)
    assert [r.requests_per_second for r in rows] == [float(r["Throughput (infer/sec)"]) for r in raw]
    assert [r.p99_ms for r in rows] == [float(r["p99 Latency (ms)"]) for r in raw]
    assert all(r.server_queue_ms is not None and r.server_compute_infer_ms is not None for r in rows)
    assert all(r.batch_size == 1 for r in rows)
    first = rows[0].to_dict(mean_candidates=100.0)
    assert first["candidates_per_second"] == pytest.approx(rows[0].requests_per_second * 100.0, abs=0.1)


def test_the_best_is_the_first_ranked_configuration_within_the_target_at_its_highest_throughput():
    rows = read_measurements(TABLE)
    best = best_measurement(rows, p99_ms=100.0)
    passing = [r for r in rows if r.satisfies_constraints and r.p99_ms <= 100.0]
    assert best is not None and best.config == passing[0].config
    assert best.requests_per_second == max(r.requests_per_second for r in passing if r.config == best.config)
    tighter = min(r.p99_ms for r in passing if r.config == best.config) - 0.01
    other = best_measurement(rows, p99_ms=tighter)
    assert other is None or other.p99_ms <= tighter
    assert best_measurement(rows, p99_ms=0.001) is None


def test_the_checkpoint_gives_each_measured_configuration_through_tritons_schema():
    configs = read_configs(CHECKPOINT, "ranker_cpu")
    assert set(configs) == {r.config for r in read_measurements(TABLE)}
    shipped = VARIANTS[VariantName.CPU]
    default = configs["ranker_cpu_config_default"]
    assert (default.instances, default.max_batch_size) == (shipped.instances, shipped.batching.max_batch_size)
    assert default.max_queue_delay_us == shipped.batching.max_queue_delay_us and default.layout == shipped.layout
    assert default.preferred_batch_sizes == ()  # handed to Model Analyzer without them (see bench.model_analyzer)
    for row in read_measurements(TABLE):
        config = configs[row.config]
        assert config.dynamic_batching and config.max_batch_size == row.max_batch_size
        assert row.instance_group == f"{config.instances}:CPU"


def test_a_checkpoint_without_the_model_is_refused(tmp_path):
    with pytest.raises(DataError, match="no readable result for ranker_gpu"):
        read_configs(CHECKPOINT, "ranker_gpu")
    garbled = tmp_path / "0.ckpt"
    garbled.write_text("{not json")
    with pytest.raises(DataError, match="checkpoint"):
        read_configs(garbled, "ranker_cpu")


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "no measurement"), ("Model,Batch\nranker_cpu,1\n", "lacks the column")],
    ids=["empty", "missing columns"],
)
def test_a_table_without_what_we_read_is_refused(tmp_path, text, message):
    path = tmp_path / "table.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        read_measurements(path)
    with pytest.raises(DataError, match="cannot be read"):
        read_measurements(tmp_path / "absent.csv")


def _config(**changes):
    fields = {
        "name": "ranker_cpu_config_4",
        "instances": 2,
        "max_batch_size": 32,
        "dynamic_batching": True,
        "preferred_batch_sizes": (8, 16, 32),
        "max_queue_delay_us": 500,
        "intra_op_threads": 0,
        "layout": None,
    }
    return MaConfig(**{**fields, **changes})


def test_model_analyzers_config_maps_to_a_tune_config_with_threads_shared_out_and_the_shipped_layout():
    tune = to_tune_config(_config(), cpus=4)
    assert tune == TuneConfig(
        max_batch_size=32, preferred=(0.25, 0.5, 1.0), queue_delay_us=500, instances=2, threads=2, layout="ragged"
    )
    overrides = tune.overrides()
    assert overrides.preferred_batch_sizes == (8, 16, 32) and overrides.max_queue_delay_us == 500
    assert (overrides.instances, overrides.cpu_threads, overrides.max_batch_size) == (2, 2, 32)
    odd = to_tune_config(_config(max_batch_size=48, preferred_batch_sizes=(5, 48)), cpus=4)
    assert odd.overrides().preferred_batch_sizes == (5, 48)  # fractions round-trip to the same sizes


def test_threads_and_layout_model_analyzer_set_are_kept():
    tune = to_tune_config(_config(intra_op_threads=3, layout="padded", preferred_batch_sizes=()), cpus=4)
    assert (tune.threads, tune.layout, tune.preferred) == (3, "padded", ())


def test_a_config_without_dynamic_batching_is_no_tune_contender():
    with pytest.raises(ConfigError, match="without dynamic batching"):
        to_tune_config(_config(dynamic_batching=False), cpus=4)


def test_the_contender_is_read_from_a_report_folder_or_its_json(tmp_path):
    config = read_configs(CHECKPOINT, "ranker_cpu")["ranker_cpu_config_default"]
    from dataclasses import asdict

    record = {"status": "ok", "best": {"config": asdict(config)}}
    (tmp_path / "model_analyzer.json").write_text(json.dumps(record))
    expected = to_tune_config(config)
    assert report_contender(tmp_path) == expected == report_contender(tmp_path / "model_analyzer.json")
    failed = tmp_path / "failed.json"
    failed.write_text(json.dumps({"status": "failed", "best": None, "failure": {"step": "profile"}}))
    with pytest.raises(ConfigError, match="failed at step 'profile'"):
        report_contender(failed)
    (tmp_path / "other.json").write_text('{"points": []}')
    with pytest.raises(ConfigError, match="is not a `tritonrec bench model-analyzer` report"):
        report_contender(tmp_path / "other.json")


def test_the_config_asks_for_a_local_cpu_only_search_within_the_p99_and_reads_as_yaml(tmp_path):
    settings = ModelAnalyzerSettings(
        p99_ms=80.0, max_instances=2, perf_analyzer=PaSettings(measurement_ms=2500, stability_pct=20)
    )
    config = model_analyzer_config(
        repository=tmp_path / "repo",
        work=tmp_path,
        server_binary=Path("/x/tritonserver"),
        backends=tmp_path / "backends",
        environment={"LD_LIBRARY_PATH": "/libs", "PATH": "/venv/bin"},
        perf_analyzer=Path("/x/perf_analyzer"),
        input_file=tmp_path / "input.json",
        settings=settings,
        ports=(1, 2, 3),
    )
    assert yaml.safe_load("# header\n" + json.dumps(config, indent=2)) == config  # what _prepare writes
    assert config["triton_launch_mode"] == "local" and config["client_protocol"] == "grpc"
    assert config["triton_server_flags"] == {"backend_directory": str(tmp_path / "backends")}
    assert config["triton_grpc_endpoint"] == "localhost:2" and config["triton_metrics_url"].endswith(":3/metrics")
    assert (config["run_config_search_min_concurrency"], config["run_config_search_max_concurrency"]) == (8, 32)
    assert (config["run_config_search_min_model_batch_size"], config["run_config_search_max_model_batch_size"]) == (
        16,
        64,
    )
    assert config["run_config_search_max_instance_count"] == 2
    model = config["profile_models"]["ranker_cpu"]
    assert model["cpu_only"] is True and model["objectives"] == ["perf_throughput"]
    assert model["constraints"] == {"perf_latency_p99": {"max": 80.0}}
    flags = model["perf_analyzer_flags"]
    assert flags["measurement-mode"] == "time_windows" and flags["measurement-interval"] == 2500
    assert flags["stability-percentage"] == 20 and flags["input-data"] == str(tmp_path / "input.json")
    for key in ("output_model_repository_path", "export_path", "checkpoint_directory", "triton_output_path"):
        assert Path(config[key]).parent == tmp_path


def test_search_limits_are_checked():
    with pytest.raises(ConfigError, match="concurrency limits"):
        ModelAnalyzerSettings(min_concurrency=16, max_concurrency=8)
    with pytest.raises(ConfigError, match="batch size limits"):
        ModelAnalyzerSettings(min_batch_size=0)


def _cli(tmp_path, binary, capsys):
    pa = tmp_path / "perf_analyzer"
    pa.write_text("")
    argv = ["bench", "model-analyzer", "--export", str(tmp_path / "export"), "--out", str(tmp_path / "out")]
    argv += ["--perf-analyzer", str(pa), "--model-analyzer-bin", str(binary)]
    code = main(argv)
    return code, capsys.readouterr().err, json.loads((tmp_path / "out" / "model_analyzer.json").read_text())


def test_a_missing_model_analyzer_is_reported_as_the_find_step(tmp_path, capsys):
    code, err, record = _cli(tmp_path, tmp_path / "absent" / "model-analyzer", capsys)
    assert code == 1 and err.startswith("ToolError: Model Analyzer failed at step 'find'")
    assert "Traceback" not in err and "install_model_analyzer.sh" in err
    assert record["status"] == "failed" and record["failure"]["step"] == "find" and record["best"] is None
    assert "failed at step `find`" in (tmp_path / "out" / "model_analyzer.md").read_text()


def test_a_model_analyzer_that_does_not_start_is_reported_with_its_command_and_exit_code(tmp_path, capsys):
    broken = tmp_path / "model-analyzer"
    broken.write_text(
        f"#!{sys.executable}\nimport sys\nprint('ModuleNotFoundError: numba', file=sys.stderr)\nsys.exit(3)\n"
    )
    broken.chmod(0o755)
    code, err, record = _cli(tmp_path, broken, capsys)
    failure = record["failure"]
    assert code == 1 and "failed at step 'version'" in err and "exit code: 3" in err
    assert failure["step"] == "version" and failure["exit_code"] == 3
    assert failure["command"] == f"{broken} --version" and "ModuleNotFoundError: numba" in failure["reason"]


def test_the_model_analyzer_modules_and_their_traffic_import_no_training_stack():
    script = (
        "import sys\n"
        "import tritonrec.bench.tuning.model_analyzer, tritonrec.bench.tuning.model_analyzer_results\n"
        "from tritonrec.measure.traffic import TrafficSpec, load_user_pool\n"
        "load_user_pool(TrafficSpec())\n"
        "print(','.join(m for m in ('torch', 'onnx', 'tritonrec.pipeline') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_a_relative_model_analyzer_path_is_made_absolute(tmp_path, monkeypatch):
    # Model Analyzer runs in its own folder, where a path relative to ours would not be found
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "model-analyzer").write_text("#!/bin/sh\n")
    monkeypatch.chdir(tmp_path)
    found = find_model_analyzer(Path("bin/model-analyzer"))
    assert found.is_absolute() and found == tmp_path / "bin" / "model-analyzer"
