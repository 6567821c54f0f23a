"""DLRM in plain PyTorch: the MLPerf recommendation model, as a team would bring it to tritonrec.

Bottom MLP over the dense features, one embedding table per sparse feature, pairwise dot-product interaction of
all the vectors, top MLP over the interactions and the dense vector (Naumov et al., 2019). Legend: B = rows,
D = embedding dim, S = sparse features (26 for Criteo), F = S + 1 vectors.

Any id is safe: ids are taken modulo their table's size (the hashing Criteo pipelines use), so unknown, negative
or huge ids still read a row; NaN dense values are read as 0.
"""

from __future__ import annotations

import torch
from generate import TABLE_SIZES  # the data's tables; the spec puts this folder on the path
from torch import Tensor, nn

CRITEO_DENSE = 13


def _mlp(sizes: list[int], *, last_relu: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if k < len(sizes) - 2 or last_relu:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class DLRM(nn.Module):
    """``(dense [B, 13] float32, sparse [B, 26] int64) -> [B]`` click logits."""

    def __init__(self, table_sizes: list[int], *, dim: int = 16, bottom: tuple[int, ...] = (64, 32),
                 top: tuple[int, ...] = (128, 64)) -> None:  # fmt: skip
        super().__init__()
        self.register_buffer("sizes", torch.tensor(table_sizes, dtype=torch.int64), persistent=False)
        self.bottom = _mlp([CRITEO_DENSE, *bottom, dim], last_relu=True)
        self.tables = nn.ModuleList(nn.Embedding(n, dim) for n in table_sizes)
        n_vectors = len(table_sizes) + 1
        rows, cols = torch.triu_indices(n_vectors, n_vectors, offset=1)
        self.register_buffer("pair_rows", rows, persistent=False)
        self.register_buffer("pair_cols", cols, persistent=False)
        self.top = _mlp([dim + len(rows), *top, 1], last_relu=False)

    def forward(self, dense: Tensor, sparse: Tensor) -> Tensor:
        """Score each row."""
        x = torch.nan_to_num(dense, nan=0.0)
        x = torch.sign(x) * torch.log1p(torch.abs(x))  # Criteo counts span orders of magnitude
        d = self.bottom(x)  # [B, D]
        ids = torch.remainder(sparse, self.sizes)  # [B, S], every id a valid row
        vectors = torch.stack([d, *(table(ids[:, k]) for k, table in enumerate(self.tables))], dim=1)  # [B, F, D]
        dots = torch.bmm(vectors, vectors.transpose(1, 2))  # [B, F, F]
        pairs = dots[:, self.pair_rows, self.pair_cols]  # [B, F (F - 1) / 2]
        return self.top(torch.cat([d, pairs], dim=1)).squeeze(1)


def build(table_sizes: list[int] | None = None, dim: int = 16, max_rows: int | None = None) -> DLRM:
    """The model the spec's ``factory`` names (``dlrm:build``); sizes default to :data:`TABLE_SIZES`.

    ``max_rows`` caps every table: ids beyond it share rows (taken modulo the cap, the hashing trick), the shared
    tables `tritonrec compress share --spec` retrains with ``--student-kwargs '{"max_rows": 20000}'``.
    """
    sizes = list(table_sizes or TABLE_SIZES)
    return DLRM([min(n, max_rows) for n in sizes] if max_rows else sizes, dim=dim)
