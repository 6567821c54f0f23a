"""The item side's embedding tables: one row per id, rows shared between ids, and row-wise quantized rows.

Legend: R = rows of the logical table (ids, padding and OOV included), D = embedding dim, K = quantization
blocks per row, m = buckets of a shared table.

- :class:`QuantizedEmbedding`: INT8 or INT4 codes with one FP16 scale and bias per block of a row (FBGEMM's
  row-wise layout: ``value = code * scale + bias``), dequantized in the graph by Gather + Cast + Mul + Add, so the
  ONNX export needs no custom operator and runs in any ONNX runtime;
- :class:`HashedEmbedding`: the hashing trick, row ``r`` reads shared row ``r mod m``;
- :class:`QREmbedding`: the quotient-remainder trick (Shi et al. 2020, "Compositional Embeddings Using
  Complementary Partitions"): row ``r`` is ``Q[r // m] * R[r mod m]``, unique for every ``r`` although both
  tables are shared.

:func:`item_table` and :func:`side_table` build what a :class:`~tritonrec.model.config.ModelConfig` asks for.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from tritonrec.errors import ConfigError
from tritonrec.model.config import EmbeddingStorage, ModelConfig, TableSharing

__all__ = [
    "HashedEmbedding",
    "QREmbedding",
    "QuantizedEmbedding",
    "embedding",
    "gather_rows",
    "item_table",
    "qr_quotient_rows",
    "side_table",
]

_FP16_MAX = 65504.0


def gather_rows(table: Tensor, rows: Tensor) -> Tensor:
    """``table[rows]`` for any shape of ``rows``, exported as one ONNX Gather: ``[...]`` -> ``[..., *table[1:]]``."""
    picked = torch.index_select(table, 0, rows.reshape(-1))
    return picked.reshape(*rows.shape, *table.shape[1:])


def embedding(rows: int, dim: int, *, padding: bool = True) -> nn.Embedding:
    """An FP32 table ``N(0, 1/D)``; with ``padding``, row 0 is zero and gets no gradient.

    A shared table has no padding row: its row 0 also serves real ids.
    """
    table = nn.Embedding(rows, dim, padding_idx=0 if padding else None)
    nn.init.normal_(table.weight, std=dim**-0.5)
    if padding:
        with torch.no_grad():
            table.weight[0].zero_()
    return table


def _round_up_fp16(x: Tensor) -> Tensor:
    half = x.half()
    return torch.where(half.float() < x, torch.nextafter(half, torch.tensor(math.inf, dtype=torch.float16)), half)


def _round_down_fp16(x: Tensor) -> Tensor:
    half = x.half()
    return torch.where(half.float() > x, torch.nextafter(half, torch.tensor(-math.inf, dtype=torch.float16)), half)


class QuantizedEmbedding(nn.Module):
    """A frozen table of ``bits``-bit codes with one FP16 scale and bias per block of ``block`` values of a row.

    ``value = code * scale + bias`` with ``code`` in ``0 .. 2**bits - 1``; ``bias`` is the block's minimum
    (rounded down to FP16) and ``scale`` its range over ``2**bits - 1`` (rounded up), so every value of the
    source table is reproduced within ``scale / 2``. INT4 codes are packed two per byte, the even column in the
    low nibble.

    Buffers: ``codes`` uint8 ``[R, D]`` (INT8) or ``[R, D / 2]`` (INT4); ``scales`` and ``biases`` float16
    ``[R, K]``.
    """

    codes: Tensor
    scales: Tensor
    biases: Tensor

    def __init__(self, rows: int, dim: int, storage: EmbeddingStorage, block: int = 0) -> None:
        super().__init__()
        if storage is EmbeddingStorage.FP32:
            raise ConfigError("QuantizedEmbedding stores INT8 or INT4 codes, not FP32")
        self.bits = storage.bits
        self.dim = dim
        self.block = block or dim
        if dim % self.block or (self.bits == 4 and self.block % 2):
            raise ConfigError(f"a block of {self.block} values does not fit rows of {dim} ({self.bits}-bit codes)")
        blocks = dim // self.block
        self.register_buffer("codes", torch.zeros(rows, dim * self.bits // 8, dtype=torch.uint8))
        self.register_buffer("scales", torch.ones(rows, blocks, dtype=torch.float16))
        self.register_buffer("biases", torch.zeros(rows, blocks, dtype=torch.float16))

    @property
    def levels(self) -> int:
        """Largest code: ``2**bits - 1``."""
        return (1 << self.bits) - 1

    @property
    def num_embeddings(self) -> int:
        """Rows of the table."""
        return int(self.codes.shape[0])

    @classmethod
    def from_weight(cls, weight: Tensor, storage: EmbeddingStorage, block: int = 0) -> QuantizedEmbedding:
        """Quantize an ``[R, D]`` FP32 table row by row (block by block).

        Raises:
            ConfigError: the table holds values FP16 scales cannot describe (non-finite or beyond 65504).
        """
        w = weight.detach().float()
        if not torch.isfinite(w).all() or w.abs().max() > _FP16_MAX / 2:
            raise ConfigError("the table holds non-finite values or values beyond FP16 range")
        table = cls(w.shape[0], w.shape[1], storage, block)
        blocks = w.reshape(w.shape[0], -1, table.block)  # [R, K, block]
        bias = _round_down_fp16(blocks.amin(-1))
        span = blocks.amax(-1) - bias.float()
        scale = _round_up_fp16(span / table.levels)
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        codes = torch.round((blocks - bias.float()[..., None]) / scale.float()[..., None]).clamp(0, table.levels)
        codes = codes.to(torch.uint8).reshape(w.shape[0], -1)
        if table.bits == 4:
            codes = codes[:, 0::2] | (codes[:, 1::2] << 4)
        table.codes.copy_(codes)
        table.scales.copy_(scale)
        table.biases.copy_(bias)
        return table

    def _dequantize(self, codes: Tensor, scales: Tensor, biases: Tensor) -> Tensor:
        values = codes.float()
        if self.bits == 4:
            high = torch.floor(values * (1.0 / 16.0))
            values = torch.stack([values - 16.0 * high, high], dim=-1).flatten(-2)
        blocks = values.reshape(*values.shape[:-1], -1, self.block)
        out: Tensor = blocks * scales.float().unsqueeze(-1) + biases.float().unsqueeze(-1)
        return out.flatten(-2)

    def dequantized(self) -> Tensor:
        """The whole ``[R, D]`` table in FP32 (what the forward pass reads)."""
        return self._dequantize(self.codes, self.scales, self.biases)

    def forward(self, rows: Tensor) -> Tensor:
        """``[...]`` rows -> ``[..., D]`` FP32 vectors."""
        return self._dequantize(
            gather_rows(self.codes, rows), gather_rows(self.scales, rows), gather_rows(self.biases, rows)
        )


class HashedEmbedding(nn.Module):
    """The hashing trick: row ``r`` of an ``R``-row logical table reads row ``r mod m`` of ``table``."""

    def __init__(self, table: nn.Module, buckets: int) -> None:
        super().__init__()
        self.table = table
        self.buckets = buckets

    def bucket_of(self, rows: Tensor) -> Tensor:
        """The shared row each logical row reads."""
        return torch.remainder(rows, self.buckets)

    def forward(self, rows: Tensor) -> Tensor:
        """``[...]`` rows -> ``[..., D]``."""
        out: Tensor = self.table(self.bucket_of(rows))
        return out


def qr_quotient_rows(rows: int, buckets: int) -> int:
    """Rows of the quotient table of a QR embedding of ``rows`` logical rows and ``buckets`` remainder rows."""
    return -(-rows // buckets)


class QREmbedding(nn.Module):
    """Quotient-remainder embedding: row ``r`` is ``quotient[r // m] * remainder[r mod m]`` (element-wise).

    Two ids share a remainder row or a quotient row, never both, so every logical row gets its own vector.
    """

    def __init__(self, quotient: nn.Module, remainder: nn.Module, buckets: int) -> None:
        super().__init__()
        self.quotient = quotient
        self.remainder = remainder
        self.buckets = buckets

    def parts_of(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        """The quotient and remainder rows each logical row reads.

        Integer floor division (exported as an integer ONNX Div): a division through floats would go wrong past
        2**24 rows in FP32, and past 2048 in an FP16 export.
        """
        return torch.floor_divide(rows, self.buckets), torch.remainder(rows, self.buckets)

    def forward(self, rows: Tensor) -> Tensor:
        """``[...]`` rows -> ``[..., D]``."""
        q, r = self.parts_of(rows)
        out: Tensor = self.quotient(q) * self.remainder(r)
        return out


def _stored(rows: int, dim: int, config: ModelConfig, *, padding: bool = True) -> nn.Module:
    """One physical table in the config's storage (random FP32, or empty codes the checkpoint fills)."""
    if config.embedding_storage is EmbeddingStorage.FP32:
        return embedding(rows, dim, padding=padding)
    return QuantizedEmbedding(rows, dim, config.embedding_storage, config.embedding_block)


def side_table(rows: int, config: ModelConfig) -> nn.Module:
    """An attribute, brand, category or price-bucket table of ``rows`` rows (never shared: they are small)."""
    return _stored(rows, config.embedding_dim, config)


def item_table(rows: int, config: ModelConfig) -> nn.Module:
    """The item-id table of ``rows`` logical rows: full, hashed or quotient-remainder, FP32 or quantized."""
    dim, buckets = config.embedding_dim, config.item_buckets
    if config.item_sharing is TableSharing.HASH:
        return HashedEmbedding(_stored(buckets, dim, config, padding=False), buckets)
    if config.item_sharing is TableSharing.QR:
        quotient = _stored(qr_quotient_rows(rows, buckets), dim, config, padding=False)
        if isinstance(quotient, nn.Embedding):  # start every quotient row at 1: the product starts as the remainder
            with torch.no_grad():
                quotient.weight.fill_(1.0)
        return QREmbedding(quotient, _stored(buckets, dim, config, padding=False), buckets)
    return _stored(rows, dim, config)
