"""NVIDIA Triton Model Analyzer run by `tritonrec bench model-analyzer` on the test export, and its failures.

The real run needs model-analyzer (its own virtualenv: bench/tools/install_model_analyzer.sh; CI does not install
it, so the test skips there). Figures are never asserted: what is asserted is that the table, the configurations
and the best configuration in our report are what Model Analyzer wrote, and that `bench tune --model-analyzer`
puts that configuration in its side-by-side confirmation. The failure tests run a stand-in binary.
"""

import csv
import json
import sys
from pathlib import Path

import pytest

from tritonrec.bench.tuning.model_analyzer import ModelAnalyzerSettings, find_model_analyzer, run_model_analyzer
from tritonrec.bench.tuning.model_analyzer_results import MaConfig, to_tune_config
from tritonrec.cli import main
from tritonrec.errors import ToolError
from tritonrec.measure.points import PaSettings
from tritonrec.measure.traffic import CandidateCounts, TrafficSpec

pytestmark = pytest.mark.integration

TINY = ["--min-concurrency", "1", "--max-concurrency", "2", "--min-instances", "1", "--max-instances", "1"]
TINY += ["--min-batch-size", "4", "--max-batch-size", "8", "--requests", "64", "--measurement-ms", "1000"]
TINY += ["--pa-stability-pct", "100000", "--candidates", "20-60", "--p99-ms", "10000"]


@pytest.fixture(scope="session")
def model_analyzer():
    try:
        return find_model_analyzer()
    except ToolError:
        pytest.skip("model-analyzer not installed: bench/tools/install_model_analyzer.sh")


@pytest.mark.slow
def test_model_analyzer_runs_locally_and_our_report_is_what_it_wrote(
    export_dir, tmp_path, perf_analyzer, model_analyzer
):
    out = tmp_path / "ma"
    argv = ["bench", "model-analyzer", "--export", str(export_dir), "--out", str(out)]
    argv += ["--perf-analyzer", str(perf_analyzer), "--model-analyzer-bin", str(model_analyzer), *TINY]
    assert main(argv) == 0
    record = json.loads((out / "model_analyzer.json").read_text())
    assert record["status"] == "ok" and record["failure"] is None
    assert record["versions"]["model_analyzer"] == record["model_analyzer"]["version"]
    work = out / "ma"
    with (work / "export" / "results" / "metrics-model-inference.csv").open(newline="") as f:
        written = [r for r in csv.DictReader(f) if any(r.values())]
    assert [(m["config"], m["concurrency"], m["requests_per_second"], m["p99_ms"]) for m in record["measured"]] == [
        (
            r["Model Config Path"],
            int(r["Concurrency"]),
            float(r["Throughput (infer/sec)"]),
            float(r["p99 Latency (ms)"]),
        )
        for r in written
    ]
    assert {m["concurrency"] for m in record["measured"]} <= {1, 2}
    served = {p.name for p in (work / "output_repository").iterdir()}
    assert set(record["configs"]) == {m["config"] for m in record["measured"]} <= served
    assert "ranker_cpu_config_default" in record["configs"]
    for name, config in record["configs"].items():
        if name != "ranker_cpu_config_default":  # its search: 1 instance, max_batch_size 4 or 8, batching on
            assert config["instances"] == 1 and config["max_batch_size"] in (4, 8) and config["dynamic_batching"]
        assert config["preferred_batch_sizes"] == []
    best = record["best"]
    assert best is not None and best["config"]["name"] == record["measured"][0]["config"]
    assert best["config_pbtxt"] == (work / "output_repository" / best["config"]["name"] / "config.pbtxt").read_text()
    assert best["candidates_per_second"] == pytest.approx(best["requests_per_second"] * record["mean_candidates"], 1e-3)
    assert 20 <= record["mean_candidates"] <= 60
    assert "Its best within the target" in (out / "model_analyzer.md").read_text()
    assert (out / "model_analyzer.png").stat().st_size > 0

    tuned = tmp_path / "tune"
    argv = ["bench", "tune", "--export", str(export_dir), "--out", str(tuned), "--perf-analyzer", str(perf_analyzer)]
    argv += ["--candidates", "20-60", "--concurrency", "2", "--max-batch-sizes", "8", "--queue-delays-us", "0"]
    argv += ["--instance-threads", "1x1", "--layouts", "ragged", "--passes", "1", "--confirm-repeats", "1"]
    argv += ["--requests", "64", "--measurement-ms", "1000", "--pa-stability-pct", "100000", "--p99-ms", "10000"]
    argv += ["--model-analyzer", str(out)]
    assert main(argv) == 0
    confirmation = json.loads((tuned / "tune.json").read_text())["confirmation"]
    fields = {**best["config"], "preferred_batch_sizes": tuple(best["config"]["preferred_batch_sizes"])}
    assert confirmation["model analyzer"]["label"] == to_tune_config(MaConfig(**fields)).label()
    assert {"shipped", "tuned", "model analyzer"} <= set(confirmation)


