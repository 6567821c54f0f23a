"""Saving and loading synthetic datasets (``tritonrec data synth`` output).

A dataset folder holds ``catalogue.npz`` (item tables), ``impressions.npz`` (histories, slates, labels and the
ground-truth click probabilities) and, written last, ``meta.json`` (format key, config, FeatureSpec and a summary
of the ground-truth metrics). Loading checks the format key, dtypes, shapes and id ranges.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tritonrec.data.catalogue import Catalogue
from tritonrec.data.feature_spec import FeatureSpec
from tritonrec.data.synthetic import IMPRESSION_DTYPES, SyntheticConfig, SyntheticDataset
from tritonrec.errors import ConfigError, DataError

__all__ = ["CATALOGUE_FILE", "FORMAT", "IMPRESSIONS_FILE", "META_FILE", "load_synthetic", "save_synthetic"]

FORMAT = "tritonrec-synthetic/1"
CATALOGUE_FILE, IMPRESSIONS_FILE, META_FILE = "catalogue.npz", "impressions.npz", "meta.json"
_CATALOGUE_DTYPES: dict[str, type[np.generic]] = dict.fromkeys(
    ("attributes", "brand", "category", "price_bucket"), np.int64
)


def save_synthetic(
    dataset: SyntheticDataset, out_dir: Path, *, oracle_metrics: Mapping[str, float] | None = None
) -> None:
    """Write ``catalogue.npz``, ``impressions.npz`` and, last, ``meta.json`` (config, spec, oracle summary).

    Args:
        dataset: what to write.
        out_dir: the folder (created).
        oracle_metrics: the ground-truth scorer's metrics, recorded in ``meta.json`` beside the base CTR
            (``tritonrec.pipeline.synth`` computes them with the metrics module).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez(out_dir / CATALOGUE_FILE, **dataset.catalogue.to_arrays())
    np.savez(out_dir / IMPRESSIONS_FILE, **{name: getattr(dataset, name) for name in IMPRESSION_DTYPES})
    meta = {
        "format": FORMAT,
        "name": dataset.name,
        "config": dataset.config.to_dict(),
        "spec": dataset.spec.to_dict(),
        "oracle": {**(oracle_metrics or {}), "base_ctr": float(dataset.labels.mean())},
    }
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise DataError(f"data file not found: {path}") from e
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: not readable JSON ({e})") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise DataError(f"{path}: format is {found!r}, expected {FORMAT!r}")
    return meta


def _read_npz(path: Path, dtypes: dict[str, type[np.generic]]) -> dict[str, Any]:
    """Read the named arrays and cast them to ``dtypes``; a cast that would change an integer is an error."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = sorted(set(dtypes) - set(npz.files))
            if missing:
                raise DataError(f"{path}: missing arrays {missing}")
            raw = {name: npz[name] for name in dtypes}
    except FileNotFoundError as e:
        raise DataError(f"data file not found: {path}") from e
    except (OSError, ValueError, EOFError, AttributeError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: not a readable .npz file ({e})") from e
    out: dict[str, Any] = {}
    for name, dtype in dtypes.items():
        arr = raw[name]
        kinds = "iu" if np.issubdtype(dtype, np.integer) else "iuf"
        if arr.dtype.kind not in kinds:
            raise DataError(f"{path}: {name} has dtype {arr.dtype}")
        out[name] = arr.astype(dtype)
        if arr.dtype.kind in "iu" and not np.array_equal(out[name], arr):
            raise DataError(f"{path}: {name} holds values outside the {np.dtype(dtype)} range")
    return out


def load_synthetic(data_dir: Path) -> SyntheticDataset:
    """Load a dataset written by :func:`save_synthetic`.

    Raises:
        DataError: a file is missing or garbled, the format key is wrong, or shapes/ids do not fit the config.
    """
    meta = _read_meta(data_dir / META_FILE)
    try:
        config = SyntheticConfig.from_dict(meta["config"])
        spec = FeatureSpec.from_dict(meta["spec"])
    except (ConfigError, KeyError, TypeError, ValueError) as e:
        raise DataError(f"{data_dir / META_FILE}: invalid config or spec ({e})") from e
    tables = _read_npz(data_dir / CATALOGUE_FILE, _CATALOGUE_DTYPES)
    impressions = _read_npz(data_dir / IMPRESSIONS_FILE, IMPRESSION_DTYPES)
    return SyntheticDataset(
        name=str(meta.get("name", "synthetic")), config=config, spec=spec, catalogue=Catalogue(**tables), **impressions
    )
