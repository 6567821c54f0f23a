"""Synthetic e-commerce data at any scale, with clicks drawn from a hidden ground-truth model.

Legend: N = items, U = users, L = history length, C = slate size, D = latent dimension.

Generative model (every draw comes from ``np.random.SeedSequence(config.seed)`` children, so the same config
always gives the same arrays; the item side does not depend on ``n_users``):

1. **Catalogue.** Categories get log-normal sizes; every brand belongs to one category and every item to one
   category and one of that category's brands. An item's price is log-normal around its category's and
   brand's level and is quantized into equal-frequency buckets ``1..n_price_buckets``. Items carry 0-2 tags
   (Zipf-popular). Attribute slots hold ``[category, brand, tags...]`` in one id space: categories are
   ``1..K``, brands ``K+1..K+B``, tags ``K+B+1..K+B+T``. Item popularity is Zipf (``zipf_exponent``) over a
   random ranking of the items.
2. **Latents.** ``item_latent = category_latent + brand_latent + tag_latents + small item noise``, so similar
   items share observable features.
3. **Users.** Each user has 1-3 hidden preferred categories and a log-normal history length in ``1..L``.
   History items come from the preferred categories by popularity, with some popular "exploration" items.
4. **Slates.** ``C`` distinct items: some from the preferred categories, some by global popularity, some
   uniform, so clicked items are not simply the popular ones.
5. **Clicks.** The user's state is read off the *observable* history only: a recency-weighted, normalized mean
   of the history's item latents and a price level (mean bucket) with a sensitivity (1 / (1 + spread)). Then
   ``logit = (a * <pref, item_latent> + b * log_popularity + price_match) / label_noise + bias`` and
   ``label ~ Bernoulli(sigmoid(logit))``. The bias is calibrated on a pilot sample so the base CTR is about
   :data:`TARGET_CTR` at any ``label_noise``.

Why the oracle is the ceiling: labels are independent Bernoulli draws given the features, so no scorer can
rank better (in expectation) than the true click probability itself, the Bayes-optimal scorer. The oracle
metrics (:meth:`SyntheticSplit.oracle_metrics`) therefore bound what any trained model can reach, and since
the probability is a function of item ids, item features and the history alone, a model can approach it.
Smaller ``label_noise`` spreads the logits, which makes clicks more deterministic and raises the ceiling.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from tritonrec.data.catalogue import Catalogue
from tritonrec.data.feature_spec import FeatureSpec, table_rows
from tritonrec.data.splits import EvalSet, SlateTrainSet
from tritonrec.dictconfig import known_fields
from tritonrec.errors import ConfigError, DataError

__all__ = [
    "TARGET_CTR",
    "SyntheticConfig",
    "SyntheticDataset",
    "SyntheticSplit",
    "IMPRESSION_DTYPES",
    "generate_synthetic",
    "logit",
    "synthetic_catalogue",
]

logger = logging.getLogger(__name__)

TARGET_CTR = 0.12
"""Mean click probability the logit bias is calibrated to."""

Int32Array = npt.NDArray[np.int32]
Int64Array = npt.NDArray[np.int64]
Float32Array = npt.NDArray[np.float32]
Float64Array = npt.NDArray[np.float64]

IMPRESSION_DTYPES: dict[str, type[np.generic]] = {
    "histories": np.int32,
    "candidates": np.int32,
    "labels": np.float32,
    "click_probs": np.float32,
}

_USER_BLOCK = 32_768  # users generated per block (bounds peak memory; fixed so results never depend on it)
_PILOT_USERS = 8_192  # users of the bias-calibration pilot sample
_N_PREF = (0.5, 0.3, 0.2)  # probability of 1, 2, 3 preferred categories
_HISTORY_MIX = (0.8, 0.2, 0.0)  # history sources: preferred category / popular / uniform
_SLATE_MIX = (0.5, 0.35, 0.15)  # slate sources, same order
_RECENCY_DECAY = 0.95  # weight of a history item per step back in time
_W_AFFINITY, _W_POPULARITY, _W_PRICE = 2.5, 0.1, 3.0  # a, b and the price-match weight of the logit


@dataclass(frozen=True, slots=True, kw_only=True)
class SyntheticConfig:
    """Size and shape of a synthetic dataset.

    Attributes:
        n_items: number of items ``N`` (ids ``1..N``).
        n_users: number of users ``U``, one impression slate each.
        n_categories: categories ``K``; every category holds at least one item and one brand.
        n_brands: brands ``B`` (at least ``K``); each belongs to one category.
        n_price_buckets: equal-frequency price buckets (ids ``1..n``).
        n_tags: tag vocabulary; items carry 0-2 tags (0 = no tags).
        attr_slots: attribute slots per item (>= 2: category, brand, then up to 2 tags).
        history_len: ``L``, the history length of every row.
        slate_size: ``C``, items per impression slate.
        zipf_exponent: exponent of the item (and tag) popularity power law.
        latent_dim: ``D`` of the hidden item latents.
        label_noise: temperature of the ground-truth logit; smaller means more deterministic clicks.
        seed: root seed of every random draw.
    """

    n_items: int = 20_000
    n_users: int = 20_000
    n_categories: int = 50
    n_brands: int = 500
    n_price_buckets: int = 10
    n_tags: int = 200
    attr_slots: int = 4
    history_len: int = 50
    slate_size: int = 20
    zipf_exponent: float = 1.1
    latent_dim: int = 16
    label_noise: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            allowed: tuple[type[int] | type[float], ...] = (int, float) if f.type == "float" else (int,)
            if isinstance(value, bool) or not isinstance(value, allowed):
                raise ConfigError(f"{f.name} must be {f.type}, got {value!r}")
            low = {"n_tags": 0, "seed": 0, "attr_slots": 2, "slate_size": 2}.get(f.name, 1)
            if f.type == "int" and value < low:
                raise ConfigError(f"{f.name} must be >= {low}, got {value}")
        for name in ("zipf_exponent", "label_noise"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ConfigError(f"{name} must be a finite number > 0, got {getattr(self, name)}")
        if self.n_brands < self.n_categories:
            raise ConfigError(f"n_brands ({self.n_brands}) must be >= n_categories ({self.n_categories})")
        if self.n_items < max(self.n_categories, 2 * self.slate_size):
            raise ConfigError(f"n_items ({self.n_items}) must be >= n_categories and >= 2 * slate_size")
        if table_rows(self.n_items) > np.iinfo(np.int32).max:
            raise ConfigError(f"n_items ({self.n_items}) does not fit int32 ids")

    def to_dict(self) -> dict[str, int | float]:
        """Return a JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SyntheticConfig:
        """Build from :meth:`to_dict` output (missing keys take defaults); unknown keys are a ConfigError."""
        return cls(**known_fields(cls, data))

    def feature_spec(self) -> FeatureSpec:
        """Return the :class:`FeatureSpec` of datasets generated from this config."""
        return FeatureSpec(
            n_items=self.n_items,
            n_attributes=self.n_categories + self.n_brands + self.n_tags,
            n_brands=self.n_brands,
            n_categories=self.n_categories,
            n_price_buckets=self.n_price_buckets,
            history_len=self.history_len,
            attr_slots=self.attr_slots,
        )


