import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from tritonrec.data.beauty import load_beauty
from tritonrec.data.registry import bundled_data_dir
from tritonrec.errors import DataError

pytestmark = pytest.mark.unit


def _write(tmp_path: Path, lines: str, attrs: object | None = None) -> Path:
    (tmp_path / "Beauty.txt").write_text(lines)
    attributes = attrs if attrs is not None else {"1": [1, 2], "2": [3], "3": [2]}
    (tmp_path / "Beauty_item2attributes.json").write_text(json.dumps(attributes))
    return tmp_path


def test_bundled_beauty_has_the_published_size():
    ds = load_beauty(bundled_data_dir())
    assert ds.n_users == 22_363
    assert len(ds.items) == 198_502
    assert ds.spec.n_items == 12_101
    assert ds.spec.n_attributes == 637
    assert ds.lengths.min() >= 5  # 5-core
    # every item has at least one attribute; padding and OOV rows have none
    assert (ds.catalogue.attributes[1:-1] > 0).any(axis=1).all()
    assert not ds.catalogue.attributes[[0, -1]].any()


def test_sequences_keep_file_order(tmp_path):
    ds = load_beauty(_write(tmp_path, "1 3 1 2\n2 2 3\n"), history_len=5)
    assert ds.sequence(0).tolist() == [3, 1, 2]
    assert ds.sequence(1).tolist() == [2, 3]
    assert ds.catalogue.attributes[1].tolist()[:2] == [1, 2]


@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        ("1 1 2\n2\n", "at least one item"),
        ("1 1 2\n2 1 x\n", "positive integers"),
        ("1 1 2\n2 1 -3\n", "positive integers"),
        ("1 1 2\n1 2 3\n", "appears twice"),
    ],
)
def test_malformed_lines_name_the_file_and_line(tmp_path, lines, problem):
    with pytest.raises(DataError, match=rf"Beauty.txt:2: malformed line \(.*{problem}"):
        load_beauty(_write(tmp_path, lines))


def test_skip_malformed_keeps_the_good_lines(tmp_path):
    ds = load_beauty(_write(tmp_path, "1 1 2\n2 x\n3 2 3 1\n"), skip_malformed=True)
    assert ds.n_users == 2


def test_garbled_attribute_json_is_a_data_error(tmp_path):
    _write(tmp_path, "1 1 2\n")
    (tmp_path / "Beauty_item2attributes.json").write_text('{"1": [1, 2')
    with pytest.raises(DataError, match="not valid JSON"):
        load_beauty(tmp_path)


def test_binary_garbage_is_a_data_error(tmp_path):
    (tmp_path / "Beauty.txt.gz").write_bytes(b"\x00\xffnot gzip at all")
    (tmp_path / "Beauty_item2attributes.json").write_text("{}")
    with pytest.raises(DataError):
        load_beauty(tmp_path)


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_beauty(tmp_path)


def test_gzipped_and_plain_files_load_the_same(tmp_path):
    (tmp_path / "plain").mkdir()
    plain = _write(tmp_path / "plain", "1 1 2 3\n2 3 2\n")
    gz = tmp_path / "gz"
    gz.mkdir()
    for name in ("Beauty.txt", "Beauty_item2attributes.json"):
        (gz / f"{name}.gz").write_bytes(gzip.compress((plain / name).read_bytes()))
    a, b = load_beauty(plain), load_beauty(gz)
    assert np.array_equal(a.items, b.items) and np.array_equal(a.catalogue.attributes, b.catalogue.attributes)
