"""Loader for the REES46 multi-category store events CSV (``2019-Oct.csv`` and its bundled head).

One row per event: ``event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session``.
How the columns become a :class:`SequenceDataset`:

- sequences: each user's events (``view``, ``cart`` and ``purchase`` alike) sorted by ``event_time`` (stable, so
  ties keep file order), consecutive repeats of one product collapsed; users left with fewer than
  ``min_sequence_length`` items are dropped; users keep the order of their first row in the file;
- items: ``product_id`` -> ``1..n_items`` in order of first appearance in the kept users' sequences;
- brand: ``brand`` -> ``1..n_brands`` (empty = 0, unknown); category: ``category_id`` -> ``1..n_categories``;
- attributes: the cumulative prefixes of ``category_code`` (``appliances``, ``appliances.environment``,
  ``appliances.environment.water_heater``), the first :data:`ATTR_SLOTS` levels, -> ``1..n_attributes``;
- price bucket: quantiles of ``log1p`` of each item's median observed price -> ``1..n_price_buckets``; tied
  quantiles merge buckets, so fewer buckets may be used, but the spec always declares the requested number.

Item features come from the item's first row with a non-empty value. Malformed rows raise :class:`DataError`
(``path:lineno``) unless ``skip_malformed``; one exception: a malformed last row without a trailing newline is the
mark of a file cut mid-row (as the bundled head is), so it is dropped with a warning.
"""

from __future__ import annotations

import csv
import gzip
import logging
import math
import zlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from itertools import groupby
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from tritonrec.data.catalogue import Catalogue
from tritonrec.data.feature_spec import FeatureSpec, table_rows
from tritonrec.data.sequences import SequenceDataset, pack_sequences
from tritonrec.data.textio import find_data_file, open_text
from tritonrec.errors import ConfigError, DataError

__all__ = ["ATTR_SLOTS", "COLUMNS", "EVENTS_FILE", "EVENT_TYPES", "load_rees46", "load_rees46_file"]

logger = logging.getLogger(__name__)

EVENTS_FILE = "rees46-2019-Oct-head.csv"
COLUMNS = tuple(
    "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session".split(",")
)
EVENT_TYPES = frozenset({"view", "cart", "purchase"})
ATTR_SLOTS = 3


class _Event(NamedTuple):
    time: float
    product: int
    user: int
    category: str
    code: str
    brand: str
    price: float


def _parse_int(text: str, column: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"{column} must be a non-negative integer, got {text!r}")
    return int(text)


def _parse_time(text: str) -> float:
    try:
        moment = datetime.fromisoformat(text.removesuffix(" UTC"))
    except ValueError:
        raise ValueError(f"unparsable event_time {text!r}") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _parse_row(fields: list[str]) -> _Event:
    """Parse one data row; raise ValueError naming the problem."""
    if len(fields) != len(COLUMNS):
        raise ValueError(f"expected {len(COLUMNS)} fields, got {len(fields)}")
    time_text, event_type, product, category, code, brand, price_text, user, _session = fields
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event_type {event_type!r}")
    try:
        price = float(price_text)
    except ValueError:
        raise ValueError(f"price must be a number, got {price_text!r}") from None
    if not math.isfinite(price) or price < 0:
        raise ValueError(f"price must be finite and >= 0, got {price_text!r}")
    return _Event(
        time=_parse_time(time_text),
        product=_parse_int(product, "product_id"),
        user=_parse_int(user, "user_id"),
        category=category,
        code=code,
        brand=brand,
        price=price,
    )


def _check_header(path: Path, header: list[str] | None) -> None:
    if header is None:
        raise DataError(f"{path}: empty file, expected the header {','.join(COLUMNS)}")
    if tuple(header) == COLUMNS:
        return
    missing = [c for c in COLUMNS if c not in header]
    extra = [c for c in header if c not in COLUMNS]
    detail = f"missing {missing}, extra {extra}" if missing or extra else "columns out of order"
    raise DataError(f"{path}: header does not match the REES46 columns ({detail}); expected {','.join(COLUMNS)}")


