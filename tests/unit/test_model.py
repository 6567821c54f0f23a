import dataclasses

import pytest
import torch

from tritonrec.data.feature_spec import FeatureSpec
from tritonrec.errors import ConfigError
from tritonrec.model.config import PRESETS, ModelConfig, preset
from tritonrec.model.ranker import RankingModel

pytestmark = pytest.mark.unit


@pytest.fixture(params=sorted(PRESETS))
def model(request, tiny_spec_and_catalogue):
    spec, catalogue = tiny_spec_and_catalogue
    torch.manual_seed(0)
    return RankingModel(spec, PRESETS[request.param], catalogue).eval()


def test_scores_have_one_logit_per_candidate(model):
    out = model(torch.randint(0, 301, (3, 12)), torch.randint(1, 301, (3, 7)))
    assert out.shape == (3, 7)
    assert out.dtype == torch.float32


def test_any_id_is_safe_and_unknown_ids_score_like_the_oov_row(model):
    history = torch.tensor([[-7, 0, 5, 10**12, 299, 300, 301, -1, 2, 3, 4, 5]])
    weird = model(history, torch.tensor([[-1, 301, 10**15, 0, 5]]))
    assert torch.isfinite(weird).all()
    assert weird[0, 0] == weird[0, 1] == weird[0, 2]  # all three are the OOV row


def test_an_empty_history_gives_finite_scores(model):
    out = model(torch.zeros(2, 12, dtype=torch.long), torch.randint(1, 301, (2, 4)))
    assert torch.isfinite(out).all()


def test_rows_do_not_influence_each_other(model):
    h, c = torch.randint(0, 301, (6, 12)), torch.randint(1, 301, (6, 5))
    together = model(h, c)
    alone = torch.cat([model(h[i : i + 1], c[i : i + 1]) for i in range(6)])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)


def test_an_offsets_batch_scores_each_candidate_as_its_padded_row(model):
    h = torch.randint(0, 301, (3, 12))
    h[1] = 0  # an empty history among them
    c = torch.randint(1, 301, (3, 5))
    encoded, mask = model.encode_history(h)
    users = torch.tensor([0, 0, 1, 2, 2, 2])
    concatenated = torch.tensor([c[0, 0], c[0, 3], c[1, 4], c[2, 1], c[2, 2], c[2, 0]])
    expected = model(h, c)[users, torch.tensor([0, 3, 4, 1, 2, 0])]
    torch.testing.assert_close(model.score_offsets(encoded, mask, concatenated, users), expected, rtol=1e-5, atol=1e-5)


def test_a_grid_batch_scores_its_real_candidates_as_their_padded_rows(model):
    h = torch.randint(0, 301, (3, 12))
    h[1] = 0  # an empty history among them
    c = torch.randint(1, 301, (3, 5))
    encoded, mask = model.encode_history(h)
    real = torch.tensor([0, 3, 9, 11, 12, 10])  # any positions of the flattened [3, 5] grid, in any order
    expected = model(h, c).reshape(-1)[real]
    torch.testing.assert_close(model.score_grid(encoded, mask, c, real), expected, rtol=1e-5, atol=1e-5)


def test_leading_padding_does_not_change_scores(model):
    h = torch.tensor([[0] * 8 + [4, 9, 17, 3]])
    c = torch.tensor([[5, 6, 7]])
    torch.testing.assert_close(model(h, c), model(h[:, -4:], c), rtol=1e-5, atol=1e-5)


def test_history_longer_than_the_spec_reads_only_the_most_recent_items(model):
    h = torch.randint(1, 301, (2, 12))
    c = torch.randint(1, 301, (2, 3))
    longer = torch.cat([torch.randint(1, 301, (2, 5)), h], dim=1)
    torch.testing.assert_close(model(longer, c), model(h, c))


def test_gradients_reach_the_embeddings(tiny_spec_and_catalogue):
    spec, catalogue = tiny_spec_and_catalogue
    m = RankingModel(spec, preset("small"), catalogue)
    m(torch.randint(1, 301, (4, 12)), torch.randint(1, 301, (4, 3))).sum().backward()
    assert m.items.item.weight.grad is not None and m.items.item.weight.grad.abs().sum() > 0


def test_large_preset_is_the_big_model_on_a_big_synthetic_catalogue():
    spec = FeatureSpec(
        n_items=400_000, n_attributes=1_000, n_brands=2_000, n_categories=100, n_price_buckets=10, attr_slots=4
    )
    counts = {name: RankingModel(spec, PRESETS[name]).n_parameters() for name in ("small", "base", "large")}
    assert counts["large"] >= 50_000_000
    assert counts["small"] < counts["base"] < counts["large"]


def test_unknown_preset_and_bad_configs_are_config_errors():
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        preset("huge")
    with pytest.raises(ConfigError):
        ModelConfig(embedding_dim=30, n_heads=4)
    with pytest.raises(ConfigError):
        dataclasses.replace(preset("base"), dropout=1.5)
    assert ModelConfig.from_dict(preset("large").to_dict()) == preset("large")


def test_item_vectors_come_from_the_catalogue_side_features(tiny_spec_and_catalogue):
    spec, catalogue = tiny_spec_and_catalogue
    changed = dataclasses.replace(catalogue, brand=catalogue.brand.copy())
    changed.brand[5] = changed.brand[5] % spec.n_brands + 1
    torch.manual_seed(0)
    a = RankingModel(spec, preset("small"), catalogue).eval()
    torch.manual_seed(0)
    b = RankingModel(spec, preset("small"), changed).eval()
    rows = torch.tensor([5, 6])
    va, vb = a.items(rows), b.items(rows)
    assert not torch.allclose(va[0], vb[0])
    torch.testing.assert_close(va[1], vb[1])
