"""`ModelConfig` and the named presets (:class:`Preset`: ``small``, ``base``, ``large``)."""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Any

from tritonrec.dictconfig import known_fields
from tritonrec.errors import ConfigError

__all__ = ["PRESETS", "ModelConfig", "Preset", "preset"]


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
    """

    embedding_dim: int = 64
    n_heads: int = 2
    history_layers: int = 1
    cross_layers: int = 2
    cross_rank: int = 64
    mlp_hidden: tuple[int, ...] = (128, 64)
    dropout: float = 0.1
    ffn_mult: int = 2

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

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        data = dataclasses.asdict(self)
        data["mlp_hidden"] = list(self.mlp_hidden)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Build from :meth:`to_dict` output; unknown keys are a :class:`ConfigError`."""
        values = known_fields(cls, data)
        if "mlp_hidden" in values:
            values["mlp_hidden"] = tuple(int(w) for w in values["mlp_hidden"])
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