def _remember_last(lines: Iterable[str], last: list[str]) -> Iterator[str]:
    """Yield ``lines``, keeping the latest one in ``last[0]`` (to see whether the file ends mid-row)."""
    for line in lines:
        last[0] = line
        yield line


def _read_events(path: Path, skip_malformed: bool) -> list[_Event]:
    """Parse every row; a malformed row is held back until the next row shows it was not a cut-off tail."""
    events: list[_Event] = []
    skipped, first_skipped, held = 0, "", ""
    last = [""]
    try:
        with open_text(path) as f:
            reader = csv.reader(_remember_last(f, last))
            _check_header(path, next(reader, None))
            for fields in reader:
                if held:
                    raise DataError(held)
                if not fields:
                    continue
                try:
                    events.append(_parse_row(fields))
                except ValueError as e:
                    message = f"{path}:{reader.line_num}: malformed row ({e}): {','.join(fields)[:80]!r}"
                    if not skip_malformed:
                        held = message
                    skipped += 1
                    first_skipped = first_skipped or message
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError, zlib.error, csv.Error) as e:
        raise DataError(f"{path}: not a readable CSV file ({e})") from e
    if held and last[0].endswith("\n"):
        raise DataError(held)
    if held:
        logger.warning("%s (dropped: the file ends mid-row, without a newline)", held)
    elif skipped:
        logger.warning("%s: skipped %d malformed rows (first: %s)", path, skipped, first_skipped)
    if not events:
        raise DataError(f"{path}: no valid event rows")
    return events


def _user_sequences(events: list[_Event], min_sequence_length: int) -> list[list[int]]:
    """Return each kept user's time-ordered, repeat-collapsed raw product ids."""
    by_user: dict[int, list[_Event]] = {}
    for event in events:
        by_user.setdefault(event.user, []).append(event)
    sequences = []
    for user_events in by_user.values():
        ordered = sorted(user_events, key=lambda e: e.time)
        products = [product for product, _ in groupby(e.product for e in ordered)]
        if len(products) >= min_sequence_length:
            sequences.append(products)
    return sequences


def _dense_ids(keys: Iterable[str]) -> dict[str, int]:
    """Map non-empty keys to ``1..n`` in order of first appearance."""
    ids: dict[str, int] = {}
    for key in keys:
        if key and key not in ids:
            ids[key] = len(ids) + 1
    return ids


def _category_prefixes(code: str) -> list[str]:
    parts = code.split(".") if code else []
    return [".".join(parts[:depth]) for depth in range(1, min(len(parts), ATTR_SLOTS) + 1)]


def _price_buckets(prices: npt.NDArray[np.float64], n_buckets: int) -> npt.NDArray[np.int64]:
    """Bucket prices into ``1..n_buckets`` by quantiles of ``log1p(price)``; tied edges merge buckets."""
    if n_buckets == 0 or prices.size == 0:
        return np.zeros(prices.size, dtype=np.int64)
    log_prices = np.log1p(prices)
    edges = np.unique(np.quantile(log_prices, np.linspace(0.0, 1.0, n_buckets + 1)[1:-1]))
    return np.searchsorted(edges, log_prices, side="right").astype(np.int64) + 1


