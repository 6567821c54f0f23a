"""Load tests on a team's own model: `bench sweep --spec` drives the test-file models (rows, and query + candidates)
through the real tritonserver with requests built from their evaluation rows, our generator and the real
perf_analyzer on the very same requests."""

import json
import sys
from pathlib import Path

import pytest

from tritonrec.cli import main
from tritonrec.export.spec_export import export_spec
from tritonrec.pipeline.spec_steps import spec_repository_step, spec_rows
from tritonrec.repository.spec_variants import SpecVariant, SpecVariantKind
from tritonrec.serving.server import LocalTriton
from tritonrec.spec import load_spec

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))  # the test-file models and their rows
from test_spec import SPEC_TOML, write_rows  # noqa: E402
from test_spec_query_layout import QUERY_SPEC_TOML, write_query_rows  # noqa: E402

pytestmark = pytest.mark.integration

UNIT = Path(__file__).resolve().parents[1] / "unit"


@pytest.fixture(scope="module")
def served_specs(tmp_path_factory):
    work = tmp_path_factory.mktemp("spec-load")
    specs = {}
    for name, toml, factory, write in (
        ("rows", SPEC_TOML, "make_bag_ranker", write_rows),
        ("query", QUERY_SPEC_TOML, "make_history_ranker", write_query_rows),
    ):
        folder = work / name
        folder.mkdir()
        write(folder / "rows.parquet", n_queries=60)
        (folder / "spec.toml").write_text(toml.format(factory=factory, here=UNIT))
        spec = load_spec(folder / "spec.toml")
        export_spec(spec, spec_rows(spec), folder / "export", fp16=False)
        spec_repository_step(spec, folder / "export", work / "repo", [SpecVariant(kind=SpecVariantKind.CPU)])
        specs[name] = folder / "spec.toml"
    with LocalTriton(work / "repo", models=["bag_ranker_cpu", "history_ranker_cpu"], log_file=work / "log") as server:
        yield specs, server, work


@pytest.mark.parametrize(("layout", "model"), [("rows", "bag_ranker_cpu"), ("query", "history_ranker_cpu")])
def test_sweep_drives_a_spec_model_with_its_own_rows_beside_perf_analyzer(served_specs, perf_analyzer, layout, model):
    specs, server, work = served_specs
    out = work / f"sweep-{layout}"
    args = [
        "bench", "sweep", "--url", server.grpc_url, "--spec", str(specs[layout]), "--model", model,
        "--out", str(out), "--concurrency", "2", "--requests", "64", "--repeats", "1", "--query-skew", "1.0",
        "--warmup-s", "0.5", "--window-s", "1", "--max-windows", "3", "--perf-analyzer", str(perf_analyzer),
    ]  # fmt: skip
    assert main(args) == 0
    report = json.loads((out / "sweep.json").read_text())
    traffic = report["traffic"]
    assert traffic["layout"] == ("rows" if layout == "rows" else "query_candidates")
    assert traffic["distinct_requests"] == 64 and traffic["query_skew"] == 1.0
    if layout == "rows":  # perf_analyzer sends one batch size: every request the median query's rows
        assert (
            isinstance(traffic["rows_per_request"], int) and traffic["mean_candidates"] == traffic["rows_per_request"]
        )
    (point,) = report["points"]
    ours, theirs = point["tritonrec"], point["perf_analyzer"]
    assert all(run["errors"] == 0 for run in ours["runs"]) and ours["summary"]["requests_per_second"]["median"] > 0
    assert theirs["summary"] is not None, theirs["runs"]  # perf_analyzer replayed the same requests
    assert theirs["summary"]["requests_per_second"]["median"] > 0
    assert "spec" in (out / "sweep.md").read_text()


def test_locust_drives_a_spec_model_from_a_scenario_that_names_its_spec(served_specs, tmp_path):
    specs, server, _ = served_specs
    scenario = tmp_path / "spec-steady.toml"
    scenario.write_text(
        f'name = "spec-steady"\nmodel = "history_ranker_cpu"\nspec = "{specs["query"]}"\nquery_skew = 1.0\n'
        '[shape]\nkind = "constant"\nusers = 4\nduration_s = 5\nspawn_rate = 50\n'
        "[sla]\np99_ms = 60000\nmax_error_rate = 0.0\n"
    )
    argv = ["bench", "locust", "--url", server.grpc_url, "--scenario", str(scenario), "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    report = json.loads((tmp_path / "run" / "locust.json").read_text())
    assert report["exit_code"] == 0 and report["requests"] > 0 and report["failures"] == 0
    rows = spec_rows(load_spec(specs["query"]))
    sizes = [stop - start for start, stop in rows.queries()]
    assert min(sizes) <= report["mean_candidates"] <= max(sizes)  # real queries' candidate counts


def test_a_scenario_with_a_spec_must_name_its_served_model(tmp_path):
    from tritonrec.errors import ConfigError
    from tritonrec.measure.scenario import load_scenario

    scenario = tmp_path / "bad.toml"
    scenario.write_text('name = "x"\nspec = "spec.toml"\n')
    with pytest.raises(ConfigError, match="names its served model"):
        load_scenario(scenario)