def _stand_in(tmp_path, profile_body):
    script = tmp_path / "model-analyzer"
    script.write_text(
        "#!/usr/bin/env bash\n"
        'if [ "$1" = "--version" ]; then echo 1.58.0; exit 0; fi\n'
        'echo "[Model Analyzer] Starting a local Triton Server"\n' + profile_body
    )
    script.chmod(0o755)
    return script


def _run(export_dir, tmp_path, binary, **settings):
    traffic = TrafficSpec(candidates=CandidateCounts(low=20, high=60))
    fast = ModelAnalyzerSettings(requests=16, perf_analyzer=PaSettings(measurement_ms=1000), **settings)
    pa = tmp_path / "perf_analyzer"
    pa.write_text("")
    with pytest.raises(ToolError) as failed:
        run_model_analyzer(export_dir, tmp_path / "out", fast, traffic, perf_analyzer=pa, command="test", binary=binary)
    return str(failed.value), json.loads((tmp_path / "out" / "model_analyzer.json").read_text())


def test_a_profile_that_fails_is_reported_with_its_step_command_exit_code_and_log(export_dir, tmp_path):
    binary = _stand_in(
        tmp_path, 'echo "[Model Analyzer] Model Analyzer encountered an error: no GPU for you" >&2\nexit 1\n'
    )
    message, record = _run(export_dir, tmp_path, binary)
    failure = record["failure"]
    assert record["status"] == "failed" and failure["step"] == "profile" and failure["exit_code"] == 1
    assert failure["command"] == f"{binary} profile -f {tmp_path / 'out' / 'ma' / 'config.yaml'}"
    assert "encountered an error: no GPU for you" in failure["reason"] and "no GPU for you" in failure["log_tail"]
    assert "failed at step 'profile'" in message and "exit code: 1" in message and "no GPU for you" in message
    assert (tmp_path / "out" / "ma" / "config.yaml").is_file() and (
        tmp_path / "out" / "ma" / "input_data.json"
    ).is_file()


def test_a_relative_out_folder_gives_model_analyzer_paths_it_can_open_from_its_own_folder(
    export_dir, tmp_path, monkeypatch
):
    # Model Analyzer runs with its work folder as cwd: a relative config path would not be found there
    binary = _stand_in(
        tmp_path,
        'if [ ! -f "$3" ]; then echo "[Model Analyzer] no config file $3" >&2; exit 2; fi\n'
        'echo "[Model Analyzer] Model Analyzer encountered an error: stop here" >&2\nexit 1\n',
    )
    monkeypatch.chdir(tmp_path)
    traffic = TrafficSpec(candidates=CandidateCounts(low=20, high=60))
    fast = ModelAnalyzerSettings(requests=16, perf_analyzer=PaSettings(measurement_ms=1000))
    (tmp_path / "perf_analyzer").write_text("")
    with pytest.raises(ToolError):
        run_model_analyzer(export_dir, Path("out"), fast, traffic, perf_analyzer=Path("perf_analyzer"), command="t",
                           binary=binary)  # fmt: skip
    failure = json.loads((tmp_path / "out" / "model_analyzer.json").read_text())["failure"]
    assert failure["exit_code"] == 1 and "stop here" in failure["reason"], failure


