"""`bench batching --spec` without a server: the batcher settings applied to what `repo build --spec` ships for a
spec (only the fields a setting changes), the settings that come out the same, and the report's failed runs."""

import dataclasses

import pytest
from test_spec import spec_file  # noqa: F401 - the bag ranker's spec (rows layout), a fixture

from tritonrec.bench.serving.batching import BATCHER_SETTINGS
from tritonrec.bench.serving.spec_batching import (
    SpecBatchingSettings,
    describe,
    spec_batching_variants,
    write_spec_markdown,
)
from tritonrec.errors import ConfigError
from tritonrec.records import new_record
from tritonrec.repository.spec_variants import ROWS_BATCHING
from tritonrec.spec import load_spec


def test_each_setting_changes_only_its_own_fields_of_the_shipped_rows_batching(spec_file):  # noqa: F811
    spec = load_spec(spec_file)
    variants = spec_batching_variants(spec, tuple(BATCHER_SETTINGS))
    shipped = variants["dynamic"]
    assert shipped.batching == ROWS_BATCHING and shipped.instance_count == 2  # what repo build --spec ships
    assert variants["no_batching"].batching == dataclasses.replace(ROWS_BATCHING, dynamic=False)
    assert variants["dynamic_no_delay"].batching.max_queue_delay_us == 0
    assert variants["dynamic_no_delay"].batching.max_batch_size == 4096  # the spec's rows, not ranker_cpu's 64 users
    assert variants["dynamic_1_instance"].instance_count == 1
    # the spec's batching has no preferred sizes, and its model.py asks no cancellation: the same configuration
    assert variants["dynamic_no_preferred"] == shipped and variants["dynamic_cancel_check"] == shipped
    assert describe(shipped, spec) == "dynamic batching: up to 4,096 rows, preferred none, 2 ms delay, 2 instances"
    assert describe(variants["no_batching"], spec) == "default scheduler: one request per execution, 2 instances"


def test_settings_need_the_baseline_and_known_names():
    for bad in (("dynamic",), ("no_batching", "turbo")):
        with pytest.raises(ConfigError, match="include no_batching"):
            SpecBatchingSettings(settings=bad)


def test_the_report_says_which_settings_failed_in_the_tools_own_words():
    row = {
        "description": "d",
        "same_as": None,
        "config": {},
        "label": "x",
        "tool": "perf_analyzer",
        "concurrency": 16,
        "candidates_per_second": None,
        "p99_ms": None,
        "errors": ["Request concurrency: 16\nFailed to obtain stable measurement within 10 windows.\nbye\n"],
    }
    ok = {**row, "errors": [], "candidates_per_second": {"median": 10.0, "min": 9.0, "max": 11.0, "n": 3},
          "p99_ms": {"median": 1.0, "min": 1.0, "max": 1.0, "n": 3}}  # fmt: skip
    record = {**new_record("bench batching --spec"), "model": "m_cpu", "spec": {"name": "m", "layout": "rows"},
              "settings": {"concurrency": 16, "requests": 8, "repeats": 3}, "traffic": {},
              "results": {"no_batching": ok, "dynamic_1_instance": row}}  # fmt: skip
    text = write_spec_markdown(record)
    assert "| dynamic_1_instance | d | - | - | - | 1 |" in text
    assert "- dynamic_1_instance: 1 run(s): `Failed to obtain stable measurement within 10 windows.`" in text
