"""Item-side tables of the model: row-wise quantized rows (error bound, packing), the compression config fields."""

import numpy as np
import pytest
import torch

from tritonrec.errors import ConfigError
from tritonrec.model.config import EmbeddingStorage, ModelConfig, TableSharing, preset
from tritonrec.model.ranker import RankingModel
from tritonrec.model.tables import QuantizedEmbedding

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "storage,block,bytes_per_row",
    [("int8", 0, 64 + 4), ("int8", 16, 64 + 16), ("int4", 0, 32 + 4), ("int4", 32, 32 + 8)],
)
def test_quantized_rows_stay_within_half_a_step_and_take_their_bytes(storage, block, bytes_per_row):
    torch.manual_seed(0)
    weight = torch.randn(500, 64) * torch.rand(500, 1) * 3  # rows of very different ranges
    table = QuantizedEmbedding.from_weight(weight, EmbeddingStorage(storage), block)
    step = table.scales.float().repeat_interleave(table.block, dim=1)
    error = (table.dequantized() - weight).abs()
    assert (error <= step / 2 + 1e-6).all()
    assert table.levels == (255 if storage == "int8" else 15)
    assert sum(t.numel() * t.element_size() for t in table.state_dict().values()) == 500 * bytes_per_row
    rows = torch.tensor([[3, 0], [499, 7]])
    torch.testing.assert_close(table(rows), table.dequantized()[rows])


def test_int4_codes_pack_two_values_per_byte_low_nibble_first():
    weight = torch.tensor([[0.0, 15.0, 1.0, 14.0]])  # range 15 -> scale 1, bias 0: codes equal the values
    table = QuantizedEmbedding.from_weight(weight, EmbeddingStorage.INT4)
    assert table.codes.tolist() == [[0 | 15 << 4, 1 | 14 << 4]]
    torch.testing.assert_close(table.dequantized(), weight)


def test_compression_fields_are_validated_and_round_trip():
    config = ModelConfig(
        cross_ranks=(16, 8), ffn_hidden=(32,), attention_qk_dim=8, attention_v_dim=4, item_sharing="qr",
        item_buckets=10, embedding_storage="int4", embedding_block=16, compact_catalogue=True,
    )  # fmt: skip
    assert config.item_sharing is TableSharing.QR and config.embedding_storage is EmbeddingStorage.INT4
    assert ModelConfig.from_dict(config.to_dict()) == config
    for bad in (
        {"cross_ranks": (16,)},
        {"ffn_hidden": (0,)},
        {"attention_qk_dim": 33},
        {"item_sharing": "hash"},
        {"item_buckets": 5},
        {"embedding_block": 48},
        {"embedding_storage": "int2"},
        {"embedding_storage": "int4", "embedding_block": 1},
    ):
        with pytest.raises(ConfigError):
            ModelConfig(**bad)


def test_a_config_written_before_the_compression_fields_builds_the_original_model(tiny_spec_and_catalogue):
    spec, catalogue = tiny_spec_and_catalogue
    old = {"embedding_dim": 64, "n_heads": 2, "history_layers": 1, "cross_layers": 2, "cross_rank": 64,
           "mlp_hidden": [128, 64], "dropout": 0.1, "ffn_mult": 2}  # fmt: skip
    model = RankingModel(spec, ModelConfig.from_dict(old), catalogue)
    assert ModelConfig.from_dict(old) == preset("base")
    assert isinstance(model.items.item, torch.nn.Embedding) and model.items.attributes.dtype == torch.int64
    assert np.array_equal(model.items.brand_table.numpy(), catalogue.brand)
