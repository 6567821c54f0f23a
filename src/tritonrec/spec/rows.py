"""A spec's rows: its Parquet file read into numpy arrays per input, grouped by query, split in two.

Each input becomes one array ``[R, *dims]`` of its dtype: a column of scalars (``shape = []``), a column of fixed
lists (``shape = [13]``), several scalar columns gathered (``columns = [...]``), or a column of variable-length
lists (``shape = ["tokens"]``: padded with the input's ``pad`` to the longest row; a batch is trimmed to its own
longest). Rows keep the file's order; the split holds out whole queries (seeded by query id), so one query's rows
are never on both sides. Legend: R = rows, B = rows per batch, Q = queries.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tritonrec.errors import DataError
from tritonrec.spec.model_spec import InputSpec, ModelSpec

__all__ = ["SpecRows", "evaluation_query", "read_rows", "split_rows"]

Features = dict[str, npt.NDArray[Any]]


@dataclass(frozen=True, slots=True)
class SpecRows:
    """Rows of a spec's data.

    Attributes:
        features: ``{input name: [R, *dims]}`` in the input's dtype (dynamic dims padded to the longest row).
        lengths: ``{input name: [R]}`` the real length of each row's dynamic dim (dynamic inputs only).
        labels: ``[R]`` float64, 1 = relevant.
        query_ids: ``[R]`` int64 codes of the query id column (equal codes = one query).
        positions: ``[R]`` each row's position in the file (to join other columns of the same file).
    """

    features: Features
    lengths: dict[str, npt.NDArray[np.int64]]
    labels: npt.NDArray[np.float64]
    query_ids: npt.NDArray[np.int64]
    positions: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def n_queries(self) -> int:
        """Distinct queries."""
        return int(len(np.unique(self.query_ids)))

    def take(self, index: npt.NDArray[np.int64]) -> SpecRows:
        """The rows at ``index``, in that order."""
        return SpecRows(
            features={k: v[index] for k, v in self.features.items()},
            lengths={k: v[index] for k, v in self.lengths.items()},
            labels=self.labels[index],
            query_ids=self.query_ids[index],
            positions=self.positions[index],
        )

    def head_queries(self, n: int) -> SpecRows:
        """The rows of the first ``n`` queries (in file order)."""
        _, first = np.unique(self.query_ids, return_index=True)
        keep = set(self.query_ids[np.sort(first)[:n]].tolist())
        return self.take(np.flatnonzero(np.isin(self.query_ids, list(keep))))

    def batch(self, start: int, stop: int) -> Features:
        """Rows ``start:stop`` as model inputs, each dynamic dim trimmed to the batch's longest row."""
        out = {}
        for name, values in self.features.items():
            part = values[start:stop]
            if name in self.lengths:
                longest = int(self.lengths[name][start:stop].max(initial=1))
                part = part[:, :longest]
            out[name] = np.ascontiguousarray(part)
        return out

    def batches(self, rows: int) -> Iterator[Features]:
        """Consecutive batches of at most ``rows`` rows."""
        for start in range(0, len(self), rows):
            yield self.batch(start, min(start + rows, len(self)))

    def queries(self) -> Iterator[tuple[int, int]]:
        """``(start, stop)`` of each run of rows with one query id, in order (a request's rows when served)."""
        change = np.flatnonzero(np.diff(self.query_ids)) + 1
        bounds = np.concatenate([[0], change, [len(self)]])
        for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
            yield int(start), int(stop)


def _column(table: Any, name: str, where: str) -> Any:
    if name not in table.column_names:
        raise DataError(f"{where}: no column {name!r}; columns: {table.column_names}")
    return table.column(name)


def _fixed(values: list[Any], spec: InputSpec, where: str) -> npt.NDArray[Any]:
    try:
        array = np.asarray(values, dtype=spec.dtype)
    except (ValueError, TypeError) as e:
        raise DataError(f"{where}: column of input {spec.name!r} does not hold {spec.dtype} values: {e}") from None
    expected = (len(values), *spec.dims)
    if array.shape != expected:
        raise DataError(
            f"{where}: input {spec.name!r} wants rows of shape {list(spec.shape)}, got {list(array.shape[1:])}"
        )
    return array


