"""`ModelConfig` and the named presets (:class:`Preset`: ``small``, ``base``, ``large``)."""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Any

from tritonrec.dictconfig import known_fields
from tritonrec.errors import ConfigError

__all__ = ["PRESETS", "EmbeddingStorage", "ModelConfig", "Preset", "TableSharing", "preset"]


class TableSharing(enum.StrEnum):
    """How the item-id embedding table is stored: one row per id, or rows shared between ids."""

    NONE = "none"  # one row per item row
    HASH = "hash"  # the hashing trick: row ``r`` reads shared row ``r mod item_buckets``
    QR = "qr"  # quotient-remainder (Shi et al. 2020): ``Q[r // item_buckets] * R[r mod item_buckets]``


class EmbeddingStorage(enum.StrEnum):
    """Storage of the item-side embedding tables (item, attribute, brand, category, price bucket)."""

    FP32 = "fp32"
    INT8 = "int8"  # uint8 codes, one scale and zero point per row (or per block of a row)
    INT4 = "int4"  # two 4-bit codes per byte, one scale and zero point per row (or per block)

    @property
    def bits(self) -> int:
        """Bits per stored value."""
        return {EmbeddingStorage.FP32: 32, EmbeddingStorage.INT8: 8, EmbeddingStorage.INT4: 4}[self]


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelConfig:
    """Architecture of a :class:`~tritonrec.model.ranker.RankingModel`.

    Attributes:
        embedding_dim: ``D``, width of every embedding and of the item/history vectors.
        n_heads: heads of the target attention and of the history self-attention; must divide ``D``.
        history_layers: self-attention blocks run over the history once per user (0 = none).
        cross_layers: DCN-v2 cross layers over the interaction features.
        cross_rank: rank of the low-rank cross weights (0 = full rank).
        mlp_hidden: hidden widths of the MLP on top of the cross network.
        dropout: dropout on item vectors and history-block outputs during training.
        ffn_mult: width multiplier of the feed-forward part of each history block.
        cross_ranks: rank of each cross layer after structured pruning (empty = ``cross_rank`` for every layer).
        ffn_hidden: hidden width of each history block's feed-forward part after pruning (empty =
            ``ffn_mult * D``).
        attention_qk_dim: query/key channels per head after pruning (0 = ``D / n_heads``).
        attention_v_dim: value channels per head after pruning (0 = ``D / n_heads``).
        item_sharing: how item-id rows are stored (see :class:`TableSharing`).
        item_buckets: rows of the shared item table (hash), or of the remainder table (QR); 0 without sharing.
        embedding_storage: FP32 tables, or row-wise INT8/INT4 tables dequantized inside the graph.
        embedding_block: values per quantization block of a row (0 = one block per row); must divide ``D``.
        compact_catalogue: keep the catalogue's id tables (attributes, brand, category, price bucket) in the
            narrowest integer type that holds their ids instead of int64.

    Every field added after the first release has a default that builds the original architecture, so older
    checkpoints load unchanged.
    """

    embedding_dim: int = 64
    n_heads: int = 2
    history_layers: int = 1
    cross_layers: int = 2
    cross_rank: int = 64
    mlp_hidden: tuple[int, ...] = (128, 64)
    dropout: float = 0.1
    ffn_mult: int = 2
    cross_ranks: tuple[int, ...] = ()
    ffn_hidden: tuple[int, ...] = ()
    attention_qk_dim: int = 0
    attention_v_dim: int = 0
    item_sharing: TableSharing = TableSharing.NONE
    item_buckets: int = 0
    embedding_storage: EmbeddingStorage = EmbeddingStorage.FP32
    embedding_block: int = 0
    compact_catalogue: bool = False

    def __post_init__(self) -> None:
        if self.embedding_dim < 1 or self.n_heads < 1 or self.embedding_dim % self.n_heads:
            raise ConfigError(
                f"embedding_dim ({self.embedding_dim}) must be a positive multiple of n_heads ({self.n_heads})"
            )
        if self.history_layers < 0 or self.cross_layers < 0 or self.ffn_mult < 1:
            raise ConfigError("history_layers and cross_layers must be >= 0, ffn_mult >= 1")
        if any(w < 1 for w in self.mlp_hidden):
            raise ConfigError(f"mlp_hidden widths must be >= 1, got {self.mlp_hidden}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must lie in [0, 1), got {self.dropout}")
        self._check_pruned_widths()
        self._check_tables()

    def _check_pruned_widths(self) -> None:
        for name, widths, layers in (
            ("cross_ranks", self.cross_ranks, self.cross_layers),
            ("ffn_hidden", self.ffn_hidden, self.history_layers),
        ):
            if widths and (len(widths) != layers or any(w < 1 for w in widths)):
                raise ConfigError(f"{name} must hold one width >= 1 per layer ({layers}), got {widths}")
        head_dim = self.embedding_dim // self.n_heads
        for name in ("attention_qk_dim", "attention_v_dim"):
            if not 0 <= getattr(self, name) <= head_dim:
                raise ConfigError(f"{name} must lie in 0..{head_dim} (0 = D / n_heads), got {getattr(self, name)}")

    def _check_tables(self) -> None:
        for name, kind in (("item_sharing", TableSharing), ("embedding_storage", EmbeddingStorage)):
            try:
                object.__setattr__(self, name, kind(getattr(self, name)))
            except ValueError:
                raise ConfigError(
                    f"unknown {name} {getattr(self, name)!r}; choose one of {[k.value for k in kind]}"
                ) from None
        if (self.item_sharing is TableSharing.NONE) != (self.item_buckets == 0) or self.item_buckets < 0:
            raise ConfigError(f"item_buckets must be > 0 with item sharing and 0 without, got {self.item_buckets}")
        block = self.embedding_block or self.embedding_dim
        if block < 1 or self.embedding_dim % block:
            raise ConfigError(f"embedding_block ({self.embedding_block}) must divide embedding_dim")
        if self.embedding_storage is EmbeddingStorage.INT4 and block % 2:
            raise ConfigError(f"INT4 tables pack two values per byte: the block ({block}) must be even")

    @property
    def layer_cross_ranks(self) -> tuple[int, ...]:
        """The rank of every cross layer (pruned or not)."""
        return self.cross_ranks or (self.cross_rank,) * self.cross_layers

    @property
    def layer_ffn_hidden(self) -> tuple[int, ...]:
        """The feed-forward hidden width of every history block (pruned or not)."""
        return self.ffn_hidden or (self.ffn_mult * self.embedding_dim,) * self.history_layers

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        data = dataclasses.asdict(self)
        for name in ("mlp_hidden", "cross_ranks", "ffn_hidden"):
            data[name] = list(data[name])
        data["item_sharing"] = self.item_sharing.value
        data["embedding_storage"] = self.embedding_storage.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Build from :meth:`to_dict` output; unknown keys are a :class:`ConfigError`."""
        values = known_fields(cls, data)
        for name in ("mlp_hidden", "cross_ranks", "ffn_hidden"):
            if name in values:
                values[name] = tuple(int(w) for w in values[name])
        return cls(**values)


class Preset(enum.StrEnum):
    """The named model sizes."""

    SMALL = "small"  # fast enough for tests and CPU demos
    BASE = "base"  # the default
    LARGE = "large"  # the big model of throughput and GPU measurements


PRESETS: dict[Preset, ModelConfig] = {
    # Fast enough for tests and CPU demos.
    Preset.SMALL: ModelConfig(
        embedding_dim=32, n_heads=1, history_layers=0, cross_layers=1, cross_rank=32, mlp_hidden=(64,)
    ),
    # The default: one history block, two low-rank cross layers (tuned on Amazon Beauty validation NDCG@10).
    Preset.BASE: ModelConfig(),
    # The "big model": wide embeddings and MLP (>= 50M parameters on a 400k-item synthetic catalogue).
    Preset.LARGE: ModelConfig(
        embedding_dim=128,
        n_heads=4,
        history_layers=2,
        cross_layers=3,
        cross_rank=128,
        mlp_hidden=(1024, 512, 256),
    ),
}


def preset(name: str | Preset) -> ModelConfig:
    """Return the preset called ``name``.

    Raises:
        ConfigError: unknown preset (the message lists the known ones).
    """
    try:
        return PRESETS[Preset(name)]
    except ValueError:
        raise ConfigError(f"unknown preset {name!r}; choose one of {[p.value for p in Preset]}") from None
