"""How big a model is: weights it computes with, and bytes by part (embedding tables, dense layers, catalogue).

``params`` counts every weight value the model computes with: trainable parameters plus the values of
quantized tables (a quantized table keeps its ``rows x D`` values, each in fewer bits), so pruning and sharing
lower it and quantization does not. ``bytes`` is what the tensors occupy (parameters and buffers, as stored).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from torch import nn

from tritonrec.model.tables import QuantizedEmbedding

__all__ = ["ModelSize", "files_bytes", "model_size"]

_EMBEDDING_PREFIXES = ("items.item.", "items.attribute.", "items.side.")
_CATALOGUE_PREFIXES = ("items.attributes", "items.brand_table", "items.category_table", "items.price_bucket_table")


@dataclass(frozen=True, slots=True)
class ModelSize:
    """Weights and bytes of one model.

    Attributes:
        params: weight values the model computes with (trainable parameters + quantized table values).
        bytes: parameters and buffers as stored.
        embedding_bytes: the item-side embedding tables (item, attribute, brand, category, price bucket).
        dense_bytes: every other weight (projections, attention, cross network, MLP, recency, norms).
        catalogue_bytes: the catalogue id tables the model looks item features up in.
    """

    params: int
    bytes: int
    embedding_bytes: int
    dense_bytes: int
    catalogue_bytes: int

    def to_dict(self) -> dict[str, int]:
        """JSON-ready dict."""
        return asdict(self)


def model_size(model: nn.Module) -> ModelSize:
    """Measure ``model`` (any :class:`~tritonrec.model.ranker.RankingModel`)."""
    parts = {"embedding": 0, "dense": 0, "catalogue": 0}
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        size = tensor.numel() * tensor.element_size()
        if name.startswith(_CATALOGUE_PREFIXES):
            parts["catalogue"] += size
        elif name.startswith(_EMBEDDING_PREFIXES):
            parts["embedding"] += size
        else:
            parts["dense"] += size
    params = sum(p.numel() for p in model.parameters())
    params += sum(m.num_embeddings * m.dim for m in model.modules() if isinstance(m, QuantizedEmbedding))
    return ModelSize(
        params=params,
        bytes=sum(parts.values()),
        embedding_bytes=parts["embedding"],
        dense_bytes=parts["dense"],
        catalogue_bytes=parts["catalogue"],
    )


def files_bytes(paths: list[Path]) -> int:
    """Total size of the files in ``paths`` (folders: every file inside them)."""
    total = 0
    for path in paths:
        if path.is_dir():
            total += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        elif path.is_file():
            total += path.stat().st_size
    return total
