"""The building blocks of the ranking model, each a small ``nn.Module``.

Legend for shapes: B = batch (users), L = history length, N = candidates per user, D = embedding dim,
H = attention heads, A = attribute slots, F = interaction-feature width.

Everything here exports to ONNX (opset 18+) with dynamic B and N and stays finite in fp16: masked attention
fills with a large finite negative instead of ``-inf`` and multiplies the weights by the mask, so an all-padding
history yields a zero vector rather than NaN.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn

from tritonrec.data.catalogue import Catalogue
from tritonrec.data.feature_spec import FeatureSpec, oov_row, table_rows
from tritonrec.model.config import ModelConfig
from tritonrec.model.tables import item_table, side_table

__all__ = ["MLP", "CrossNetwork", "HistoryEncoder", "ItemEncoder", "TargetAttention", "ids_to_rows"]

_MASK_FILL = -1.0e4  # finite in fp16 (max 65504), far below any real attention logit


def ids_to_rows(ids: Tensor, vocab_size: int) -> Tensor:
    """Map any integer ids to valid rows: 0 stays padding, ``1..n`` kept, everything else -> OOV (``n + 1``).

    Args:
        ids: integer tensor of any shape.
        vocab_size: ``n``.
    """
    ids = ids.long()
    valid = (ids >= 1) & (ids <= vocab_size)
    oov = torch.full_like(ids, oov_row(vocab_size))
    return torch.where(valid, ids, torch.where(ids == 0, torch.zeros_like(ids), oov))


def _attention(config: ModelConfig) -> _MultiHeadAttention:
    return _MultiHeadAttention(
        config.embedding_dim, config.n_heads, qk_dim=config.attention_qk_dim, v_dim=config.attention_v_dim
    )


def masked_softmax(logits: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the last axis that gives masked positions (``mask == False``) exactly zero weight.

    Args:
        logits: ``[..., L]``.
        mask: broadcastable bool ``[..., L]``; rows without any True position get all-zero weights.
    """
    weights = torch.softmax(logits.masked_fill(~mask, _MASK_FILL), dim=-1)
    return weights * mask.to(weights.dtype)


def _compact(table: npt.NDArray[np.int64], vocab: int, compact: bool) -> Tensor:
    """A catalogue id table as a buffer: int64, or the narrowest signed type that holds ids ``0..vocab + 1``."""
    dtypes: list[type[np.signedinteger[Any]]] = [np.int8, np.int16, np.int32, np.int64]
    dtype = next(t for t in dtypes if vocab + 1 <= np.iinfo(t).max) if compact else np.int64
    return torch.from_numpy(np.ascontiguousarray(table, dtype=dtype))


def _lookup(table: Tensor, rows: Tensor) -> Tensor:
    """``table[rows]`` as int64 ids (a compact table is widened after the lookup)."""
    ids = table[rows]
    return ids if ids.dtype == torch.int64 else ids.long()


class ItemEncoder(nn.Module):
    """Item rows -> item vectors, looking the item's side features up in the catalogue tables.

    The vector concatenates the item-id embedding, the mean of the item's attribute embeddings and the brand,
    category and price-bucket embeddings (only those the FeatureSpec has), then projects to ``D``. The tables
    are what ``config`` asks for (see :mod:`tritonrec.model.tables`): full or shared item rows, FP32 or
    quantized.
    """

    attributes: Tensor

    def __init__(self, spec: FeatureSpec, catalogue: Catalogue, config: ModelConfig) -> None:
        super().__init__()
        catalogue.validate(spec)
        dim, compact = config.embedding_dim, config.compact_catalogue
        self.item = item_table(table_rows(spec.n_items), config)
        self.has_attributes = spec.n_attributes > 0
        self.register_buffer("attributes", _compact(catalogue.attributes, spec.n_attributes, compact))
        self.attribute = side_table(table_rows(spec.n_attributes), config) if self.has_attributes else None
        self.side = nn.ModuleDict()
        for name, vocab, table in (
            ("brand", spec.n_brands, catalogue.brand),
            ("category", spec.n_categories, catalogue.category),
            ("price_bucket", spec.n_price_buckets, catalogue.price_bucket),
        ):
            if vocab > 0:
                self.side[name] = side_table(table_rows(vocab), config)
                self.register_buffer(f"{name}_table", _compact(table, vocab, compact))
        n_parts = 1 + int(self.has_attributes) + len(self.side)
        self.project = nn.Linear(n_parts * dim, dim)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, rows: Tensor) -> Tensor:
        """Encode items.

        Args:
            rows: ``[...]`` valid item rows (see :func:`ids_to_rows`).

        Returns:
            ``[..., D]`` item vectors (padding rows still produce a vector; callers mask them).
        """
        parts = [self.item(rows)]
        if self.attribute is not None:
            attrs = _lookup(self.attributes, rows)  # [..., A]
            present = (attrs > 0).to(parts[0].dtype).unsqueeze(-1)
            pooled = (self.attribute(attrs) * present).sum(-2) / present.sum(-2).clamp(min=1.0)
            parts.append(pooled)
        for name, table in self.side.items():
            parts.append(table(_lookup(getattr(self, f"{name}_table"), rows)))
        out: Tensor = self.dropout(self.project(torch.cat(parts, dim=-1)))
        return out