@dataclass(frozen=True, slots=True)
class SyntheticSplit:
    """A by-user split of a synthetic dataset, with the true click probabilities of the evaluation rows.

    Attributes:
        train: training slates.
        valid: validation rows.
        test: test rows.
        valid_click_probs: ``[len(valid), C]`` ground-truth click probabilities of ``valid``.
        test_click_probs: ``[len(test), C]`` ground-truth click probabilities of ``test``.
    """

    train: SlateTrainSet
    valid: EvalSet
    test: EvalSet
    valid_click_probs: Float32Array
    test_click_probs: Float32Array

    def oracle_scores(self) -> Float64Array:
        """``[len(test), C]`` scores of the Bayes-optimal scorer (the true click logits) on the test rows."""
        return logit(self.test_click_probs)


@dataclass(frozen=True, slots=True, kw_only=True)
class SyntheticDataset:
    """Catalogue, histories and click-labelled impression slates; one row per user.

    Attributes:
        name: ``"synthetic"``.
        config: the generating config.
        spec: ``config.feature_spec()``.
        catalogue: item features.
        histories: ``[U, L]`` int32 item ids, right-aligned (most recent last), 0-padded on the left.
        candidates: ``[U, C]`` int32 distinct item ids per row (the impression slate).
        labels: ``[U, C]`` float32 clicks in {0, 1}.
        click_probs: ``[U, C]`` float32 ground-truth click probabilities the labels were drawn from.
    """

    name: str = "synthetic"
    config: SyntheticConfig
    spec: FeatureSpec
    catalogue: Catalogue
    histories: Int32Array
    candidates: Int32Array
    labels: Float32Array
    click_probs: Float32Array

    def __post_init__(self) -> None:
        cfg, n = self.config, self.config.n_items
        if self.spec != cfg.feature_spec():
            raise DataError(f"spec {self.spec} does not match the config's {cfg.feature_spec()}")
        self.catalogue.validate(self.spec)
        for name, dtype in IMPRESSION_DTYPES.items():
            arr, shape = getattr(self, name), (cfg.n_users, cfg.history_len if name == "histories" else cfg.slate_size)
            if arr.shape != shape or arr.dtype != dtype:
                raise DataError(f"{name} is {arr.dtype}{arr.shape}, expected {np.dtype(dtype)}{shape}")
        h, c = self.histories, self.candidates
        if h.min() < 0 or h.max() > n or c.min() < 1 or c.max() > n:
            raise DataError(f"history ids must lie in 0..{n} and candidate ids in 1..{n}")
        if (h[:, -1] == 0).any() or ((h[:, :-1] > 0) & (h[:, 1:] == 0)).any():
            raise DataError("histories must be non-empty, right-aligned and 0-padded on the left only")
        if not ((self.labels == 0) | (self.labels == 1)).all():
            raise DataError("labels must be 0 or 1")
        if not ((self.click_probs >= 0) & (self.click_probs <= 1)).all():
            raise DataError("click_probs must lie in [0, 1]")

    def split(self, *, valid_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0) -> SyntheticSplit:
        """Split the rows by user into train/valid/test (seeded; each part keeps the original row order).

        Raises:
            ConfigError: a fraction is outside ``[0, 1)`` or no training user would remain.
        """
        for name, value in (("valid_fraction", valid_fraction), ("test_fraction", test_fraction)):
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"{name} must lie in [0, 1), got {value}")
        n_users = len(self.histories)
        n_valid, n_test = round(valid_fraction * n_users), round(test_fraction * n_users)
        if n_valid + n_test >= n_users:
            raise ConfigError(f"valid + test ({n_valid} + {n_test} users) leave no training users of {n_users}")
        order = np.random.default_rng(seed).permutation(n_users)
        test, valid, train = (np.sort(p) for p in np.split(order, [n_test, n_test + n_valid]))
        return SyntheticSplit(
            train=SlateTrainSet(*self._rows(train)),
            valid=EvalSet(*self._rows(valid)),
            test=EvalSet(*self._rows(test)),
            valid_click_probs=self.click_probs[valid],
            test_click_probs=self.click_probs[test],
        )

    def _rows(self, users: Int64Array) -> tuple[Int64Array, Int64Array, Float32Array]:
        return self.histories[users].astype(np.int64), self.candidates[users].astype(np.int64), self.labels[users]


