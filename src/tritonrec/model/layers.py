"""The building blocks of the ranking model, each a small ``nn.Module``.

Legend for shapes: B = batch (users), L = history length, N = candidates per user, D = embedding dim,
H = attention heads, A = attribute slots, F = interaction-feature width.

Everything here exports to ONNX (opset 18+) with dynamic B and N and stays finite in fp16: masked attention
fills with a large finite negative instead of ``-inf`` and multiplies the weights by the mask, so an all-padding
history yields a zero vector rather than NaN.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from tritonrec.data.catalogue import Catalogue
from tritonrec.data.feature_spec import FeatureSpec, oov_row, table_rows

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


def _embedding(rows: int, dim: int) -> nn.Embedding:
    table = nn.Embedding(rows, dim, padding_idx=0)
    nn.init.normal_(table.weight, std=dim**-0.5)
    with torch.no_grad():
        table.weight[0].zero_()
    return table


def masked_softmax(logits: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the last axis that gives masked positions (``mask == False``) exactly zero weight.

    Args:
        logits: ``[..., L]``.
        mask: broadcastable bool ``[..., L]``; rows without any True position get all-zero weights.
    """
    weights = torch.softmax(logits.masked_fill(~mask, _MASK_FILL), dim=-1)
    return weights * mask.to(weights.dtype)


class ItemEncoder(nn.Module):
    """Item rows -> item vectors, looking the item's side features up in the catalogue tables.

    The vector concatenates the item-id embedding, the mean of the item's attribute embeddings and the brand,
    category and price-bucket embeddings (only those the FeatureSpec has), then projects to ``D``.
    """

    attributes: Tensor

    def __init__(self, spec: FeatureSpec, catalogue: Catalogue, dim: int, dropout: float) -> None:
        super().__init__()
        catalogue.validate(spec)
        self.item = _embedding(table_rows(spec.n_items), dim)
        self.has_attributes = spec.n_attributes > 0
        self.register_buffer("attributes", torch.from_numpy(np.asarray(catalogue.attributes, dtype=np.int64)))
        self.attribute = _embedding(table_rows(spec.n_attributes), dim) if self.has_attributes else None
        self.side = nn.ModuleDict()
        for name, vocab, table in (
            ("brand", spec.n_brands, catalogue.brand),
            ("category", spec.n_categories, catalogue.category),
            ("price_bucket", spec.n_price_buckets, catalogue.price_bucket),
        ):
            if vocab > 0:
                self.side[name] = _embedding(table_rows(vocab), dim)
                self.register_buffer(f"{name}_table", torch.from_numpy(np.asarray(table, dtype=np.int64)))
        n_parts = 1 + int(self.has_attributes) + len(self.side)
        self.project = nn.Linear(n_parts * dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, rows: Tensor) -> Tensor:
        """Encode items.

        Args:
            rows: ``[...]`` valid item rows (see :func:`ids_to_rows`).

        Returns:
            ``[..., D]`` item vectors (padding rows still produce a vector; callers mask them).
        """
        parts = [self.item(rows)]
        if self.attribute is not None:
            attrs = self.attributes[rows]  # [..., A]
            present = (attrs > 0).to(parts[0].dtype).unsqueeze(-1)
            pooled = (self.attribute(attrs) * present).sum(-2) / present.sum(-2).clamp(min=1.0)
            parts.append(pooled)
        for name, table in self.side.items():
            parts.append(table(getattr(self, f"{name}_table")[rows]))
        out: Tensor = self.dropout(self.project(torch.cat(parts, dim=-1)))
        return out


class _MultiHeadAttention(nn.Module):
    """Scaled dot-product attention of queries ``[B, Q, D]`` over keys/values ``[B, L, D]`` with a key mask."""

    def __init__(self, dim: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.head_dim = dim // n_heads
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def _split(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        return x.reshape(b, n, self.n_heads, self.head_dim).transpose(1, 2)  # [B, H, n, D/H]

    def forward(self, queries: Tensor, keys: Tensor, key_mask: Tensor) -> Tensor:
        """Attend; ``key_mask`` is ``[B, L]`` bool (True = a real item). Returns ``[B, Q, D]``."""
        return self._attend(queries, self._split(self.key(keys)), self._split(self.value(keys)), key_mask)

    def gathered(self, queries: Tensor, keys: Tensor, key_mask: Tensor, index: Tensor) -> Tensor:
        """Queries ``[M, D]``, query ``m`` over the keys of row ``index[m]`` of ``keys [B, L, D]``; ``[M, D]``.

        Keys and values are projected once per row, then gathered: the flat layout's arithmetic is the same as
        :meth:`forward` without projecting a row's history once per query.
        """
        k, v = self._split(self.key(keys))[index], self._split(self.value(keys))[index]  # [M, H, L, D/H]
        out: Tensor = self._attend(queries[:, None, :], k, v, key_mask[index])[:, 0, :]
        return out

    def _attend(self, queries: Tensor, k: Tensor, v: Tensor, key_mask: Tensor) -> Tensor:
        q = self._split(self.query(queries))
        logits = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)  # [B, H, Q, L]
        weights = masked_softmax(logits, key_mask[:, None, None, :])
        mixed = (weights @ v).transpose(1, 2)  # [B, Q, H, D/H]
        out: Tensor = self.out(mixed.reshape(queries.shape[0], queries.shape[1], -1))
        return out


class HistoryEncoder(nn.Module):
    """History item vectors -> contextualised history vectors, computed once per user.

    Adds a recency embedding (distance from the most recent item) and runs ``n_layers`` pre-norm
    self-attention + feed-forward blocks.
    """

    def __init__(self, dim: int, n_heads: int, n_layers: int, max_len: int, ffn_mult: int, dropout: float) -> None:
        super().__init__()
        self.recency = nn.Embedding(max_len, dim)
        nn.init.normal_(self.recency.weight, std=dim**-0.5)
        self.attn = nn.ModuleList([_MultiHeadAttention(dim, n_heads) for _ in range(n_layers)])
        self.attn_norm = nn.ModuleList([nn.LayerNorm(dim) for _ in range(n_layers)])
        self.ffn = nn.ModuleList(
            [
                nn.Sequential(nn.Linear(dim, ffn_mult * dim), nn.GELU(), nn.Linear(ffn_mult * dim, dim))
                for _ in range(n_layers)
            ]
        )
        self.ffn_norm = nn.ModuleList([nn.LayerNorm(dim) for _ in range(n_layers)])
        self.dropout = nn.Dropout(dropout)
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
        # dynamic length: the flat graph's history axis is dynamic)
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

    def __init__(self, dim: int, n_heads: int) -> None:
        super().__init__()
        self.attention = _MultiHeadAttention(dim, n_heads)

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
        """The flat layout: candidates ``[M, D]``, each over the history of its user ``user_index [M]``; ``[M, D]``."""
        return self.attention.gathered(candidates, history, mask, user_index)


class CrossNetwork(nn.Module):
    """DCN-v2 cross layers: ``x_{l+1} = x_0 * (W_l x_l + b_l) + x_l``.

    With ``rank > 0`` each ``W_l`` is factorised as ``U_l V_l`` (``F x rank`` and ``rank x F``), the DCN-v2
    low-rank form that cuts the cost per row from ``F^2`` to ``2 F rank``.
    """

    def __init__(self, width: int, n_layers: int, rank: int = 0) -> None:
        super().__init__()
        self.layers = nn.ModuleList([self._layer(width, rank) for _ in range(n_layers)])

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