class _MultiHeadAttention(nn.Module):
    """Scaled dot-product attention of queries ``[B, Q, D]`` over keys/values ``[B, L, D]`` with a key mask.

    ``qk_dim`` and ``v_dim`` are the query/key and value channels per head (``D / H`` unless pruned).
    """

    def __init__(self, dim: int, n_heads: int, *, qk_dim: int = 0, v_dim: int = 0) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.qk_dim = qk_dim or dim // n_heads
        self.v_dim = v_dim or dim // n_heads
        self.query = nn.Linear(dim, n_heads * self.qk_dim)
        self.key = nn.Linear(dim, n_heads * self.qk_dim)
        self.value = nn.Linear(dim, n_heads * self.v_dim)
        self.out = nn.Linear(n_heads * self.v_dim, dim)

    def _split(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        return x.reshape(b, n, self.n_heads, -1).transpose(1, 2)  # [B, H, n, channels per head]

    def forward(self, queries: Tensor, keys: Tensor, key_mask: Tensor) -> Tensor:
        """Attend; ``key_mask`` is ``[B, L]`` bool (True = a real item). Returns ``[B, Q, D]``."""
        return self._attend(queries, self._split(self.key(keys)), self._split(self.value(keys)), key_mask)

    def gathered(self, queries: Tensor, keys: Tensor, key_mask: Tensor, index: Tensor) -> Tensor:
        """Queries ``[M, D]``, query ``m`` over the keys of row ``index[m]`` of ``keys [B, L, D]``; ``[M, D]``.

        Keys and values are projected once per row, then gathered: the offsets layout's arithmetic is the same as
        :meth:`forward` without projecting a row's history once per query.
        """
        k, v = self._split(self.key(keys))[index], self._split(self.value(keys))[index]  # [M, H, L, channels per head]
        out: Tensor = self._attend(queries[:, None, :], k, v, key_mask[index])[:, 0, :]
        return out

    def _attend(self, queries: Tensor, k: Tensor, v: Tensor, key_mask: Tensor) -> Tensor:
        q = self._split(self.query(queries))
        logits = q @ k.transpose(-1, -2) / math.sqrt(self.qk_dim)  # [B, H, Q, L]
        weights = masked_softmax(logits, key_mask[:, None, None, :])
        mixed = (weights @ v).transpose(1, 2)  # [B, Q, H, v_dim]
        out: Tensor = self.out(mixed.reshape(queries.shape[0], queries.shape[1], -1))
        return out


class HistoryEncoder(nn.Module):
    """History item vectors -> contextualised history vectors, computed once per user.

    Adds a recency embedding (distance from the most recent item) and runs one pre-norm self-attention +
    feed-forward block per entry of ``config.layer_ffn_hidden``.
    """

    def __init__(self, config: ModelConfig, max_len: int) -> None:
        super().__init__()
        dim, n_layers = config.embedding_dim, config.history_layers
        self.recency = nn.Embedding(max_len, dim)
        nn.init.normal_(self.recency.weight, std=dim**-0.5)
        self.attn = nn.ModuleList([_attention(config) for _ in range(n_layers)])
        self.attn_norm = nn.ModuleList([nn.LayerNorm(dim) for _ in range(n_layers)])
        self.ffn = nn.ModuleList(
            [
                nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
                for hidden in config.layer_ffn_hidden
            ]
        )
        self.ffn_norm = nn.ModuleList([nn.LayerNorm(dim) for _ in range(n_layers)])
        self.dropout = nn.Dropout(config.dropout)
        self.out_norm = nn.LayerNorm(dim)

    def forward(self, items: Tensor, mask: Tensor) -> Tensor:
        """Encode a history.

        Args:
            items: ``[B, L]`` ... ``[B, L, D]`` item vectors, right-aligned (most recent last).
            mask: ``[B, L]`` bool, True where a real item is.

        Returns:
            ``[B, L, D]``; padded positions are zeroed.
        """
        length = items.shape[1]
        # distance from the most recent item; a forward arange (the exporter mis-handles a negative step on a
        # dynamic length: the ragged and offsets graphs' history axis is dynamic)
        distance = (length - 1) - torch.arange(length, device=items.device)
        x = items + self.recency(distance)[None, :, :]
        for attn, attn_norm, ffn, ffn_norm in zip(self.attn, self.attn_norm, self.ffn, self.ffn_norm, strict=True):
            h = attn_norm(x)
            x = x + self.dropout(attn(h, h, mask))
            x = x + self.dropout(ffn(ffn_norm(x)))
        out: Tensor = self.out_norm(x) * mask.unsqueeze(-1).to(x.dtype)
        return out


class TargetAttention(nn.Module):
    """DIN-style target attention: each candidate attends over the user's history.

    Returns one interest vector per (user, candidate); an empty history gives a zero vector.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.attention = _attention(config)

    def forward(self, candidates: Tensor, history: Tensor, mask: Tensor) -> Tensor:
        """Attend.

        Args:
            candidates: ``[B, N, D]``.
            history: ``[B, L, D]``.
            mask: ``[B, L]`` bool.

        Returns:
            ``[B, N, D]``.
        """
        out: Tensor = self.attention(candidates, history, mask)
        return out

    def gathered(self, candidates: Tensor, history: Tensor, mask: Tensor, user_index: Tensor) -> Tensor:
        """The offsets layout: candidates ``[M, D]``, each over the history of user ``user_index [M]``; ``[M, D]``."""
        return self.attention.gathered(candidates, history, mask, user_index)


class CrossNetwork(nn.Module):
    """DCN-v2 cross layers: ``x_{l+1} = x_0 * (W_l x_l + b_l) + x_l``.

    With ``rank > 0`` each ``W_l`` is factorised as ``U_l V_l`` (``F x rank`` and ``rank x F``), the DCN-v2
    low-rank form that cuts the cost per row from ``F^2`` to ``2 F rank``. ``ranks`` holds one rank per layer
    (structured pruning gives each layer its own).
    """

    def __init__(self, width: int, ranks: tuple[int, ...]) -> None:
        super().__init__()
        self.layers = nn.ModuleList([self._layer(width, rank) for rank in ranks])

    @staticmethod
    def _layer(width: int, rank: int) -> nn.Module:
        if rank <= 0 or rank >= width:
            full = nn.Linear(width, width)
            nn.init.xavier_uniform_(full.weight, gain=0.5)
            nn.init.zeros_(full.bias)
            return full
        down, up = nn.Linear(width, rank, bias=False), nn.Linear(rank, width)
        nn.init.xavier_uniform_(down.weight, gain=0.5)
        nn.init.xavier_uniform_(up.weight, gain=0.5)
        nn.init.zeros_(up.bias)
        return nn.Sequential(down, up)

    def forward(self, x0: Tensor) -> Tensor:
        """Apply the cross layers to ``[..., F]`` features; returns ``[..., F]``."""
        x = x0
        for layer in self.layers:
            x = x0 * layer(x) + x
        return x


class MLP(nn.Module):
    """ReLU MLP ending in one logit: ``[..., F]`` -> ``[...]``."""

    def __init__(self, width: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """Score ``[..., F]`` features; returns ``[...]`` logits."""
        out: Tensor = self.net(x).squeeze(-1)
        return out