@dataclass(frozen=True, slots=True)
class _Items:
    """Hidden item side: latents and popularity by item id (rows 0 and N+1 are zero), plus samplers."""

    catalogue: Catalogue
    latents: Float32Array  # [N + 2, D]
    log_pop: Float64Array  # [N + 2] standardized log popularity
    price: Float64Array  # [N + 2] price bucket as float
    pop_cum: Float64Array  # [N] cumulative popularity in id order
    cat_items: Int64Array  # [N] item ids sorted by category
    cat_cum: Float64Array  # [N + 1] cumulative popularity in cat_items order, starting at 0
    cat_bounds: Int64Array  # [K + 1] category k (1-based) owns cat_items[cat_bounds[k-1]:cat_bounds[k]]
    cat_share: Float64Array  # [K] popularity share of each category

    def popular(self, u: Float64Array) -> Int64Array:
        """Items drawn by global popularity for uniforms ``u`` in [0, 1)."""
        idx = np.searchsorted(self.pop_cum, u * self.pop_cum[-1], side="right")
        return np.asarray(np.minimum(idx, len(self.pop_cum) - 1) + 1, dtype=np.int64)

    def in_category(self, cats: Int64Array, u: Float64Array) -> Int64Array:
        """Items drawn by popularity within categories ``cats`` (1-based) for uniforms ``u``."""
        lo, hi = self.cat_bounds[cats - 1], self.cat_bounds[cats]
        target = self.cat_cum[lo] + u * (self.cat_cum[hi] - self.cat_cum[lo])
        idx = np.clip(np.searchsorted(self.cat_cum, target, side="right") - 1, lo, hi - 1)
        return np.asarray(self.cat_items[idx], dtype=np.int64)


