"""Loader for the Amazon Beauty sequences + item attributes format (as preprocessed for S3-Rec).

Files:

- ``Beauty.txt``: one user per line, ``user_id item_1 item_2 ...`` in time order; items are ids ``1..n``.
- ``Beauty_item2attributes.json``: ``{"item_id": [attribute ids]}``; attributes mix Amazon categories and
  the brand, so they feed the pooled attribute embedding (there are no separate brand/price columns).
"""

from __future__ import annotations

import gzip
import json
import logging
import zlib
from pathlib import Path

from tritonrec.data.catalogue import Catalogue
from tritonrec.data.feature_spec import FeatureSpec
from tritonrec.data.sequences import SequenceDataset, pack_sequences
from tritonrec.data.textio import find_data_file, open_text
from tritonrec.errors import DataError

__all__ = ["SEQUENCES_FILE", "ATTRIBUTES_FILE", "load_beauty"]

logger = logging.getLogger(__name__)

SEQUENCES_FILE = "Beauty.txt"
ATTRIBUTES_FILE = "Beauty_item2attributes.json"


def _read_sequences(path: Path, skip_malformed: bool) -> list[list[int]]:
    sequences: list[list[int]] = []
    seen_users: set[str] = set()
    skipped = 0
    try:
        with open_text(path) as f:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                fields = line.split()
                problem = None
                if len(fields) < 2:
                    problem = "a user needs at least one item"
                elif fields[0] in seen_users:
                    problem = f"user {fields[0]!r} appears twice"
                elif not all(tok.isdigit() and int(tok) > 0 for tok in fields[1:]):
                    problem = "item ids must be positive integers"
                if problem is not None:
                    if not skip_malformed:
                        raise DataError(f"{path}:{lineno}: malformed line ({problem}): {line.strip()[:80]!r}")
                    skipped += 1
                    continue
                seen_users.add(fields[0])
                sequences.append([int(tok) for tok in fields[1:]])
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise DataError(f"{path}: not a readable text file ({e})") from e
    if skipped:
        logger.warning("%s: skipped %d malformed lines", path, skipped)
    if not sequences:
        raise DataError(f"{path}: no user sequences found")
    return sequences


def _read_attributes(path: Path) -> dict[int, list[int]]:
    try:
        with open_text(path) as f:
            raw = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError, gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise DataError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected an object mapping item ids to attribute lists")
    out: dict[int, list[int]] = {}
    for key, value in raw.items():
        if not str(key).isdigit() or not isinstance(value, list) or not all(isinstance(a, int) for a in value):
            raise DataError(f"{path}: malformed entry {key!r}: {value!r}"[:200])
        out[int(key)] = [a for a in value if a > 0]
    return out


def load_beauty(
    data_dir: Path, *, history_len: int = 50, attr_slots: int = 6, skip_malformed: bool = False
) -> SequenceDataset:
    """Load Amazon Beauty from ``data_dir`` (plain or gzipped files).

    Args:
        data_dir: folder holding ``Beauty.txt`` and ``Beauty_item2attributes.json`` (or their ``.gz``).
        history_len: ``L`` recorded in the FeatureSpec.
        attr_slots: attribute slots kept per item (items have 1-6 attributes in the public file).
        skip_malformed: skip (and count) malformed sequence lines instead of raising.

    Raises:
        DataError: a file is missing, unreadable or malformed.
    """
    seq_path = find_data_file(data_dir, SEQUENCES_FILE)
    sequences = _read_sequences(seq_path, skip_malformed)
    attr_path = find_data_file(data_dir, ATTRIBUTES_FILE)
    attributes = _read_attributes(attr_path)

    n_items = max(max(s) for s in sequences)
    n_items = max(n_items, max(attributes, default=0))
    n_attributes = max((a for attrs in attributes.values() for a in attrs), default=0)
    slots = attr_slots if n_attributes else 0
    spec = FeatureSpec(
        n_items=n_items,
        n_attributes=n_attributes,
        history_len=history_len,
        attr_slots=slots,
    )
    catalogue = Catalogue.empty(spec)
    for item, attrs in attributes.items():
        kept = attrs[:slots]
        catalogue.attributes[item, : len(kept)] = kept
    items, offsets = pack_sequences(sequences)
    return SequenceDataset(
        name="beauty",
        spec=spec,
        catalogue=catalogue,
        items=items,
        offsets=offsets,
        source=f"{seq_path} + {attr_path.name}",
    )
