"""Repeated measurements: the median with its min-max spread, and comparisons that respect the spread.

A benchmark point runs several times (``--repeats``, in a randomized order of settings). Two settings differ
measurably only when their min-max ranges do not overlap; otherwise the comparison is reported as "no measurable
difference", whatever the ratio of the medians says.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from tritonrec.errors import ConfigError

__all__ = ["NO_DIFFERENCE", "Comparison", "Spread", "compare", "shuffled_trials", "spread"]

NO_DIFFERENCE = "no measurable difference"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Spread:
    """Median, minimum and maximum of repeated measurements of one figure."""

    median: float
    min: float
    max: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Spread:
        """Read :meth:`to_dict` output back."""
        return cls(float(data["median"]), float(data["min"]), float(data["max"]), int(data["n"]))

    def text(self, fmt: str = ",.0f") -> str:
        """``median (min-max)``, e.g. ``1,234 (1,200-1,260)``."""
        if self.n == 1:
            return format(self.median, fmt)
        return f"{self.median:{fmt}} ({self.min:{fmt}}-{self.max:{fmt}})"


def spread(values: Sequence[float]) -> Spread:
    """The spread of ``values`` (at least one).

    Raises:
        ConfigError: no values.
    """
    if not values:
        raise ConfigError("a spread needs at least one value")
    return Spread(float(statistics.median(values)), float(min(values)), float(max(values)), len(values))


@dataclass(frozen=True, slots=True)
class Comparison:
    """``a / b`` over repeated runs: the ratio of medians, its possible range, and the verdict.

    Attributes:
        ratio: median(a) / median(b).
        ratio_min: min(a) / max(b), the smallest ratio the runs allow.
        ratio_max: max(a) / min(b), the largest.
        measurable: the min-max ranges of ``a`` and ``b`` do not overlap.
        verdict: ``"a is 1.23x b"``-style text, or :data:`NO_DIFFERENCE`.
    """

    ratio: float
    ratio_min: float
    ratio_max: float
    measurable: bool
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def compare(a: Spread, b: Spread, *, a_name: str = "a", b_name: str = "b") -> Comparison:
    """Compare two spreads of the same figure (higher or lower, the verdict only states the ratio)."""
    if b.median <= 0 or b.min <= 0:
        return Comparison(float("inf"), float("inf"), float("inf"), False, f"{b_name} is zero: no comparison")
    ratio, low, high = a.median / b.median, a.min / b.max, a.max / b.min
    measurable = a.min > b.max or a.max < b.min
    verdict = f"{a_name} / {b_name} = {ratio:.2f}x ({low:.2f}-{high:.2f})" if measurable else NO_DIFFERENCE
    return Comparison(round(ratio, 4), round(low, 4), round(high, 4), measurable, verdict)


def shuffled_trials(settings: Sequence[T], repeats: int, seed: int) -> list[tuple[T, int]]:
    """Every ``(setting, repeat)`` pair, in a seeded random order (no setting always runs first or last).

    Raises:
        ConfigError: ``repeats`` < 1.
    """
    if repeats < 1:
        raise ConfigError(f"repeats must be >= 1, got {repeats}")
    trials = [(s, r) for r in range(repeats) for s in settings]
    random.Random(seed).shuffle(trials)
    return trials