def _make_items(cfg: SyntheticConfig, rng: np.random.Generator) -> _Items:
    n, k, n_brands, dim = cfg.n_items, cfg.n_categories, cfg.n_brands, cfg.latent_dim
    cat_w = rng.lognormal(0.0, 0.7, k)
    cat_w /= cat_w.sum()
    category = rng.choice(k, size=n, p=cat_w)
    category[rng.choice(n, size=k, replace=False)] = np.arange(k)  # no empty category
    # Brands: the first K cover every category; within a category, earlier brands hold more items.
    brand_cat = np.concatenate([np.arange(k), rng.choice(k, size=n_brands - k, p=cat_w)])
    brand_order = np.argsort(brand_cat, kind="stable")
    brand_bounds = np.searchsorted(brand_cat[brand_order], np.arange(k + 1))
    width = brand_bounds[category + 1] - brand_bounds[category]
    brand = brand_order[brand_bounds[category] + (width * rng.random(n) ** 2).astype(np.int64)]
    log_price = rng.normal(0.0, 0.8, k)[category] + rng.normal(0.0, 0.4, n_brands)[brand] + rng.normal(0.0, 0.5, n)
    edges = np.quantile(log_price, np.linspace(0.0, 1.0, cfg.n_price_buckets + 1)[1:-1])
    bucket = np.searchsorted(edges, log_price, side="right") + 1
    tag_slots = min(2, cfg.attr_slots - 2) if cfg.n_tags else 0
    tags = np.zeros((n, cfg.attr_slots - 2), dtype=np.int64)  # 1-based tag ids, 0 = none
    if tag_slots:
        tag_p = rng.permutation(np.arange(1, cfg.n_tags + 1) ** -cfg.zipf_exponent)
        drawn = rng.choice(cfg.n_tags, size=(n, tag_slots), p=tag_p / tag_p.sum()) + 1
        drawn[np.arange(tag_slots)[None, :] >= rng.integers(0, tag_slots + 1, n)[:, None]] = 0
        if tag_slots == 2:
            drawn[drawn[:, 1] == drawn[:, 0], 1] = 0
        tags[:, :tag_slots] = drawn
    scale = 1.0 / math.sqrt(dim)
    tag_lat = np.vstack([np.zeros((1, dim)), rng.normal(0.0, 0.4 * scale, (cfg.n_tags, dim))])
    latent = rng.normal(0.0, scale, (k, dim))[category] + rng.normal(0.0, 0.6 * scale, (n_brands, dim))[brand]
    latent += rng.normal(0.0, 0.3 * scale, (n, dim))
    for slot in range(tag_slots):
        latent += tag_lat[tags[:, slot]]
    log_pop = -cfg.zipf_exponent * np.log(rng.permutation(n) + 1.0)
    pop = np.exp(log_pop)

    rows = table_rows(n)
    attributes = np.zeros((rows, cfg.attr_slots), dtype=np.int64)
    attributes[1:-1, 0], attributes[1:-1, 1] = category + 1, k + brand + 1
    attributes[1:-1, 2:] = np.where(tags > 0, k + n_brands + tags, 0)
    catalogue = Catalogue(
        attributes=attributes,
        brand=np.pad(brand + 1, 1),
        category=np.pad(category + 1, 1),
        price_bucket=np.pad(bucket, 1).astype(np.int64),
    )
    cat_items = np.argsort(category, kind="stable")
    return _Items(
        catalogue=catalogue,
        latents=np.pad(latent, ((1, 1), (0, 0))).astype(np.float32),
        log_pop=np.pad((log_pop - log_pop.mean()) / max(float(log_pop.std()), 1e-12), 1),
        price=np.pad(bucket.astype(np.float64), 1),
        pop_cum=np.cumsum(pop),
        cat_items=cat_items + 1,
        cat_cum=np.concatenate([[0.0], np.cumsum(pop[cat_items])]),
        cat_bounds=np.searchsorted(category[cat_items], np.arange(k + 1)),
        cat_share=np.bincount(category, weights=pop, minlength=k) / pop.sum(),
    )


