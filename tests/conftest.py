"""Shared fixtures: small real-data slices and a tiny catalogue."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from tritonrec.data.catalogue import Catalogue
from tritonrec.data.feature_spec import FeatureSpec
from tritonrec.data.registry import bundled_data_dir


@pytest.fixture(scope="session")
def beauty_slice_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 4,000 users of the real Amazon Beauty file plus the full attribute file."""
    out = tmp_path_factory.mktemp("beauty-slice")
    with gzip.open(bundled_data_dir() / "Beauty.txt.gz", "rt") as f:
        lines = [next(f) for _ in range(4000)]
    (out / "Beauty.txt").write_text("".join(lines))
    (out / "Beauty_item2attributes.json.gz").write_bytes(
        (bundled_data_dir() / "Beauty_item2attributes.json.gz").read_bytes()
    )
    return out


@pytest.fixture(scope="session")
def tiny_spec_and_catalogue() -> tuple[FeatureSpec, Catalogue]:
    """A 300-item spec with every side feature, random but seeded catalogue tables."""
    spec = FeatureSpec(
        n_items=300, n_attributes=30, n_brands=12, n_categories=6, n_price_buckets=5, history_len=12, attr_slots=3
    )
    rng = np.random.default_rng(0)
    catalogue = Catalogue.empty(spec)
    catalogue.attributes[1:301] = rng.integers(0, 31, (300, 3))
    catalogue.brand[1:301] = rng.integers(0, 13, 300)
    catalogue.category[1:301] = rng.integers(0, 7, 300)
    catalogue.price_bucket[1:301] = rng.integers(0, 6, 300)
    return spec, catalogue
