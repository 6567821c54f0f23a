"""A spec's rows: its Parquet file read into numpy arrays per input, grouped by query, split in two.

Each item input becomes one array ``[R, *dims]`` of its dtype: a column of scalars (``shape = []``), a column of
fixed lists (``shape = [13]``), several scalar columns gathered (``columns = [...]``), or a column of
variable-length lists (``shape = ["tokens"]``: padded with the input's ``pad`` to the longest row; a batch is
trimmed to its own longest). A query input (``role = "query"``, the query + candidates layout) is read once per
query, from the query's first row: ``[Q, *dims]`` indexed by the query's code. Rows keep the file's order; the
split holds out whole queries (seeded by query id), so one query's rows are never on both sides.

A batch is what the model takes, in the spec's layout (:meth:`SpecRows.batch`): every input ``[B, *dims]`` in the
rows layout; in the query + candidates layout query inputs ``[Q, *dims]`` and item inputs ``[Q, N, *dims]`` (each
query's candidate rows, padded with the input's ``pad`` to the batch's longest query), the scores ``[Q, N]``, read
back to one score per row by :meth:`SpecRows.scores_of`. Legend: R = rows, B = rows per batch, Q = queries,
N = candidates of a query.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tritonrec.errors import DataError
from tritonrec.spec.model_spec import InputSpec, ModelSpec, Role

__all__ = ["SpecRows", "evaluation_query", "pad_alike", "read_rows", "split_rows"]

Features = dict[str, npt.NDArray[Any]]


@dataclass(frozen=True, slots=True)
class SpecRows:
    """Rows of a spec's data.

    Attributes:
        features: ``{item input name: [R, *dims]}`` in the input's dtype (dynamic dims padded to the longest row).
        lengths: ``{input name: [R]}`` (item inputs) or ``[Q]`` (query inputs): the real length of each row's or
            query's dynamic dim (dynamic inputs only).
        labels: ``[R]`` float64, 1 = relevant.
        query_ids: ``[R]`` int64 codes of the query id column (equal codes = one query).
        positions: ``[R]`` each row's position in the file (to join other columns of the same file).
        evaluate: ``[R]`` the spec's ``evaluate_column`` (None when it names none).
        query_features: ``{query input name: [Q, *dims]}``, row ``q`` holding query code ``q``'s value (the query +
            candidates layout; empty in the rows layout).
        pads: ``{input name: pad value}``: what a query's missing candidate rows are filled with in a batch.
    """

    features: Features
    lengths: dict[str, npt.NDArray[np.int64]]
    labels: npt.NDArray[np.float64]
    query_ids: npt.NDArray[np.int64]
    positions: npt.NDArray[np.int64]
    evaluate: npt.NDArray[np.bool_] | None = None
    query_features: Features = field(default_factory=dict)
    pads: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def n_queries(self) -> int:
        """Distinct queries."""
        return int(len(np.unique(self.query_ids)))

    @property
    def query_layout(self) -> bool:
        """Whether a batch is query inputs once per query and item inputs per candidate (else every input per row)."""
        return bool(self.query_features)

    def take(self, index: npt.NDArray[np.int64]) -> SpecRows:
        """The rows at ``index``, in that order (the query inputs stay indexed by query code)."""
        return SpecRows(
            features={k: v[index] for k, v in self.features.items()},
            lengths={k: v if k in self.query_features else v[index] for k, v in self.lengths.items()},
            labels=self.labels[index],
            query_ids=self.query_ids[index],
            positions=self.positions[index],
            evaluate=None if self.evaluate is None else self.evaluate[index],
            query_features=self.query_features,
            pads=self.pads,
        )

    def head_queries(self, n: int) -> SpecRows:
        """The rows of the first ``n`` queries (in file order)."""
        _, first = np.unique(self.query_ids, return_index=True)
        keep = set(self.query_ids[np.sort(first)[:n]].tolist())
        return self.take(np.flatnonzero(np.isin(self.query_ids, list(keep))))

    def _runs(self, start: int, stop: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """For rows ``start:stop``: each row's query run (0..Q-1) and its position within the run."""
        ids = self.query_ids[start:stop]
        run = np.concatenate([[0], np.cumsum(ids[1:] != ids[:-1])]).astype(np.int64) if len(ids) else ids
        first = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if len(ids) else ids
        return run, np.arange(len(ids), dtype=np.int64) - first[run]

    def _lengths(self, name: str, start: int, stop: int) -> npt.NDArray[np.int64]:
        return self.lengths[name][start:stop] if name in self.lengths else np.zeros(0, dtype=np.int64)

    def _trimmed(self, name: str, values: npt.NDArray[Any], lengths: npt.NDArray[np.int64]) -> npt.NDArray[Any]:
        if name not in self.lengths:
            return values
        return values[:, : int(lengths.max(initial=1))]

    def batch(self, start: int, stop: int) -> Features:
        """Rows ``start:stop`` as the model takes them, each dynamic dim trimmed to the batch's longest.

        In the query + candidates layout, each run of one query's rows is one query of the batch.
        """
        if not self.query_layout:
            return {
                name: np.ascontiguousarray(self._trimmed(name, v[start:stop], self._lengths(name, start, stop)))
                for name, v in self.features.items()
            }
        run, at = self._runs(start, stop)
        codes = self.query_ids[start:stop][np.r_[True, run[1:] != run[:-1]]] if stop > start else run
        out: Features = {}
        for name, values in self.query_features.items():
            lengths = self.lengths[name][codes] if name in self.lengths else np.zeros(0, dtype=np.int64)
            out[name] = np.ascontiguousarray(self._trimmed(name, values[codes], lengths))
        width = int(at.max(initial=0)) + 1
        for name, values in self.features.items():
            part = self._trimmed(name, values[start:stop], self._lengths(name, start, stop))
            grid = np.full((len(codes), width, *part.shape[1:]), self.pads.get(name, 0), dtype=part.dtype)
            grid[run, at] = part
            out[name] = grid
        return out

    def scores_of(self, out: npt.ArrayLike, start: int, stop: int) -> npt.NDArray[np.float64]:
        """The model's answer to :meth:`batch` ``(start, stop)`` as ``[stop - start]`` scores, one per row.

        Raises:
            ValueError: the answer is not one score per row (``[B]``/``[B, 1]``; ``[Q, N]``/``[Q, N, 1]`` in the
                query + candidates layout).
        """
        scores = np.asarray(out, dtype=np.float64)
        n = stop - start
        if not self.query_layout:
            if scores.shape not in ((n,), (n, 1)):
                raise ValueError(f"the model returned shape {list(scores.shape)} for {n} rows; a ranker returns one "
                                 f"score per row ([{n}] or [{n}, 1])")  # fmt: skip
            return scores.reshape(n)
        run, at = self._runs(start, stop)
        q, width = (int(run.max(initial=-1)) + 1, int(at.max(initial=-1)) + 1)
        if scores.shape not in ((q, width), (q, width, 1)):
            raise ValueError(f"the model returned shape {list(scores.shape)} for {q} queries of up to {width} "
                             f"candidates; a ranker returns one score per candidate ([{q}, {width}] or "
                             f"[{q}, {width}, 1])")  # fmt: skip
        return scores.reshape(q, width)[run, at]

    def bounds(self, rows: int) -> Iterator[tuple[int, int]]:
        """``(start, stop)`` of consecutive batches of about ``rows`` rows (whole queries in the query layout)."""
        if not self.query_layout:
            for start in range(0, len(self), rows):
                yield start, min(start + rows, len(self))
            return
        start = 0
        for _, stop in self.queries():
            if stop - start >= rows:
                yield start, stop
                start = stop
        if start < len(self):
            yield start, len(self)

    def batches(self, rows: int) -> Iterator[Features]:
        """Consecutive batches of about ``rows`` rows (:meth:`bounds`)."""
        for start, stop in self.bounds(rows):
            yield self.batch(start, stop)

    def queries(self) -> Iterator[tuple[int, int]]:
        """``(start, stop)`` of each run of rows with one query id, in order (a request's rows when served)."""
        change = np.flatnonzero(np.diff(self.query_ids)) + 1
        bounds = np.concatenate([[0], change, [len(self)]])
        for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
            yield int(start), int(stop)