def _ragged(values: list[Any], spec: InputSpec, where: str) -> tuple[npt.NDArray[Any], npt.NDArray[np.int64]]:
    if any(isinstance(d, str) for d in spec.shape[1:]):
        raise DataError(f"{where}: input {spec.name!r}: only the first per-row dim may be dynamic")
    rows = []
    for k, value in enumerate(values):
        if value is None:
            raise DataError(f"{where}: input {spec.name!r}, row {k}: missing value")
        rows.append(
            _fixed(
                [list(value)], InputSpec(name=spec.name, dtype=spec.dtype, shape=(len(value), *spec.shape[1:])), where
            )[0]
        )
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    inner = [int(d) for d in spec.shape[1:]]  # fixed: only the first per-row dim may be dynamic (checked above)
    out = np.full((len(rows), max(int(lengths.max(initial=0)), 1), *inner), spec.pad, dtype=spec.dtype)
    for k, row in enumerate(rows):
        out[k, : len(row)] = row
    return out, lengths


def read_rows(spec: ModelSpec, path: Path | None = None) -> SpecRows:
    """Read the spec's Parquet file (or ``path``) into :class:`SpecRows`.

    Raises:
        DataError: the file is missing or not Parquet, a column is missing, or a column's values do not have the
            input's dtype or shape (the message names the file, the column and the input).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if spec.data is None and path is None:
        raise DataError(f"spec {spec.name!r} names no data ([data] path)")
    source = path or spec.data.path  # type: ignore[union-attr]
    try:
        table = pq.read_table(source)
    except (OSError, pa.ArrowInvalid) as e:
        raise DataError(f"{source}: not a readable Parquet file: {e}") from None
    where = str(source)
    label_column = spec.data.label if spec.data else "label"
    query_column = spec.data.query_id if spec.data else "query_id"
    features: Features = {}
    lengths: dict[str, npt.NDArray[np.int64]] = {}
    for item in spec.inputs:
        if item.columns:
            parts = [_column(table, c, where).to_numpy(zero_copy_only=False) for c in item.columns]
            features[item.name] = _fixed(np.stack(parts, axis=1).tolist(), item, where)
        elif item.dynamic:
            features[item.name], lengths[item.name] = _ragged(_column(table, item.name, where).to_pylist(), item, where)
        else:
            features[item.name] = _fixed(_column(table, item.name, where).to_pylist(), item, where)
    labels = _column(table, label_column, where).to_numpy(zero_copy_only=False)
    try:
        labels = np.asarray(labels, dtype=np.float64)
    except (ValueError, TypeError):
        raise DataError(f"{where}: label column {label_column!r} is not numeric") from None
    if np.isnan(labels).any() or not np.isin(labels, (0.0, 1.0)).all():
        raise DataError(f"{where}: label column {label_column!r} must hold 0 or 1 only")
    raw_queries = _column(table, query_column, where).to_numpy(zero_copy_only=False)
    _, codes = np.unique(raw_queries, return_inverse=True)
    positions = np.arange(len(labels), dtype=np.int64)
    return SpecRows(
        features=features, lengths=lengths, labels=labels, query_ids=codes.astype(np.int64), positions=positions
    )


def split_rows(spec: ModelSpec, rows: SpecRows) -> tuple[SpecRows, SpecRows]:
    """``(calibrate, evaluate)``: whole queries held out, seeded (``data.evaluate_fraction``, ``data.seed``).

    Raises:
        DataError: one side would be empty.
    """
    fraction = spec.data.evaluate_fraction if spec.data else 0.2
    seed = spec.data.seed if spec.data else 0
    queries = np.unique(rows.query_ids)
    held = np.random.default_rng(seed).random(len(queries)) < fraction
    if fraction >= 1:
        held[:] = True
    evaluate = np.isin(rows.query_ids, queries[held])
    if not evaluate.any():
        raise DataError(f"data.evaluate_fraction {fraction} holds out no query of {len(queries)}")
    calibrate = rows.take(np.flatnonzero(~evaluate)) if (~evaluate).any() else rows.take(np.flatnonzero(evaluate))
    return calibrate, rows.take(np.flatnonzero(evaluate))


def evaluation_query(spec: ModelSpec, index: int = 0) -> tuple[Features, npt.NDArray[np.float64]]:
    """The rows of the ``index``-th evaluation query as model inputs, and their labels (no torch needed).

    Raises:
        DataError: the data cannot be read, or there is no such query.
    """
    _, evaluate = split_rows(spec, read_rows(spec))
    queries = list(evaluate.queries())
    if not 0 <= index < len(queries):
        raise DataError(f"spec {spec.name!r}: query {index} asked, its evaluation rows hold {len(queries)} queries")
    start, stop = queries[index]
    return evaluate.batch(start, stop), evaluate.labels[start:stop]