def test_a_profile_past_its_time_limit_is_stopped_and_reported(export_dir, tmp_path, monkeypatch):
    # a shell started in the background ignores SIGINT, so the stand-in may outlive its grace: shorten it to 2 s
    monkeypatch.setattr("tritonrec.bench.tuning.model_analyzer._STOP_GRACE_S", 2.0)
    binary = _stand_in(tmp_path, f"exec {sys.executable} -c 'import time; time.sleep(600)'\n")
    message, record = _run(export_dir, tmp_path, binary, timeout_s=3)
    assert record["failure"]["step"] == "profile" and "did not finish within 3 s" in record["failure"]["reason"]
    assert record["failure"]["exit_code"] is not None  # it was stopped, not left running
    assert "did not finish within 3 s" in message


def test_a_profile_that_writes_no_results_is_reported_as_the_results_step(export_dir, tmp_path):
    message, record = _run(export_dir, tmp_path, _stand_in(tmp_path, "exit 0\n"))
    assert record["failure"]["step"] == "results" and "metrics-model-inference.csv" in record["failure"]["reason"]
    assert "failed at step 'results'" in message


# -- a team's model: Model Analyzer on a spec's <name>_cpu ------------------------------------------------------


@pytest.fixture(scope="module")
def rows_spec(tmp_path_factory):
    """The bag ranker of the unit tests (rows layout: a request is one query's rows), exported."""
    from tritonrec.export.spec_export import export_spec
    from tritonrec.pipeline.spec_steps import spec_rows
    from tritonrec.spec import load_spec

    sys.path.insert(0, str(UNIT))
    from test_spec import SPEC_TOML, write_rows

    work = tmp_path_factory.mktemp("ma-spec")
    write_rows(work / "rows.parquet", n_queries=80)
    (work / "spec.toml").write_text(SPEC_TOML.format(factory="make_bag_ranker", here=UNIT))
    spec = load_spec(work / "spec.toml")
    export_spec(spec, spec_rows(spec), work / "export", fp16=False)
    return work


UNIT = Path(__file__).resolve().parents[1] / "unit"


def _spec_run(work, tmp_path, binary, **settings):
    from tritonrec.measure.spec_traffic import SpecTraffic
    from tritonrec.spec import load_spec

    fast = ModelAnalyzerSettings(requests=16, perf_analyzer=PaSettings(measurement_ms=1000), **settings)
    pa = tmp_path / "perf_analyzer"
    pa.write_text("")
    with pytest.raises(ToolError) as failed:
        run_model_analyzer(work / "export", tmp_path / "out", fast, SpecTraffic(skew=1.0), perf_analyzer=pa,
                           command="test", binary=binary, spec=load_spec(work / "spec.toml"))  # fmt: skip
    return str(failed.value), json.loads((tmp_path / "out" / "model_analyzer.json").read_text())


def test_a_specs_search_replays_its_rows_with_one_batch_size_in_the_config_model_analyzer_reads(rows_spec, tmp_path):
    binary = _stand_in(tmp_path, 'echo "[Model Analyzer] Model Analyzer encountered an error: stop here" >&2\nexit 1\n')
    _, record = _spec_run(rows_spec, tmp_path, binary, min_batch_size=16, max_batch_size=64)
    assert record["failure"]["step"] == "profile" and record["model"] == "bag_ranker_cpu"
    work = tmp_path / "out" / "ma"
    config = json.loads((work / "config.yaml").read_text().split("\n", 1)[1])
    rows = record["traffic"]["rows_per_request"]
    assert list(config["profile_models"]) == ["bag_ranker_cpu"] and isinstance(rows, int) and 3 <= rows < 12
    assert config["profile_models"]["bag_ranker_cpu"]["parameters"]["batch_sizes"] == [rows]  # perf_analyzer -b
    entries = json.loads((work / "input_data.json").read_text())["data"]
    assert len(entries) == 16 * rows and set(entries[0]) == {"title", "price"}  # one entry per row, 16 requests
    assert record["mean_candidates"] == rows and record["traffic"]["query_skew"] == 1.0
    assert (work / "repository" / "bag_ranker_cpu" / "config.pbtxt").is_file()
    assert "bag_ranker_cpu" in (tmp_path / "out" / "model_analyzer.md").read_text()


