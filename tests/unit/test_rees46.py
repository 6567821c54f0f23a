from __future__ import annotations

import gzip
import logging
from pathlib import Path

import numpy as np
import pytest

from tritonrec.data.feature_spec import table_rows
from tritonrec.data.rees46 import ATTR_SLOTS, COLUMNS, EVENTS_FILE, load_rees46, load_rees46_file
from tritonrec.data.sequences import SequenceDataset
from tritonrec.errors import ConfigError, DataError

pytestmark = pytest.mark.unit

BUNDLED_DIR = Path(__file__).resolve().parents[2] / "src" / "tritonrec" / "datasets"
HEADER = ",".join(COLUMNS)


def row(
    time: str,
    product: int | str,
    user: int | str = 1,
    *,
    event: str = "view",
    category: str = "100",
    code: str = "a.b.c",
    brand: str = "acme",
    price: str = "10.0",
) -> str:
    return f"2019-10-01 {time} UTC,{event},{product},{category},{code},{brand},{price},{user},session-{user}"


def write_csv(path: Path, rows: list[str], *, header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def good_rows() -> list[str]:
    return [row("00:00:01", 11, user=1), row("00:00:02", 12, user=1), row("00:00:03", 13, user=1)]


@pytest.fixture(scope="module")
def bundled() -> SequenceDataset:
    return load_rees46(BUNDLED_DIR)


def test_bundled_file_loads_with_consistent_counts(bundled: SequenceDataset) -> None:
    spec = bundled.spec
    assert bundled.name == "rees46"
    assert bundled.source.endswith(f"{EVENTS_FILE}.gz")
    assert 100 < bundled.n_users < 4505
    assert 100 < spec.n_items <= 6493
    assert bundled.lengths.min() >= 3
    assert len(bundled.items) == bundled.offsets[-1]
    assert bundled.items.min() == 1 and bundled.items.max() == spec.n_items
    assert set(np.unique(bundled.items)) == set(range(1, spec.n_items + 1))
    bundled.catalogue.validate(spec)


def test_bundled_catalogue_ids_stay_in_range(bundled: SequenceDataset) -> None:
    spec, cat = bundled.spec, bundled.catalogue
    real = slice(1, spec.n_items + 1)
    assert spec.n_price_buckets == 10
    assert cat.price_bucket[real].min() >= 1 and cat.price_bucket[real].max() <= spec.n_price_buckets
    assert len(np.unique(cat.price_bucket[real])) >= 5
    assert 0 < spec.n_brands and cat.brand.max() == spec.n_brands and cat.brand.min() == 0
    assert cat.category[real].min() >= 1 and cat.category.max() == spec.n_categories
    assert spec.attr_slots == ATTR_SLOTS and spec.n_attributes > 0
    assert (cat.attributes[real, 0] > 0).sum() > spec.n_items // 10
    last_row = table_rows(spec.n_items) - 1
    for table in (cat.brand, cat.category, cat.price_bucket):
        assert table[0] == 0 and table[last_row] == 0
    assert not cat.attributes[0].any() and not cat.attributes[last_row].any()


def test_events_are_time_ordered_and_consecutive_repeats_collapse(tmp_path: Path) -> None:
    rows = [
        row("00:00:05", 30, user=7),
        row("00:00:01", 10, user=7),
        row("00:00:02", 10, user=7, event="cart"),
        row("00:00:03", 20, user=7),
        row("00:00:03", 20, user=7, event="purchase"),
        row("00:00:04", 10, user=7),
        row("00:00:05", 40, user=7),  # same second as product 30: file order kept
    ]
    ds = load_rees46_file(write_csv(tmp_path / "events.csv", rows))
    assert ds.n_users == 1
    np.testing.assert_array_equal(ds.sequence(0), [1, 2, 1, 3, 4])  # products 10, 20, 10, 30, 40


def test_users_below_min_sequence_length_are_dropped(tmp_path: Path) -> None:
    rows = [
        *good_rows(),
        row("00:00:01", 50, user=2),
        row("00:00:02", 50, user=2),  # collapses: user 2 has one item
        row("00:00:03", 51, user=2),
        row("00:00:01", 60, user=3),
    ]
    path = write_csv(tmp_path / "events.csv", rows)
    ds = load_rees46_file(path)
    assert ds.n_users == 1 and ds.spec.n_items == 3
    ds_two = load_rees46_file(path, min_sequence_length=2)
    assert ds_two.n_users == 2 and ds_two.spec.n_items == 5
    np.testing.assert_array_equal(ds_two.lengths, [3, 2])
    with pytest.raises(DataError, match="no user has 4 or more"):
        load_rees46_file(path, min_sequence_length=4)


def test_features_map_to_dense_ids_with_category_prefixes(tmp_path: Path) -> None:
    rows = [
        row("00:00:01", 11, code="x.y.z", brand="acme", category="900", price="5"),
        row("00:00:02", 12, code="", brand="", category="901", price="500"),
        row("00:00:03", 13, code="x.w.v.u", brand="zeta", category="900", price="50"),
    ]
    ds = load_rees46_file(write_csv(tmp_path / "events.csv", rows), n_price_buckets=3)
    cat = ds.catalogue
    assert (ds.spec.n_brands, ds.spec.n_categories, ds.spec.n_attributes) == (2, 2, 5)
    np.testing.assert_array_equal(cat.brand, [0, 1, 0, 2, 0])
    np.testing.assert_array_equal(cat.category, [0, 1, 2, 1, 0])
    np.testing.assert_array_equal(cat.attributes[1:4], [[1, 2, 3], [0, 0, 0], [1, 4, 5]])
    np.testing.assert_array_equal(cat.price_bucket, [0, 1, 3, 2, 0])


def test_price_buckets_use_median_price_and_survive_ties(tmp_path: Path) -> None:
    rows = [row(f"00:00:{i:02d}", 100 + i, price="9.99") for i in range(8)]
    rows += [row("00:00:20", 200, price="1"), row("00:00:21", 200, price="1000"), row("00:00:22", 200, price="2")]
    ds = load_rees46_file(write_csv(tmp_path / "events.csv", rows), n_price_buckets=4)
    buckets = ds.catalogue.price_bucket[1 : ds.spec.n_items + 1]
    assert ds.spec.n_price_buckets == 4
    assert buckets.min() >= 1 and buckets.max() <= 4
    assert buckets[-1] < buckets[0]  # median 2 sits below the tied 9.99s
    ds.catalogue.validate(ds.spec)


def test_no_category_codes_means_no_attribute_slots(tmp_path: Path) -> None:
    rows = [row(f"00:00:0{i}", 20 + i, code="") for i in range(3)]
    ds = load_rees46_file(write_csv(tmp_path / "events.csv", rows), n_price_buckets=0)
    assert (ds.spec.n_attributes, ds.spec.attr_slots, ds.spec.n_price_buckets) == (0, 0, 0)
    assert ds.catalogue.attributes.shape == (table_rows(3), 0)
    assert not ds.catalogue.price_bucket.any()


MALFORMED = {  # kind -> (row, what the message must say)
    "wrong field count": ("2019-10-01 00:00:04 UTC,view,14,100,a,acme,1.0,1", "expected 9 fields, got 8"),
    "unknown event_type": (row("00:00:04", 14, event="remove_from_cart"), "unknown event_type"),
    "non-integer product_id": (row("00:00:04", "14x"), "product_id must be"),
    "non-integer user_id": (row("00:00:04", 14, user="u1"), "user_id must be"),
    "non-numeric price": (row("00:00:04", 14, price="cheap"), "price must be a number"),
    "negative price": (row("00:00:04", 14, price="-1.5"), "price must be finite and >= 0"),
    "NaN price": (row("00:00:04", 14, price="nan"), "price must be finite and >= 0"),
    "unparsable event_time": (row("25:61:00", 14), "unparsable event_time"),
}
BAD_ROWS = [bad for bad, _ in MALFORMED.values()]


@pytest.mark.parametrize(("bad", "problem"), MALFORMED.values(), ids=list(MALFORMED))
def test_malformed_row_raises_with_line_number(tmp_path: Path, bad: str, problem: str) -> None:
    path = write_csv(tmp_path / "events.csv", [*good_rows(), bad, row("00:00:09", 15)])
    with pytest.raises(DataError, match=r"events\.csv:5: malformed row") as info:
        load_rees46_file(path)
    assert problem in str(info.value)


def test_skip_malformed_counts_rows_and_keeps_the_good_ones(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write_csv(tmp_path / "events.csv", [*good_rows(), *BAD_ROWS, row("00:00:09", 15)])
    with caplog.at_level(logging.WARNING, logger="tritonrec.data.rees46"):
        ds = load_rees46_file(path, skip_malformed=True)
    assert ds.n_users == 1 and ds.spec.n_items == 4
    assert f"skipped {len(MALFORMED)} malformed rows" in caplog.text
    assert "events.csv:5" in caplog.text


def test_cut_off_last_row_without_newline_is_dropped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "events.csv"
    path.write_text("\n".join([HEADER, *good_rows(), row("00:00:09", 15)[:40]]), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="tritonrec.data.rees46"):
        ds = load_rees46_file(path)
    assert ds.spec.n_items == 3
    assert "ends mid-row" in caplog.text
    path.write_text(path.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="events.csv:5"):
        load_rees46_file(path)


def test_file_without_valid_rows_raises(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "events.csv", [MALFORMED["negative price"][0]])
    with pytest.raises(DataError, match="no valid event rows"):
        load_rees46_file(path, skip_malformed=True)
    with pytest.raises(DataError, match="no valid event rows"):
        load_rees46_file(write_csv(tmp_path / "header_only.csv", []))


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (HEADER.replace(",user_session", ""), r"missing \['user_session'\]"),
        (HEADER + ",extra_col", r"extra \['extra_col'\]"),
        (HEADER.replace("brand,price", "price,brand"), "out of order"),
        ("", "empty file"),
    ],
)
def test_wrong_header_raises(tmp_path: Path, header: str, expected: str) -> None:
    path = tmp_path / "events.csv"
    path.write_text(header + "\n" if header else "", encoding="utf-8")
    with pytest.raises(DataError, match=expected) as info:
        load_rees46_file(path)
    assert str(path) in str(info.value)


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_rees46(tmp_path)
    with pytest.raises(DataError, match="not found"):
        load_rees46_file(tmp_path / "nope.csv")