def _build_catalogue(
    events: list[_Event], item_ids: dict[int, int], *, history_len: int, n_price_buckets: int
) -> tuple[FeatureSpec, Catalogue]:
    """Collect each kept item's features (first non-empty value, median price) into the id tables."""
    first: dict[int, dict[str, str]] = {product: {} for product in item_ids}
    prices: dict[int, list[float]] = {product: [] for product in item_ids}
    for event in events:
        if event.product in item_ids:
            seen = first[event.product]
            for column, value in (("category", event.category), ("code", event.code), ("brand", event.brand)):
                if value and column not in seen:
                    seen[column] = value
            prices[event.product].append(event.price)
    features = [first[product] for product in item_ids]  # dense order: features[i - 1] belongs to item i
    brands = _dense_ids(f.get("brand", "") for f in features)
    categories = _dense_ids(f.get("category", "") for f in features)
    prefixes = [_category_prefixes(f.get("code", "")) for f in features]
    attributes = _dense_ids(prefix for item_prefixes in prefixes for prefix in item_prefixes)
    spec = FeatureSpec(
        n_items=len(item_ids),
        n_attributes=len(attributes),
        n_brands=len(brands),
        n_categories=len(categories),
        n_price_buckets=n_price_buckets,
        history_len=history_len,
        attr_slots=ATTR_SLOTS if attributes else 0,
    )
    catalogue = Catalogue.empty(spec)
    rows = slice(1, table_rows(spec.n_items) - 1)
    catalogue.brand[rows] = [brands.get(f.get("brand", ""), 0) for f in features]
    catalogue.category[rows] = [categories.get(f.get("category", ""), 0) for f in features]
    median_prices = np.array([np.median(prices[product]) for product in item_ids], dtype=np.float64)
    catalogue.price_bucket[rows] = _price_buckets(median_prices, n_price_buckets)
    for item, item_prefixes in enumerate(prefixes, start=1):
        catalogue.attributes[item, : len(item_prefixes)] = [attributes[p] for p in item_prefixes]
    return spec, catalogue


def load_rees46_file(
    path: Path,
    *,
    history_len: int = 50,
    n_price_buckets: int = 10,
    min_sequence_length: int = 3,
    skip_malformed: bool = False,
) -> SequenceDataset:
    """Load a REES46 events CSV (plain or ``.gz``) into per-user sequences and an item catalogue.

    Args:
        path: the events file.
        history_len: ``L`` recorded in the FeatureSpec.
        n_price_buckets: price buckets requested (0 = no price feature); the spec declares this number.
        min_sequence_length: users with fewer items (after collapsing repeats) are dropped.
        skip_malformed: skip (count and log) malformed rows instead of raising.

    Returns:
        A :class:`SequenceDataset` named ``rees46``.

    Raises:
        ConfigError: ``n_price_buckets`` < 0 or ``min_sequence_length`` < 1.
        DataError: the file is missing, unreadable, has the wrong header, a malformed row (unless
            ``skip_malformed``), or no user with enough items.
    """
    if n_price_buckets < 0:
        raise ConfigError(f"n_price_buckets must be >= 0, got {n_price_buckets}")
    if min_sequence_length < 1:
        raise ConfigError(f"min_sequence_length must be >= 1, got {min_sequence_length}")
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    events = _read_events(path, skip_malformed)
    raw_sequences = _user_sequences(events, min_sequence_length)
    if not raw_sequences:
        raise DataError(f"{path}: no user has {min_sequence_length} or more distinct consecutive items")
    item_ids: dict[int, int] = {}
    for sequence in raw_sequences:
        for product in sequence:
            item_ids.setdefault(product, len(item_ids) + 1)
    spec, catalogue = _build_catalogue(events, item_ids, history_len=history_len, n_price_buckets=n_price_buckets)
    items, offsets = pack_sequences([[item_ids[p] for p in sequence] for sequence in raw_sequences])
    return SequenceDataset(
        name="rees46", spec=spec, catalogue=catalogue, items=items, offsets=offsets, source=str(path)
    )


def load_rees46(
    data_dir: Path,
    *,
    history_len: int = 50,
    n_price_buckets: int = 10,
    min_sequence_length: int = 3,
    skip_malformed: bool = False,
) -> SequenceDataset:
    """Load :data:`EVENTS_FILE` (or its ``.gz``) from ``data_dir``; the options are :func:`load_rees46_file`'s.

    Raises:
        ConfigError: an option is out of range.
        DataError: the file is missing, unreadable or malformed.
    """
    return load_rees46_file(
        find_data_file(data_dir, EVENTS_FILE),
        history_len=history_len,
        n_price_buckets=n_price_buckets,
        min_sequence_length=min_sequence_length,
        skip_malformed=skip_malformed,
    )
