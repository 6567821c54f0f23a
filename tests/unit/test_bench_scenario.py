"""Scenario files: every shipped scenario loads; typos and impossible values are refused with the key named."""

from pathlib import Path

import pytest

from tritonrec.errors import ConfigError
from tritonrec.measure.scenario import SLA, LoadShape, ShapeKind, load_scenario, scenario_from_dict

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "bench" / "scenarios").glob("*.toml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_shipped_scenarios_load_and_end(path):
    scenario = load_scenario(path)
    assert scenario.name == path.stem
    assert scenario.shape.users_at(0) is not None
    assert scenario.shape.users_at(scenario.shape.total_s) is None


def test_the_dlrm_scenario_names_its_spec_next_to_it():
    scenario = load_scenario(ROOT / "examples" / "dlrm" / "locust.toml")
    assert scenario.spec == str(ROOT / "examples" / "dlrm" / "spec.toml") and scenario.model == "dlrm_cpu"
    assert scenario.query_skew == 1.0 and scenario.shape.users_at(scenario.shape.total_s) is None


def test_at_least_one_scenario_per_shape_kind():
    kinds = {load_scenario(p).shape.kind for p in SCENARIOS}
    assert kinds == set(ShapeKind)


def test_unknown_key_is_named(tmp_path):
    path = tmp_path / "typo.toml"
    path.write_text('name = "x"\n[shape]\nkind = "constant"\nuser = 4\n')
    with pytest.raises(ConfigError, match=r"\[shape\]: unknown key\(s\) \['user'\]"):
        load_scenario(path)


def test_unknown_shape_kind_lists_the_choices():
    with pytest.raises(ConfigError, match="shape.kind must be one of .*'spike'.* got 'wave'"):
        scenario_from_dict({"name": "x", "shape": {"kind": "wave"}})


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"shape": {"users": -1}}, "shape.users must be >= 0"),
        ({"shape": {"duration_s": 0}}, "shape.duration_s must be > 0"),
        ({"sla": {"max_error_rate": 2}}, "max_error_rate <= 1"),
        ({"traffic": {"candidates": {"low": 10, "high": 5}}}, "low <= high"),
        ({"traffic": {"source": "netflix"}}, "traffic.source must be one of"),
        ({"think_time_ms": [5, 1]}, "think_time_ms must be"),
    ],
)
def test_bad_values_are_refused(table, message):
    with pytest.raises(ConfigError, match=message):
        scenario_from_dict({"name": "x", **table})


def test_missing_file_and_bad_toml_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_scenario(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_scenario(bad)


def test_step_ramp_and_spike_shapes():
    step = LoadShape(kind="step", users=4, step_users=4, step_s=10, steps=3)
    assert [step.users_at(t) for t in (0, 9.9, 10, 25, 30)] == [4, 4, 8, 12, None]
    assert step.max_users == 12
    ramp = LoadShape(kind="ramp", users=2, peak_users=12, duration_s=10)
    assert [ramp.users_at(t) for t in (0, 5, 9.99, 10)] == [2, 7, 11, None]
    spike = LoadShape(kind="spike", users=8, peak_users=64, spike_at_s=5, spike_s=5, duration_s=20)
    assert [spike.users_at(t) for t in (0, 5, 9.9, 10, 19)] == [8, 64, 64, 8, 8]


def test_sla_violations_name_each_miss():
    sla = SLA(p99_ms=100, max_error_rate=0.01)
    assert sla.violations(p99_ms=99, error_rate=0.0, requests=10) == []
    problems = sla.violations(p99_ms=150, error_rate=0.05, requests=10)
    assert len(problems) == 2 and "p99 150.0 ms > SLA 100 ms" in problems[0] and "5.00%" in problems[1]
    assert sla.violations(p99_ms=0, error_rate=0, requests=0) == ["no request completed"]
