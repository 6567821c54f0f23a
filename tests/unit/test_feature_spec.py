import numpy as np
import pytest
import torch

from tritonrec.data.feature_spec import FeatureSpec, map_ids_to_rows, oov_row, table_rows
from tritonrec.errors import ConfigError
from tritonrec.model.layers import ids_to_rows

pytestmark = pytest.mark.unit

IDS = np.array([-(2**40), -5, -1, 0, 1, 7, 10, 11, 12, 2**40])


def test_ids_outside_the_vocabulary_map_to_the_oov_row():
    rows = map_ids_to_rows(IDS, 10)
    assert rows.tolist() == [11, 11, 11, 0, 1, 7, 10, 11, 11, 11]
    assert rows.max() < table_rows(10)
    assert oov_row(10) == 11


def test_torch_and_numpy_mappings_agree():
    assert ids_to_rows(torch.from_numpy(IDS), 10).tolist() == map_ids_to_rows(IDS, 10).tolist()


def test_float_ids_are_refused():
    with pytest.raises(TypeError, match="integers"):
        map_ids_to_rows(np.array([1.5]), 10)


def test_feature_spec_round_trips_and_rejects_unknown_keys():
    spec = FeatureSpec(n_items=5, n_attributes=3, attr_slots=2, history_len=4)
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ConfigError, match="unknown"):
        FeatureSpec.from_dict({**spec.to_dict(), "colour": 1})


@pytest.mark.parametrize(
    "kwargs",
    [{"n_items": 0}, {"n_items": 5, "history_len": 0}, {"n_items": 5, "n_brands": -1}, {"n_items": 5, "attr_slots": 2}],
)
def test_invalid_feature_specs_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        FeatureSpec(**kwargs)