def pad_alike(arrays: list[npt.NDArray[Any]], pad: float = 0) -> list[npt.NDArray[Any]]:
    """``arrays`` of one input with every per-row dim padded (with ``pad``) to the widest among them."""
    widest = tuple(max(a.shape[k] for a in arrays) for k in range(1, arrays[0].ndim))
    out = []
    for values in arrays:
        grown = np.full((values.shape[0], *widest), pad, dtype=values.dtype)
        grown[(slice(None), *(slice(0, n) for n in values.shape[1:]))] = values
        out.append(grown)
    return out


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


def _list_values(column: Any, spec: InputSpec, where: str) -> npt.NDArray[Any]:
    """A column of scalars or of fixed-length lists as ``[R, *dims]``; lists of equal length read without Python."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if len(spec.shape) == 1 and pa.types.is_list(kind) and not pa.types.is_nested(kind.value_type):
        lengths = pc.list_value_length(column)
        if column.null_count == 0 and len(column) and pc.all(pc.equal(lengths, spec.shape[0])).as_py():
            try:
                flat = pc.list_flatten(column).to_numpy(zero_copy_only=False)
                return _fixed_array(flat.reshape(len(column), spec.shape[0]), spec, where)
            except (ValueError, TypeError, pa.ArrowInvalid):
                pass  # the slow path below names what is wrong
    return _fixed(column.to_pylist(), spec, where)


def _fixed_array(values: npt.NDArray[Any], spec: InputSpec, where: str) -> npt.NDArray[Any]:
    if values.dtype.kind not in "biuf" or (values.dtype.kind == "f" and np.dtype(spec.dtype).kind in "iub"):
        raise DataError(f"{where}: column of input {spec.name!r} does not hold {spec.dtype} values")
    return values.astype(spec.dtype, copy=False)


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
    raw_queries = _column(table, query_column, where).to_numpy(zero_copy_only=False)
    _, first_rows, codes = np.unique(raw_queries, return_index=True, return_inverse=True)
    features: Features = {}
    query_features: Features = {}
    lengths: dict[str, npt.NDArray[np.int64]] = {}
    for item in spec.inputs:
        # a query input is read from each query's first row: [Q, *dims], row q for query code q
        part = table.take(first_rows) if item.role is Role.QUERY else table
        into = query_features if item.role is Role.QUERY else features
        if item.columns:
            parts = [_column(part, c, where).to_numpy(zero_copy_only=False) for c in item.columns]
            into[item.name] = _fixed(np.stack(parts, axis=1).tolist(), item, where)
        elif item.dynamic:
            into[item.name], lengths[item.name] = _ragged(_column(part, item.name, where).to_pylist(), item, where)
        else:
            into[item.name] = _list_values(_column(part, item.name, where), item, where)
    labels = _column(table, label_column, where).to_numpy(zero_copy_only=False)
    try:
        labels = np.asarray(labels, dtype=np.float64)
    except (ValueError, TypeError):
        raise DataError(f"{where}: label column {label_column!r} is not numeric") from None
    if np.isnan(labels).any() or not np.isin(labels, (0.0, 1.0)).all():
        raise DataError(f"{where}: label column {label_column!r} must hold 0 or 1 only")
    positions = np.arange(len(labels), dtype=np.int64)
    evaluate = None
    if spec.data is not None and spec.data.evaluate_column is not None:
        marks = _column(table, spec.data.evaluate_column, where)
        if not (pa.types.is_boolean(marks.type) or pa.types.is_integer(marks.type)) or marks.null_count:
            raise DataError(f"{where}: evaluate_column {spec.data.evaluate_column!r} must hold true/false, no nulls")
        evaluate = marks.to_numpy(zero_copy_only=False).astype(bool)
    return SpecRows(
        features=features,
        lengths=lengths,
        labels=labels,
        query_ids=codes.astype(np.int64).reshape(-1),
        positions=positions,
        evaluate=evaluate,
        query_features=query_features,
        pads={i.name: i.pad for i in spec.inputs},
    )


def split_rows(spec: ModelSpec, rows: SpecRows) -> tuple[SpecRows, SpecRows]:
    """``(calibrate, evaluate)``: whole queries held out, by ``data.evaluate_column`` or seeded.

    Seeded: ``data.evaluate_fraction`` of the queries, drawn with ``data.seed``.

    Raises:
        DataError: one side would be empty.
    """
    fraction = spec.data.evaluate_fraction if spec.data else 0.2
    queries = np.unique(rows.query_ids)
    if rows.evaluate is not None:
        evaluate = np.isin(rows.query_ids, np.unique(rows.query_ids[rows.evaluate]))
        if not evaluate.any() or evaluate.all():
            side = "no" if not evaluate.any() else "every"
            raise DataError(f"data.evaluate_column marks {side} row for evaluation: both sides need rows")
        return rows.take(np.flatnonzero(~evaluate)), rows.take(np.flatnonzero(evaluate))
    seed = spec.data.seed if spec.data else 0
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