def _draw_items(
    rng: np.random.Generator,
    items: _Items,
    prefs: Int64Array,
    n_pref: Int64Array,
    shape: tuple[int, int],
    mix: tuple[float, float, float],
) -> Int64Array:
    """``shape`` items per user row: from a preferred category, by popularity, or uniform, per ``mix``."""
    source = rng.choice(3, size=shape, p=mix)
    out = np.empty(shape, dtype=np.int64)
    rows = np.nonzero(source == 0)[0]
    pick = (rng.random(len(rows)) * n_pref[rows]).astype(np.int64)
    out[source == 0] = items.in_category(prefs[rows, pick], rng.random(len(rows)))
    out[source == 1] = items.popular(rng.random(int((source == 1).sum())))
    out[source == 2] = rng.integers(1, len(items.pop_cum) + 1, size=int((source == 2).sum()))
    return out


def _dedupe_rows(rng: np.random.Generator, cand: Int64Array, n_items: int) -> Int64Array:
    """Redraw repeated items of each row uniformly until every row holds distinct items."""
    rows = np.arange(len(cand))
    while len(rows):
        sub = cand[rows]
        order = np.argsort(sub, axis=1, kind="stable")
        ranked = np.take_along_axis(sub, order, axis=1)
        dup = np.zeros(sub.shape, dtype=bool)
        np.put_along_axis(dup, order[:, 1:], ranked[:, 1:] == ranked[:, :-1], axis=1)
        sub[dup] = rng.integers(1, n_items + 1, size=int(dup.sum()))
        cand[rows] = sub
        rows = rows[dup.any(axis=1)]
    return cand


def _make_users(
    cfg: SyntheticConfig, items: _Items, rng: np.random.Generator, n: int
) -> tuple[Int64Array, Int64Array, Float64Array]:
    """Return ``n`` users' histories ``[n, L]``, slates ``[n, C]`` and raw (temperature-free) scores ``[n, C]``."""
    length = cfg.history_len
    n_pref = rng.choice(len(_N_PREF), size=n, p=_N_PREF) + 1
    prefs = rng.choice(cfg.n_categories, size=(n, len(_N_PREF)), p=items.cat_share) + 1
    lengths = np.clip(np.rint(rng.lognormal(math.log(length / 3), 0.9, n)), 1, length)
    hist = _draw_items(rng, items, prefs, n_pref, (n, length), _HISTORY_MIX)
    hist[np.arange(length)[None, :] < (length - lengths)[:, None]] = 0
    cand = _dedupe_rows(rng, _draw_items(rng, items, prefs, n_pref, (n, cfg.slate_size), _SLATE_MIX), cfg.n_items)
    # The user's state, from the observable history only.
    weights = np.where(hist > 0, _RECENCY_DECAY ** np.arange(length - 1, -1, -1.0), 0.0)
    weights /= weights.sum(axis=1, keepdims=True)
    pref = np.einsum("nl,nld->nd", weights, items.latents[hist])
    pref /= np.linalg.norm(pref, axis=1, keepdims=True) + 1e-12
    level = (weights * items.price[hist]).sum(axis=1, keepdims=True)
    spread = np.sqrt((weights * (items.price[hist] - level) ** 2).sum(axis=1, keepdims=True))
    price_gap = np.abs(items.price[cand] - level) / max(cfg.n_price_buckets - 1, 1)
    score = (
        _W_AFFINITY * np.einsum("nd,ncd->nc", pref, items.latents[cand])
        + _W_POPULARITY * items.log_pop[cand]
        - _W_PRICE * price_gap / (1.0 + spread)
    )
    return hist, cand, score