def test_gzipped_file_loads_identically_to_plain(tmp_path: Path) -> None:
    rows = [*good_rows(), row("00:00:01", 12, user=2), row("00:00:02", 14, user=2), row("00:00:03", 11, user=2)]
    plain_dir, gz_dir = tmp_path / "plain", tmp_path / "gz"
    plain_dir.mkdir()
    gz_dir.mkdir()
    plain = write_csv(plain_dir / EVENTS_FILE, rows)
    (gz_dir / f"{EVENTS_FILE}.gz").write_bytes(gzip.compress(plain.read_bytes()))
    a, b = load_rees46(plain_dir), load_rees46(gz_dir)
    assert a.spec == b.spec and b.source.endswith(".gz")
    np.testing.assert_array_equal(a.items, b.items)
    np.testing.assert_array_equal(a.offsets, b.offsets)
    for name, table in a.catalogue.to_arrays().items():
        np.testing.assert_array_equal(table, b.catalogue.to_arrays()[name])


def test_corrupt_gzip_raises_data_error(tmp_path: Path) -> None:
    (tmp_path / f"{EVENTS_FILE}.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="not a readable CSV"):
        load_rees46(tmp_path)


def test_invalid_options_raise_config_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "events.csv", good_rows())
    with pytest.raises(ConfigError):
        load_rees46_file(path, n_price_buckets=-1)
    with pytest.raises(ConfigError):
        load_rees46_file(path, min_sequence_length=0)
