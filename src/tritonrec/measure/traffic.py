"""Realistic ranking traffic: who asks (Zipf-like over real users), with which history, for how many candidates.

A request is one user (see ``model_repository/README.md``): the user's most recent items as ``history`` and the
items to rank as ``candidates``. The pool of users comes from real data or the synthetic generator:

- ``beauty``: every Amazon Beauty user of the bundled file; the history is the user's sequence without its last
  item, at most L items, so history lengths are distributed as in the data (many short, some full);
- ``synthetic``: the test users of the default synthetic dataset (its own history lengths).

Which user asks is drawn Zipf-like (``P(rank k) ~ 1 / k**user_zipf`` over a fixed random order of the users: a
few heavy users, a long tail). Candidates are distinct items drawn by popularity in the data (what a retrieval
stage returns), their count from :class:`CandidateCounts`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tritonrec.errors import ConfigError

__all__ = ["CandidateCounts", "Distribution", "TrafficSource", "TrafficSpec", "UserPool", "load_user_pool"]

IntArray = npt.NDArray[np.int64]


class TrafficSource(enum.StrEnum):
    """Where the users of generated traffic come from."""

    BEAUTY = "beauty"
    SYNTHETIC = "synthetic"


class Distribution(enum.StrEnum):
    """How the candidate count of a request is drawn between ``low`` and ``high``."""

    FIXED = "fixed"  # always ``low``
    UNIFORM = "uniform"  # uniform integers in [low, high]
    LOG_UNIFORM = "log_uniform"  # uniform in log space: small lists more often, as retrieval stages return


@dataclass(frozen=True, slots=True, kw_only=True)
class CandidateCounts:
    """Candidates per request: ``distribution`` over ``[low, high]``."""

    low: int = 50
    high: int = 500
    distribution: Distribution = Distribution.UNIFORM

    def __post_init__(self) -> None:
        if not isinstance(self.distribution, Distribution):
            object.__setattr__(self, "distribution", _enum(Distribution, self.distribution, "candidates.distribution"))
        if self.low < 1 or self.high < self.low:
            raise ConfigError(f"candidate counts need 1 <= low <= high, got low={self.low}, high={self.high}")

    @classmethod
    def fixed(cls, n: int) -> CandidateCounts:
        """Every request ranks exactly ``n`` candidates."""
        return cls(low=n, high=n, distribution=Distribution.FIXED)

    def draw(self, rng: np.random.Generator, size: int) -> IntArray:
        """``[size]`` candidate counts."""
        if self.distribution is Distribution.FIXED or self.low == self.high:
            return np.full(size, self.low, dtype=np.int64)
        if self.distribution is Distribution.UNIFORM:
            return rng.integers(self.low, self.high + 1, size, dtype=np.int64)
        logs = rng.uniform(np.log(self.low), np.log(self.high + 1), size)
        counts: IntArray = np.minimum(np.exp(logs).astype(np.int64), self.high)
        return counts


def _enum(cls: type[enum.Enum], value: object, what: str) -> enum.Enum:
    try:
        return cls(value)
    except ValueError:
        raise ConfigError(f"{what} must be one of {[m.value for m in cls]}, got {value!r}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class TrafficSpec:
    """What traffic to generate (the ``[traffic]`` table of a scenario file).

    Attributes:
        source: where the users come from.
        user_zipf: Zipf exponent over users (0 = every user equally likely).
        candidates: candidates per request.
        seed: seeds the user order and every draw.
    """

    source: TrafficSource = TrafficSource.BEAUTY
    user_zipf: float = 1.1
    candidates: CandidateCounts = CandidateCounts()
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.source, TrafficSource):
            object.__setattr__(self, "source", _enum(TrafficSource, self.source, "traffic.source"))
        if self.user_zipf < 0:
            raise ConfigError(f"traffic.user_zipf must be >= 0, got {self.user_zipf}")


class UserPool:
    """Users with their histories plus item popularity; draws requests from them.

    Args:
        histories: one 1-D int64 array per user (oldest first, no padding; may be empty).
        item_counts: ``[n_items + 1]`` popularity per item id (index 0 unused).
        spec: traffic settings.
    """

    def __init__(self, histories: list[IntArray], item_counts: IntArray, spec: TrafficSpec) -> None:
        if not histories:
            raise ConfigError("the user pool is empty")
        self.spec = spec
        self.histories = histories
        self.n_items = len(item_counts) - 1
        if spec.candidates.high > self.n_items:
            raise ConfigError(f"{spec.candidates.high} candidates asked for but the catalogue has {self.n_items} items")
        rng = np.random.default_rng(spec.seed)
        ranks = np.arange(1, len(histories) + 1, dtype=np.float64)
        weights = ranks**-spec.user_zipf
        # a fixed random order: the heavy users are not simply the first lines of the file
        self._user_order = rng.permutation(len(histories))
        self._user_cdf = np.cumsum(weights) / weights.sum()
        popularity = item_counts[1:].astype(np.float64) + 1.0  # every item can be a candidate
        self._item_cdf = np.cumsum(popularity) / popularity.sum()
        self._rng = rng

    def __len__(self) -> int:
        return len(self.histories)

    def _candidates(self, n: int) -> IntArray:
        """``n`` distinct items drawn by popularity."""
        picked = np.empty(0, dtype=np.int64)
        while len(picked) < n:
            draw = np.searchsorted(self._item_cdf, self._rng.random(2 * n), side="right") + 1
            picked = np.unique(np.concatenate([picked, np.minimum(draw, self.n_items).astype(np.int64)]))
        return self._rng.permutation(picked)[:n]

    def draw(self) -> tuple[IntArray, IntArray]:
        """One request: ``(history [L'], candidates [N])``."""
        rank = int(np.searchsorted(self._user_cdf, self._rng.random(), side="right"))
        user = int(self._user_order[min(rank, len(self.histories) - 1)])
        n = int(self.spec.candidates.draw(self._rng, 1)[0])
        return self.histories[user], self._candidates(n)

    def sample(self, n: int) -> list[tuple[IntArray, IntArray]]:
        """``n`` requests drawn in order (the same list for the same seed)."""
        return [self.draw() for _ in range(n)]


def _beauty_pool(history_len: int) -> tuple[list[IntArray], IntArray]:
    from tritonrec.data.beauty import load_beauty
    from tritonrec.data.registry import bundled_data_dir

    data = load_beauty(bundled_data_dir(), history_len=history_len)
    # the test-time history: everything but the held-out last item, the most recent L items
    histories = [data.sequence(u)[:-1][-history_len:].astype(np.int64) for u in range(data.n_users)]
    return histories, data.item_counts()[: data.spec.n_items + 1]


def _synthetic_pool() -> tuple[list[IntArray], IntArray]:
    from tritonrec.data.synthetic import SyntheticConfig, generate_synthetic

    config = SyntheticConfig()
    split = generate_synthetic(config).split()
    histories = [row[row > 0].astype(np.int64) for row in split.test.histories]
    clicked = split.train.candidates[split.train.labels > 0.5]
    return histories, np.bincount(clicked, minlength=config.n_items + 1)[: config.n_items + 1].astype(np.int64)


def load_user_pool(spec: TrafficSpec, *, history_len: int = 50) -> UserPool:
    """Build the user pool of ``spec.source`` (Beauty: about half a second; synthetic: a few seconds)."""
    if spec.source is TrafficSource.BEAUTY:
        histories, counts = _beauty_pool(history_len)
    else:
        histories, counts = _synthetic_pool()
    return UserPool(histories, counts, spec)
