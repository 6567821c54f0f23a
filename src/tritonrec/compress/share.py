"""Shared item-id rows: the hashing trick and the quotient-remainder trick, started from the parent's table.

Budget: at ratio ``c`` the shared rows number at most ``T = ceil(R / c)`` (R = logical rows, padding and OOV
included), so both kinds get the same parameters:

- hash: ``m = T`` rows, row ``r`` reads ``r mod m`` (the hashing-trick baseline of Shi et al. 2020);
- QR: the largest remainder table ``m`` with ``m + ceil(R / m) <= T``; row ``r`` is ``Q[r // m] * R[r mod m]``.

Start: each kind's least-squares fit of the parent's item table under its structure (padding row excluded).
For hash that is the mean of the parent rows sharing a bucket; for QR a few rounds of alternating least squares
for the element-wise product, started from the remainder means and quotient rows of 1.

Collisions (:func:`collisions`): ids whose stored vector is also another id's. Hashing makes every id of a
bucket with several ids collide; QR gives every id its own ``(quotient, remainder)`` pair, so none collide,
while each of its table rows is still shared (``ids_per_row``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from tritonrec.data.catalogue import Catalogue
from tritonrec.data.feature_spec import table_rows
from tritonrec.errors import ConfigError
from tritonrec.model.config import EmbeddingStorage, TableSharing
from tritonrec.model.ranker import RankingModel
from tritonrec.model.tables import HashedEmbedding, QREmbedding, qr_quotient_rows

__all__ = ["collisions", "qr_buckets", "share_item_table", "shared_rows"]

_ALS_ROUNDS = 5


def qr_buckets(rows: int, budget: int) -> int:
    """The largest remainder table ``m`` with ``m + ceil(rows / m) <= budget``.

    Raises:
        ConfigError: no QR split fits (the budget is below about ``2 * sqrt(rows)``).
    """
    root = math.isqrt(max(budget * budget - 4 * rows, 0))
    for m in range(min(budget - 1, (budget + root) // 2 + 1), 0, -1):
        if m + qr_quotient_rows(rows, m) <= budget:
            return m
    raise ConfigError(
        f"no quotient-remainder split of {rows} rows fits {budget} rows (QR needs about 2 * sqrt(rows) = "
        f"{2 * math.isqrt(rows)}): use a lower ratio"
    )


def shared_rows(rows: int, kind: TableSharing, ratio: float) -> tuple[int, int]:
    """``(buckets, stored rows)`` of ``kind`` at ``ratio`` for a table of ``rows`` logical rows."""
    budget = max(2, math.ceil(rows / ratio))
    if kind is TableSharing.HASH:
        return budget, budget
    buckets = qr_buckets(rows, budget)
    return buckets, buckets + qr_quotient_rows(rows, buckets)


def collisions(table: HashedEmbedding | QREmbedding, rows: int) -> dict[str, Any]:
    """How the ids ``1 .. rows - 1`` (real ids and OOV) share stored rows in ``table``."""
    ids = torch.arange(1, rows)
    if isinstance(table, HashedEmbedding):
        keys = table.bucket_of(ids).numpy()
        parts = {"shared": keys}
    else:
        q, r = table.parts_of(ids)
        keys = (q * table.buckets + r).numpy()  # one key per (quotient, remainder) pair
        parts = {"quotient": q.numpy(), "remainder": r.numpy()}
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    colliding = int((counts[inverse] > 1).sum())
    per_row = {}
    for name, part in parts.items():
        used = np.unique(part, return_counts=True)[1]
        per_row[name] = {"rows_used": int(used.size), "mean": round(float(used.mean()), 3), "max": int(used.max())}
    return {
        "ids": int(ids.numel()),
        "colliding_ids": colliding,
        "colliding_share": round(colliding / ids.numel(), 6),
        "distinct_vectors": int(counts.size),
        "ids_per_row": per_row,
    }


def _bucket_means(weight: Tensor, keys: Tensor, n: int) -> Tensor:
    """Mean of the rows of ``weight`` per key (``[n, D]``; keys without rows get zeros)."""
    sums = torch.zeros(n, weight.shape[1], dtype=torch.float64).index_add_(0, keys, weight.double())
    counts = torch.bincount(keys, minlength=n).clamp(min=1).double()
    return (sums / counts[:, None]).float()


def _fit_qr(weight: Tensor, buckets: int, quotient_rows: int) -> tuple[Tensor, Tensor]:
    """Alternating least squares for ``weight[r] ~ Q[r // m] * R[r mod m]`` (row 0, padding, left out)."""
    rows, dim = weight.shape
    grid = torch.zeros(quotient_rows * buckets, dim, dtype=torch.float64)
    mask = torch.zeros(quotient_rows * buckets, 1, dtype=torch.float64)
    grid[1:rows] = weight[1:].double()
    mask[1:rows] = 1.0
    grid, mask = grid.reshape(quotient_rows, buckets, dim), mask.reshape(quotient_rows, buckets, 1)
    quotient = torch.ones(quotient_rows, dim, dtype=torch.float64)
    remainder = (grid * mask).sum(0) / mask.sum(0).clamp(min=1.0)
    for _ in range(_ALS_ROUNDS):
        q2 = (mask * quotient[:, None, :] ** 2).sum(0)
        remainder = torch.where(q2 > 0, (mask * grid * quotient[:, None, :]).sum(0) / q2.clamp(min=1e-12), remainder)
        r2 = (mask * remainder[None, :, :] ** 2).sum(1)
        quotient = torch.where(r2 > 0, (mask * grid * remainder[None, :, :]).sum(1) / r2.clamp(min=1e-12), quotient)
    return quotient.float(), remainder.float()


def share_item_table(model: RankingModel, kind: TableSharing, ratio: float) -> tuple[RankingModel, dict[str, Any]]:
    """Replace the item table of ``model`` by a shared ``kind`` table at ``ratio``, fitted to the parent's table.

    Raises:
        ConfigError: the parent's item table is already shared or quantized, or QR cannot reach ``ratio``.
    """
    config = model.config
    if config.item_sharing is not TableSharing.NONE or config.embedding_storage is not EmbeddingStorage.FP32:
        raise ConfigError("share needs a parent with a full FP32 item table (share first, then quantize)")
    rows = table_rows(model.spec.n_items)
    buckets, stored = shared_rows(rows, kind, ratio)
    shared = RankingModel(
        model.spec, dataclasses.replace(config, item_sharing=kind, item_buckets=buckets), Catalogue.empty(model.spec)
    )
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("items.item.")}
    weight = model.state_dict()["items.item.weight"]
    table = shared.items.item
    if isinstance(table, HashedEmbedding):
        keys = table.bucket_of(torch.arange(1, rows))
        state["items.item.table.weight"] = _bucket_means(weight[1:], keys, buckets)
    elif isinstance(table, QREmbedding):
        quotient, remainder = _fit_qr(weight, buckets, qr_quotient_rows(rows, buckets))
        state["items.item.quotient.weight"], state["items.item.remainder.weight"] = quotient, remainder
    shared.load_state_dict(state)
    shared.eval()
    with torch.no_grad():
        fitted = shared.items.item(torch.arange(1, rows))
        rmse = float((fitted - weight[1:]).pow(2).mean().sqrt() / weight[1:].pow(2).mean().sqrt())
    details = {
        "kind": kind.value,
        "logical_rows": rows,
        "buckets": buckets,
        "stored_rows": stored,
        "row_ratio": round(rows / stored, 3),
        "start_relative_rmse": round(rmse, 4),
        "collisions": collisions(table, rows),  # type: ignore[arg-type]
    }
    return shared, details
