"""Row-wise INT8/INT4 embedding tables: every item-side FP32 table quantized, the rest of the model unchanged.

Each table becomes a :class:`~tritonrec.model.tables.QuantizedEmbedding` (codes + one FP16 scale and bias per
row, or per block of a row), dequantized in the graph by Gather + Cast + Mul + Add. Shared tables (hash, QR) are
quantized inside their sharing. The history's recency table (one row per position) stays FP32: it is part of the
dense encoder and tiny.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from tritonrec.compress.options import QuantizeOptions
from tritonrec.data.catalogue import Catalogue
from tritonrec.errors import ConfigError
from tritonrec.model.config import EmbeddingStorage
from tritonrec.model.ranker import RankingModel
from tritonrec.model.tables import QuantizedEmbedding

__all__ = ["quantize_embeddings"]


def quantize_embeddings(model: RankingModel, options: QuantizeOptions) -> tuple[RankingModel, dict[str, Any]]:
    """Return a copy of ``model`` whose item-side tables are quantized as ``options`` asks.

    Returns:
        ``(quantized model in eval mode, details)``; details hold per table the bytes before and after and the
        largest reconstruction error, also relative to the block's half scale (<= 1 by construction).

    Raises:
        ConfigError: the tables are already quantized.
    """
    if model.config.embedding_storage is not EmbeddingStorage.FP32:
        raise ConfigError(f"the tables are already {model.config.embedding_storage.value}")
    config = dataclasses.replace(
        model.config,
        embedding_storage=options.storage,
        embedding_block=options.block,
        compact_catalogue=model.config.compact_catalogue or options.compact_catalogue,
    )
    quantized = RankingModel(model.spec, config, Catalogue.empty(model.spec))
    state = model.state_dict()
    tables: dict[str, Any] = {}
    for name, module in model.items.named_modules():
        if not isinstance(module, nn.Embedding):
            continue
        prefix = f"items.{name}"
        weight = state.pop(f"{prefix}.weight")
        table = QuantizedEmbedding.from_weight(weight, options.storage, options.block)
        for key, value in table.state_dict().items():
            state[f"{prefix}.{key}"] = value
        error = (table.dequantized() - weight).abs()
        half_scale = table.scales.float().repeat_interleave(table.block, dim=1) / 2
        tables[prefix] = {
            "rows": int(weight.shape[0]),
            "bytes_fp32": weight.numel() * weight.element_size(),
            "bytes": sum(t.numel() * t.element_size() for t in table.state_dict().values()),
            "max_abs_error": float(error.max()),
            "max_error_over_half_scale": round(float((error / half_scale).max()), 4),
        }
    quantized.load_state_dict(state)
    quantized.eval()
    before = sum(t["bytes_fp32"] for t in tables.values())
    after = sum(t["bytes"] for t in tables.values())
    details = {
        "storage": options.storage.value,
        "block": options.block or model.config.embedding_dim,
        "tables": tables,
        "table_bytes_fp32": before,
        "table_bytes": after,
        "table_ratio": round(before / after, 3) if after else None,
    }
    return quantized, details
