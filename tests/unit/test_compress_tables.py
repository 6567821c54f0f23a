"""compress share / quantize-embeddings on a model: budgets, collisions, the QR fit, what is quantized, sizes."""

import pytest
import torch

from tritonrec.compress.options import QuantizeOptions, ShareOptions
from tritonrec.compress.quantize import quantize_embeddings
from tritonrec.compress.share import _fit_qr, collisions, qr_buckets, share_item_table, shared_rows
from tritonrec.compress.size import model_size
from tritonrec.errors import ConfigError
from tritonrec.model.config import TableSharing, preset
from tritonrec.model.ranker import RankingModel
from tritonrec.model.tables import HashedEmbedding, QREmbedding, QuantizedEmbedding, embedding

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def base_model(tiny_spec_and_catalogue):
    spec, catalogue = tiny_spec_and_catalogue
    torch.manual_seed(0)
    return RankingModel(spec, preset("base"), catalogue).eval()


def _inputs():
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 301, (4, 12), generator=g), torch.randint(1, 301, (4, 9), generator=g)


def test_hash_collisions_are_counted_per_id():
    # ids 1..9 into 6 buckets: {6}, {1, 7}, {2, 8}, {3, 9}, {4}, {5} -> 6 colliding ids, 6 distinct vectors
    report = collisions(HashedEmbedding(embedding(6, 4, padding=False), 6), rows=10)
    assert report["colliding_ids"] == 6 and report["distinct_vectors"] == 6 and report["ids"] == 9
    assert report["ids_per_row"]["shared"] == {"rows_used": 6, "mean": 1.5, "max": 2}
    full = collisions(HashedEmbedding(embedding(4, 4, padding=False), 4), rows=10)
    assert full["colliding_ids"] == 9 and full["distinct_vectors"] == 4


def test_qr_gives_every_id_its_own_vector_while_its_rows_are_shared():
    table = QREmbedding(embedding(3, 4, padding=False), embedding(4, 4, padding=False), 4)
    report = collisions(table, rows=10)
    assert report["colliding_ids"] == 0 and report["distinct_vectors"] == 9
    assert report["ids_per_row"]["remainder"]["max"] == 3 and report["ids_per_row"]["quotient"]["max"] == 4
    vectors = table(torch.arange(1, 10))
    assert len({tuple(v.tolist()) for v in vectors}) == 9


def test_quantize_embeddings_quantizes_every_item_side_table_and_keeps_scores_close(base_model):
    h, c = _inputs()
    for storage, atol in (("int8", 0.05), ("int4", 0.5)):
        quantized, details = quantize_embeddings(base_model, QuantizeOptions(storage=storage))
        assert set(details["tables"]) == {
            "items.item",
            "items.attribute",
            "items.side.brand",
            "items.side.category",
            "items.side.price_bucket",
        }
        assert all(t["max_error_over_half_scale"] <= 1.0 for t in details["tables"].values())
        assert isinstance(quantized.items.item, QuantizedEmbedding)
        assert quantized.items.attributes.dtype == torch.int8  # compact catalogue: 30 attribute ids fit int8
        torch.testing.assert_close(quantized(h, c), base_model(h, c), atol=atol, rtol=0)
        size, parent = model_size(quantized), model_size(base_model)
        assert size.params == parent.params and size.dense_bytes == parent.dense_bytes
        assert size.embedding_bytes * (3.7 if storage == "int8" else 7.0) < parent.embedding_bytes
    with pytest.raises(ConfigError, match="already int4"):
        quantize_embeddings(quantized, QuantizeOptions(storage="int8"))


def test_hash_and_qr_get_the_same_row_budget_and_qr_refuses_what_it_cannot_reach():
    assert shared_rows(12103, TableSharing.HASH, 4) == (3026, 3026)
    buckets, stored = shared_rows(12103, TableSharing.QR, 4)
    assert stored <= 3026 and buckets + -(-12103 // buckets) == stored and qr_buckets(12103, 3026) == buckets
    with pytest.raises(ConfigError, match="lower ratio"):
        shared_rows(12103, TableSharing.QR, 100)


def test_qr_fit_recovers_a_table_that_is_a_quotient_remainder_product():
    torch.manual_seed(0)
    quotient, remainder = torch.rand(5, 8) + 0.5, torch.randn(7, 8)
    rows = torch.arange(33)
    weight = quotient[rows // 7] * remainder[rows % 7]
    q, r = _fit_qr(weight, 7, 5)
    torch.testing.assert_close((q[rows // 7] * r[rows % 7])[1:], weight[1:], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("kind", ["hash", "qr"])
def test_share_replaces_the_item_table_within_its_budget_and_records_collisions(base_model, kind):
    shared, details = share_item_table(base_model, TableSharing(kind), 4)
    options = ShareOptions(kind=kind, ratio=4)
    assert options.kind is TableSharing(kind)
    assert details["stored_rows"] <= -(-302 // 4) and shared.config.item_sharing is TableSharing(kind)
    assert (details["collisions"]["colliding_ids"] == 0) == (kind == "qr")
    assert model_size(shared).params < model_size(base_model).params
    h, c = _inputs()
    assert torch.isfinite(shared(h, c)).all()
    with pytest.raises(ConfigError, match="full FP32 item table"):
        share_item_table(shared, TableSharing.HASH, 2)
