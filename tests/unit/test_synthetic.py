from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from tritonrec.data.feature_spec import FeatureSpec
from tritonrec.data.synthetic import (
    SyntheticConfig,
    SyntheticDataset,
    SyntheticSplit,
    generate_synthetic,
    synthetic_catalogue,
)
from tritonrec.data.synthetic_io import (
    CATALOGUE_FILE,
    FORMAT,
    IMPRESSIONS_FILE,
    META_FILE,
    load_synthetic,
    save_synthetic,
)
from tritonrec.errors import ConfigError, DataError
from tritonrec.metrics import ranking_metrics
from tritonrec.pipeline.synth import write_synthetic

pytestmark = pytest.mark.unit

SMALL = SyntheticConfig(n_items=3_000, n_users=4_000, n_categories=20, n_brands=120, n_tags=60, seed=7)
ARRAYS = ("histories", "candidates", "labels", "click_probs")


@pytest.fixture(scope="module")
def dataset() -> SyntheticDataset:
    return generate_synthetic(SMALL)


@pytest.fixture(scope="module")
def split(dataset: SyntheticDataset) -> SyntheticSplit:
    return dataset.split(valid_fraction=0.1, test_fraction=0.25, seed=1)


@pytest.fixture(scope="module")
def saved_dir(dataset: SyntheticDataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synthetic")
    save_synthetic(dataset, out)
    return out


@pytest.fixture()
def saved_copy(saved_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(saved_dir, tmp_path / "copy"))


def _row_index(dataset: SyntheticDataset, candidates: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Map slate rows back to dataset rows (slates are unique per user at this size)."""
    lookup = {row.tobytes(): i for i, row in enumerate(dataset.candidates.astype(np.int64))}
    return np.array([lookup[row.tobytes()] for row in candidates.astype(np.int64)], dtype=np.int64)


# --- determinism -------------------------------------------------------------------------------------------


def test_same_seed_generates_identical_arrays(dataset: SyntheticDataset) -> None:
    again = generate_synthetic(SMALL)
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(again, name), getattr(dataset, name))
    for name, table in dataset.catalogue.to_arrays().items():
        np.testing.assert_array_equal(again.catalogue.to_arrays()[name], table)


def test_different_seed_generates_different_arrays(dataset: SyntheticDataset) -> None:
    other = generate_synthetic(dataclasses.replace(SMALL, seed=8))
    assert not np.array_equal(other.histories, dataset.histories)
    assert not np.array_equal(other.candidates, dataset.candidates)
    assert not np.array_equal(other.catalogue.category, dataset.catalogue.category)


def test_catalogue_does_not_depend_on_the_number_of_users(dataset: SyntheticDataset) -> None:
    fewer = generate_synthetic(dataclasses.replace(SMALL, n_users=50))
    for name, table in dataset.catalogue.to_arrays().items():
        np.testing.assert_array_equal(fewer.catalogue.to_arrays()[name], table)


# --- shapes, ids and structure -----------------------------------------------------------------------------


def test_arrays_have_expected_shapes_dtypes_and_id_ranges(dataset: SyntheticDataset) -> None:
    cfg = dataset.config
    assert dataset.name == "synthetic"
    assert dataset.spec == FeatureSpec(
        n_items=3_000,
        n_attributes=20 + 120 + 60,
        n_brands=120,
        n_categories=20,
        n_price_buckets=10,
        history_len=50,
        attr_slots=4,
    )
    dataset.catalogue.validate(dataset.spec)
    assert dataset.histories.shape == (cfg.n_users, cfg.history_len) and dataset.histories.dtype == np.int32
    for name in ("candidates", "labels", "click_probs"):
        assert getattr(dataset, name).shape == (cfg.n_users, cfg.slate_size)
    assert dataset.candidates.dtype == np.int32
    assert dataset.labels.dtype == np.float32 and dataset.click_probs.dtype == np.float32
    assert dataset.histories.min() == 0 and dataset.histories.max() <= cfg.n_items
    assert dataset.candidates.min() >= 1 and dataset.candidates.max() <= cfg.n_items
    assert set(np.unique(dataset.labels)) == {0.0, 1.0}
    assert 0.0 < dataset.click_probs.min() and dataset.click_probs.max() < 1.0


def test_catalogue_padding_and_oov_rows_are_zero(dataset: SyntheticDataset) -> None:
    for table in dataset.catalogue.to_arrays().values():
        assert not table[0].any() and not table[-1].any()
        assert (table[1:-1] if table.ndim == 1 else table[1:-1, :2]).min() >= 1


def test_attributes_encode_category_brand_and_tags(dataset: SyntheticDataset) -> None:
    cat, k, b = dataset.catalogue, dataset.config.n_categories, dataset.config.n_brands
    attrs = cat.attributes[1:-1]
    np.testing.assert_array_equal(attrs[:, 0], cat.category[1:-1])
    np.testing.assert_array_equal(attrs[:, 1], k + cat.brand[1:-1])
    tags = attrs[:, 2:]
    assert ((tags == 0) | ((tags > k + b) & (tags <= k + b + dataset.config.n_tags))).all()
    n_tags = (tags > 0).sum(axis=1)
    assert set(np.unique(n_tags)) == {0, 1, 2}
    assert not ((tags[:, 0] == 0) & (tags[:, 1] > 0)).any(), "tag slots fill from the left"
    assert not ((tags[:, 0] == tags[:, 1]) & (tags[:, 0] > 0)).any(), "an item's tags are distinct"


def test_each_brand_belongs_to_one_category_and_every_category_has_items(dataset: SyntheticDataset) -> None:
    cat = dataset.catalogue
    pairs = np.unique(np.stack([cat.brand[1:-1], cat.category[1:-1]], axis=1), axis=0)
    assert len(pairs) == len(np.unique(pairs[:, 0]))
    assert set(np.unique(cat.category[1:-1])) == set(range(1, dataset.config.n_categories + 1))
    assert set(np.unique(cat.price_bucket[1:-1])) == set(range(1, dataset.config.n_price_buckets + 1))


def test_histories_are_right_aligned_with_varied_lengths(dataset: SyntheticDataset) -> None:
    h = dataset.histories
    assert (h[:, -1] > 0).all()
    assert not ((h[:, :-1] > 0) & (h[:, 1:] == 0)).any()
    lengths = (h > 0).sum(axis=1)
    assert lengths.min() == 1 and lengths.max() == dataset.config.history_len
    assert 0.01 < (lengths <= 3).mean() < 0.2
    assert len(np.unique(lengths)) > 30


def test_slates_hold_distinct_items(dataset: SyntheticDataset) -> None:
    ordered = np.sort(dataset.candidates, axis=1)
    assert (np.diff(ordered, axis=1) > 0).all()


def test_history_item_popularity_is_heavy_tailed(dataset: SyntheticDataset) -> None:
    counts = np.bincount(dataset.histories.ravel(), minlength=dataset.config.n_items + 1)[1:]
    top = np.sort(counts)[::-1]
    top_share = top[: len(top) // 100].sum() / top.sum()
    assert top_share > 0.3


def test_slates_are_not_only_popular_items(dataset: SyntheticDataset) -> None:
    counts = np.bincount(dataset.histories.ravel(), minlength=dataset.config.n_items + 1)
    head = np.argsort(counts[1:])[::-1][: dataset.config.n_items // 10] + 1
    in_head = np.isin(dataset.candidates, head)
    clicked_in_head = in_head[dataset.labels > 0].mean()
    assert 0.2 < clicked_in_head < 0.9


# --- labels and the oracle ---------------------------------------------------------------------------------


def test_base_ctr_is_plausible_and_labels_follow_click_probs(dataset: SyntheticDataset) -> None:
    ctr = float(dataset.labels.mean())
    assert 0.05 <= ctr <= 0.30
    assert abs(ctr - float(dataset.click_probs.mean())) < 0.01
    probs, labels = dataset.click_probs.ravel(), dataset.labels.ravel()
    edges = np.quantile(probs, [0.0, 0.5, 0.9, 1.0])
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        inside = (probs >= lo) & (probs <= hi)
        assert abs(labels[inside].mean() - probs[inside].mean()) < 0.02


def test_oracle_auc_is_clearly_above_chance(split: SyntheticSplit) -> None:
    oracle = ranking_metrics(split.oracle_scores(), split.test.labels)
    assert oracle["auc"] > 0.75 and oracle["auc_global"] > 0.75
    assert oracle["n_users"] > 0.8 * len(split.test)


def test_oracle_auc_rises_as_label_noise_falls(dataset: SyntheticDataset) -> None:
    def oracle_auc(label_noise: float) -> float:
        config = dataclasses.replace(SMALL, n_users=2_000, label_noise=label_noise)
        split = generate_synthetic(config).split(seed=0, test_fraction=0.5)
        return ranking_metrics(split.oracle_scores(), split.test.labels)["auc_global"]

    sharp, default, blurred = oracle_auc(0.5), oracle_auc(1.0), oracle_auc(2.0)
    assert sharp > default + 0.03 > blurred + 0.06


def test_popularity_baseline_scores_below_the_oracle(split: SyntheticSplit) -> None:
    counts = np.bincount(split.train.histories.ravel(), minlength=SMALL.n_items + 1).astype(np.float64)
    popularity = ranking_metrics(np.log1p(counts[split.test.candidates]), split.test.labels)
    oracle = ranking_metrics(split.oracle_scores(), split.test.labels)
    assert popularity["auc"] > 0.55, "popularity carries some signal"
    assert popularity["auc"] < oracle["auc"] - 0.08
    assert popularity["ndcg@10"] < oracle["ndcg@10"]


# --- split -------------------------------------------------------------------------------------------------


def test_split_is_by_user_disjoint_with_requested_fractions(dataset: SyntheticDataset, split: SyntheticSplit) -> None:
    assert (len(split.train), len(split.valid), len(split.test)) == (2_600, 400, 1_000)
    rows = {
        "train": _row_index(dataset, split.train.candidates),
        "valid": _row_index(dataset, split.valid.candidates),
        "test": _row_index(dataset, split.test.candidates),
    }
    assert np.array_equal(np.sort(np.concatenate(list(rows.values()))), np.arange(dataset.config.n_users))
    for part, eval_set, probs in (
        ("valid", split.valid, split.valid_click_probs),
        ("test", split.test, split.test_click_probs),
    ):
        np.testing.assert_array_equal(eval_set.histories, dataset.histories[rows[part]])
        np.testing.assert_array_equal(eval_set.labels, dataset.labels[rows[part]])
        np.testing.assert_array_equal(probs, dataset.click_probs[rows[part]])
    np.testing.assert_array_equal(split.train.labels, dataset.labels[rows["train"]])


def test_split_is_seeded(dataset: SyntheticDataset, split: SyntheticSplit) -> None:
    same = dataset.split(valid_fraction=0.1, test_fraction=0.25, seed=1)
    other = dataset.split(valid_fraction=0.1, test_fraction=0.25, seed=2)
    np.testing.assert_array_equal(same.test.candidates, split.test.candidates)
    assert not np.array_equal(other.test.candidates, split.test.candidates)


@pytest.mark.parametrize(("valid", "test"), [(-0.1, 0.1), (0.1, 1.0), (0.5, 0.5)])
def test_split_rejects_bad_fractions(dataset: SyntheticDataset, valid: float, test: float) -> None:
    with pytest.raises(ConfigError):
        dataset.split(valid_fraction=valid, test_fraction=test)


def test_split_arrays_fit_the_train_and_eval_set_contracts(split: SyntheticSplit) -> None:
    assert split.test.histories.dtype == np.int64 and split.test.candidates.dtype == np.int64
    assert split.train.labels.dtype == np.float32
    batch = next(split.train.batches(64, np.random.default_rng(0)))
    assert batch.features.candidates.shape == (64, SMALL.slate_size)


# --- save / load -------------------------------------------------------------------------------------------


def test_save_load_round_trip_preserves_everything(dataset: SyntheticDataset, saved_dir: Path) -> None:
    loaded = load_synthetic(saved_dir)
    assert loaded.config == dataset.config and loaded.spec == dataset.spec and loaded.name == dataset.name
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(loaded, name), getattr(dataset, name))
        assert getattr(loaded, name).dtype == getattr(dataset, name).dtype
    for name, table in dataset.catalogue.to_arrays().items():
        np.testing.assert_array_equal(loaded.catalogue.to_arrays()[name], table)
    meta = json.loads((saved_dir / META_FILE).read_text())
    assert meta["format"] == FORMAT and meta["spec"] == dataset.spec.to_dict()
    assert meta["oracle"]["base_ctr"] == pytest.approx(dataset.labels.mean())


def test_written_dataset_records_its_ground_truth_metrics(tmp_path: Path) -> None:
    result = write_synthetic(SMALL, tmp_path / "synth")
    meta = json.loads((tmp_path / "synth" / META_FILE).read_text())
    assert 0.5 < meta["oracle"]["auc"] < 1.0 and meta["oracle"]["metric_rows"] == SMALL.n_users
    assert 0.5 < result.oracle_test["auc"] < 1.0 and result.base_ctr == pytest.approx(meta["oracle"]["base_ctr"])


@pytest.mark.parametrize("name", [CATALOGUE_FILE, IMPRESSIONS_FILE, META_FILE])
def test_load_raises_data_error_for_a_missing_file(saved_copy: Path, name: str) -> None:
    (saved_copy / name).unlink()
    with pytest.raises(DataError, match="not found"):
        load_synthetic(saved_copy)


@pytest.mark.parametrize("name", [CATALOGUE_FILE, IMPRESSIONS_FILE, META_FILE])
def test_load_raises_data_error_for_a_garbled_file(saved_copy: Path, name: str) -> None:
    (saved_copy / name).write_bytes(b"\x00garbled\xff" * 10)
    with pytest.raises(DataError):
        load_synthetic(saved_copy)


def test_load_raises_data_error_for_a_truncated_archive(saved_copy: Path) -> None:
    data = (saved_copy / IMPRESSIONS_FILE).read_bytes()
    (saved_copy / IMPRESSIONS_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError):
        load_synthetic(saved_copy)


@pytest.mark.parametrize(
    "edit",
    [
        lambda meta: meta.update(format="tritonrec-synthetic/0"),
        lambda meta: meta.pop("format"),
        lambda meta: meta["config"].update(n_items=-1),
        lambda meta: meta["config"].update(colour="red"),
        lambda meta: meta["spec"].update(n_items=12),
    ],
    ids=["wrong-format", "no-format", "bad-config", "unknown-config-key", "spec-mismatch"],
)
def test_load_raises_data_error_for_bad_meta(saved_copy: Path, edit: Callable[[dict[str, Any]], object]) -> None:
    meta = json.loads((saved_copy / META_FILE).read_text())
    edit(meta)
    (saved_copy / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(DataError):
        load_synthetic(saved_copy)


@pytest.mark.parametrize(
    ("array", "row", "value"),
    [
        ("candidates", 0, SMALL.n_items + 1),
        ("candidates", 1, 0),
        ("histories", 2, -3),
        ("histories", 3, 2**33),
        ("labels", 4, 0.5),
        ("click_probs", 5, 1.5),
    ],
)
def test_load_raises_data_error_for_out_of_range_values(
    dataset: SyntheticDataset, saved_copy: Path, array: str, row: int, value: float
) -> None:
    arrays = {name: getattr(dataset, name) for name in ARRAYS}
    dtype = np.int64 if array in ("histories", "candidates") else np.float64
    arrays[array] = arrays[array].astype(dtype)
    arrays[array][row, -1] = value
    np.savez(saved_copy / IMPRESSIONS_FILE, **arrays)
    with pytest.raises(DataError):
        load_synthetic(saved_copy)


def test_load_raises_data_error_for_a_left_gap_in_a_history(dataset: SyntheticDataset, saved_copy: Path) -> None:
    arrays = {name: getattr(dataset, name).copy() for name in ARRAYS}
    arrays["histories"][0, -1] = 0
    np.savez(saved_copy / IMPRESSIONS_FILE, **arrays)
    with pytest.raises(DataError, match="right-aligned"):
        load_synthetic(saved_copy)


def test_load_raises_data_error_for_a_wrong_shape(dataset: SyntheticDataset, saved_copy: Path) -> None:
    arrays = {name: getattr(dataset, name)[:-1] for name in ARRAYS}
    np.savez(saved_copy / IMPRESSIONS_FILE, **arrays)
    with pytest.raises(DataError, match="expected"):
        load_synthetic(saved_copy)


# --- config ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"n_items": 0},
        {"n_users": 0},
        {"n_brands": 10, "n_categories": 20},
        {"n_items": 30, "slate_size": 20},
        {"attr_slots": 1},
        {"slate_size": 1},
        {"label_noise": 0.0},
        {"label_noise": float("nan")},
        {"zipf_exponent": -1.0},
        {"seed": -1},
        {"n_items": 2**31},
        {"n_items": True},
        {"latent_dim": 2.5},
        {"label_noise": "1.0"},
    ],
)
def test_config_rejects_invalid_values(changes: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        SyntheticConfig(**changes)  # type: ignore[arg-type]


def test_config_dict_round_trip_and_unknown_keys() -> None:
    config = SyntheticConfig(n_items=1_234, label_noise=0.5, seed=3)
    assert SyntheticConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ConfigError, match="unknown"):
        SyntheticConfig.from_dict({**config.to_dict(), "n_shops": 3})


def test_small_edge_configs_generate_valid_data() -> None:
    sizes = {"n_categories": 1, "n_brands": 1, "n_price_buckets": 1, "n_tags": 0, "attr_slots": 2, "history_len": 1}
    config = SyntheticConfig(n_items=8, n_users=5, slate_size=4, **sizes)
    data = generate_synthetic(config)
    assert data.histories.shape == (5, 1) and (data.histories > 0).all()
    assert (np.diff(np.sort(data.candidates, axis=1), axis=1) > 0).all()
    assert data.spec.n_attributes == 2


@pytest.mark.slow
def test_generates_a_million_item_catalogue_for_200k_users() -> None:
    config = SyntheticConfig(n_items=1_000_000, n_users=200_000)
    data = generate_synthetic(config)
    data.catalogue.validate(data.spec)
    assert data.histories.shape == (200_000, 50) and data.candidates.shape == (200_000, 20)
    assert data.candidates.max() <= 1_000_000 and (data.histories[:, -1] > 0).all()
    assert 0.05 <= float(data.labels.mean()) <= 0.30


def test_catalogue_alone_is_the_generated_datasets_catalogue():
    config = SyntheticConfig(n_items=3_000, n_users=200, seed=3)
    alone, full = synthetic_catalogue(config).to_arrays(), generate_synthetic(config).catalogue.to_arrays()
    assert alone.keys() == full.keys()
    assert all(np.array_equal(alone[k], full[k]) for k in full)
    synthetic_catalogue(config).validate(config.feature_spec())
