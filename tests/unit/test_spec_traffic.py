"""Traffic from a spec's own rows: requests as the served model takes them, queries drawn with a skew, and the
perf_analyzer input data that replays the very same requests (one batch size per run)."""

import numpy as np
import pytest
from test_spec import HERE, SPEC_TOML, write_rows
from test_spec_query_layout import QUERY_SPEC_TOML, write_query_rows

from tritonrec.client.features import FeatureLimits
from tritonrec.errors import ConfigError
from tritonrec.measure.spec_traffic import SpecTraffic, evaluation_rows, feature_input_data, spec_requests
from tritonrec.pipeline.spec_steps import spec_rows
from tritonrec.repository.spec_variants import SpecVariant, SpecVariantKind, spec_model_config
from tritonrec.spec import load_spec

pytestmark = pytest.mark.unit


def _spec(folder, toml, factory, write):
    write(folder / "rows.parquet")
    (folder / "spec.toml").write_text(toml.format(factory=factory, here=HERE))
    return load_spec(folder / "spec.toml")


def _limits(spec):
    from google.protobuf.json_format import MessageToDict

    config = spec_model_config(spec, SpecVariant(kind=SpecVariantKind.CPU))
    as_json = MessageToDict(config, preserving_proto_field_name=True)
    as_json["max_batch_size"] = config.max_batch_size
    return FeatureLimits.from_config(as_json)


def test_requests_are_whole_queries_drawn_with_a_skew(tmp_path):
    spec = _spec(tmp_path, SPEC_TOML, "make_bag_ranker", write_rows)
    rows = evaluation_rows(spec)
    sizes = {stop - start for start, stop in rows.queries()}
    uniform = spec_requests(rows, _limits(spec), "bag_ranker_cpu", 400, SpecTraffic(seed=1))
    assert {r.n_candidates for r in uniform} <= sizes and all(r.batch == r.n_candidates for r in uniform)
    assert uniform[0].features["price"].shape == (uniform[0].batch, 1)  # a scalar per row travels as [N, 1]
    skewed = spec_requests(rows, _limits(spec), "bag_ranker_cpu", 400, SpecTraffic(seed=1, skew=1.5))

    def top_share(requests):
        counts = {}
        for r in requests:
            key = r.message.raw_input_contents[1]
            counts[key] = counts.get(key, 0) + 1
        return max(counts.values()) / len(requests)

    assert top_share(skewed) > 2 * top_share(uniform)  # a few queries dominate, as popular queries do
    assert uniform[3].for_model("other").model_name == "other"


def test_perf_analyzer_replays_the_same_rows_with_one_batch_size(tmp_path):
    spec = _spec(tmp_path, SPEC_TOML, "make_bag_ranker", write_rows)
    rows = evaluation_rows(spec)
    fixed = spec_requests(rows, _limits(spec), "bag_ranker_cpu", 5, SpecTraffic(rows_per_request=4))
    data, batch = feature_input_data(fixed)
    assert batch == 4 and len(data["data"]) == 20  # perf_analyzer stacks -b consecutive entries into one request
    first = fixed[0].features
    assert data["data"][1]["price"] == {"content": first["price"][1].tolist(), "shape": [1]}
    assert data["data"][2]["title"]["shape"] == [first["title"].shape[1]]  # rows of one request share a length
    with pytest.raises(ConfigError, match="one batch size per run"):
        feature_input_data(spec_requests(rows, _limits(spec), "m", 30, SpecTraffic(seed=2)))


def test_query_layout_requests_are_one_query_each_with_its_real_candidates(tmp_path):
    spec = _spec(tmp_path, QUERY_SPEC_TOML, "make_history_ranker", write_query_rows)
    rows = spec_rows(spec)
    requests = spec_requests(rows, _limits(spec), "history_ranker_cpu", 20, SpecTraffic(seed=3))
    assert all(r.batch == 1 and r.features["item"].shape == (1, r.n_candidates) for r in requests)
    data, batch = feature_input_data(requests)
    assert batch == 1 and len(data["data"]) == 20
    assert data["data"][0]["item"]["shape"] == [requests[0].n_candidates]
    assert np.array(data["data"][0]["history"]["content"]).size == requests[0].features["history"].shape[1]
    with pytest.raises(ConfigError, match="rows_per_request is for the rows layout"):
        spec_requests(rows, _limits(spec), "m", 2, SpecTraffic(rows_per_request=3))