def _sigmoid(x: Float64Array) -> Float64Array:
    return np.asarray(np.exp(-np.logaddexp(0.0, -x)), dtype=np.float64)


def logit(p: npt.NDArray[np.floating[Any]]) -> Float64Array:
    """Log-odds of probabilities ``p`` (clipped away from 0 and 1), as float64."""
    q = np.clip(p.astype(np.float64), 1e-12, 1.0 - 1e-12)
    return np.asarray(np.log(q) - np.log1p(-q), dtype=np.float64)


def _calibrate_bias(z: Float64Array, target: float) -> float:
    """Return ``b`` with ``mean(sigmoid(z + b)) == target`` (bisection; the mean is increasing in ``b``)."""
    lo, hi = -60.0, 60.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _sigmoid(z + mid).mean() < target else (lo, mid)
    return 0.5 * (lo + hi)


def synthetic_catalogue(config: SyntheticConfig) -> Catalogue:
    """The catalogue :func:`generate_synthetic` makes for ``config``, without its users (seconds at 1M items).

    What a throughput measurement of a big model needs: valid side-feature tables at any scale.
    """
    item_seed, _, _ = np.random.SeedSequence(config.seed).spawn(3)
    return _make_items(config, np.random.default_rng(item_seed)).catalogue


def generate_synthetic(config: SyntheticConfig) -> SyntheticDataset:
    """Generate a dataset from ``config`` (deterministic: the same config gives identical arrays).

    Users are generated in fixed-size blocks, so peak memory stays near the size of the output arrays.
    """
    item_seed, pilot_seed, user_seed = np.random.SeedSequence(config.seed).spawn(3)
    items = _make_items(config, np.random.default_rng(item_seed))
    _, _, pilot = _make_users(config, items, np.random.default_rng(pilot_seed), _PILOT_USERS)
    bias = _calibrate_bias(pilot / config.label_noise, TARGET_CTR)
    shape = (config.n_users, config.slate_size)
    histories = np.empty((config.n_users, config.history_len), dtype=np.int32)
    candidates = np.empty(shape, dtype=np.int32)
    labels, click_probs = np.empty(shape, dtype=np.float32), np.empty(shape, dtype=np.float32)
    n_blocks = -(-config.n_users // _USER_BLOCK)
    for block, seed in enumerate(user_seed.spawn(n_blocks)):
        rng = np.random.default_rng(seed)
        lo, hi = block * _USER_BLOCK, min((block + 1) * _USER_BLOCK, config.n_users)
        hist, cand, score = _make_users(config, items, rng, hi - lo)
        probs = _sigmoid(score / config.label_noise + bias)
        histories[lo:hi], candidates[lo:hi], click_probs[lo:hi] = hist, cand, probs
        labels[lo:hi] = rng.random(probs.shape) < probs
    logger.info("generated %d items x %d users (logit bias %.3f)", config.n_items, config.n_users, bias)
    return SyntheticDataset(
        config=config,
        spec=config.feature_spec(),
        catalogue=items.catalogue,
        histories=histories,
        candidates=candidates,
        labels=labels,
        click_probs=click_probs,
    )