def test_a_specs_search_from_below_one_requests_rows_is_refused_before_model_analyzer_runs(rows_spec, tmp_path):
    binary = _stand_in(tmp_path, "echo ran > ran.txt\nexit 1\n")
    message, record = _spec_run(rows_spec, tmp_path, binary, min_batch_size=2, max_batch_size=4)
    assert record["failure"]["step"] == "prepare" and "rows: search max_batch_size from at least" in message
    assert not (tmp_path / "out" / "ma" / "ran.txt").exists()


@pytest.mark.slow
def test_model_analyzer_searches_a_specs_model_and_tune_confirms_its_best(rows_spec, tmp_path, perf_analyzer,
                                                                           model_analyzer):  # fmt: skip
    spec, export, out = str(rows_spec / "spec.toml"), str(rows_spec / "export"), tmp_path / "ma"
    argv = ["bench", "model-analyzer", "--spec", spec, "--export", export, "--out", str(out)]
    argv += ["--perf-analyzer", str(perf_analyzer), "--model-analyzer-bin", str(model_analyzer), "--query-skew", "1"]
    argv += ["--min-concurrency", "1", "--max-concurrency", "2", "--min-instances", "1", "--max-instances", "1"]
    argv += ["--min-batch-size", "16", "--max-batch-size", "32", "--requests", "32", "--measurement-ms", "1000"]
    argv += ["--pa-stability-pct", "100000", "--p99-ms", "10000"]
    assert main(argv) == 0
    record = json.loads((out / "model_analyzer.json").read_text())
    assert record["status"] == "ok" and record["model"] == "bag_ranker_cpu"
    rows = record["traffic"]["rows_per_request"]
    with (out / "ma" / "export" / "results" / "metrics-model-inference.csv").open(newline="") as f:
        written = [r for r in csv.DictReader(f) if any(r.values())]
    assert {int(r["Batch"]) for r in written} == {rows}  # perf_analyzer sent the spec's rows, -b rows
    # Model Analyzer's throughput counts rows; our record says requests/s and candidates (rows)/s
    for mine, its in zip(record["measured"], written, strict=True):
        assert mine["requests_per_second"] == pytest.approx(float(its["Throughput (infer/sec)"]) / rows, rel=1e-6)
        assert mine["candidates_per_second"] == pytest.approx(float(its["Throughput (infer/sec)"]), rel=1e-3)
    assert {c["max_batch_size"] for n, c in record["configs"].items() if not n.endswith("default")} == {16, 32}
    best = record["best"]
    assert best is not None

    tuned = tmp_path / "tune"
    argv = ["bench", "tune", "--spec", spec, "--export", export, "--out", str(tuned), "--query-skew", "1"]
    argv += ["--perf-analyzer", str(perf_analyzer), "--concurrency", "2", "--max-batch-sizes", "64"]
    argv += ["--queue-delays-us", "0", "--instance-threads", "1x1", "--passes", "1", "--confirm-repeats", "1"]
    argv += ["--requests", "32", "--measurement-ms", "1000", "--pa-stability-pct", "100000", "--p99-ms", "10000"]
    argv += ["--model-analyzer", str(out)]
    assert main(argv) == 0
    confirmation = json.loads((tuned / "tune.json").read_text())["confirmation"]
    fields = {**best["config"], "preferred_batch_sizes": (), "layout": "rows"}
    assert confirmation["model analyzer"]["label"] == to_tune_config(MaConfig(**fields)).label()
    assert {"shipped", "tuned", "model analyzer"} <= set(confirmation)
