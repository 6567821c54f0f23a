"""Latency distributions through HdrHistogram (``hdrhistogram``, the Python port of Gil Tene's HdrHistogram).

Values are recorded in microseconds from 1 us to 10 minutes at 3 significant digits, so a percentile is exact to
0.1% whatever the spread, and a percentile of merged runs is the percentile of all their requests.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from hdrh.histogram import HdrHistogram

__all__ = ["PERCENTILES", "histogram_of", "summarize"]

PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)
_LOWEST_US, _HIGHEST_US, _DIGITS = 1, 600_000_000, 3


def _key(q: float) -> str:
    return f"p{q:g}".replace(".", "_") if q != int(q) else f"p{int(q)}"


def histogram_of(latencies_s: npt.ArrayLike) -> HdrHistogram:
    """A histogram of latencies given in seconds (values past 10 minutes are clamped to 10 minutes)."""
    histogram = HdrHistogram(_LOWEST_US, _HIGHEST_US, _DIGITS)
    us = np.clip(np.rint(np.asarray(latencies_s, dtype=np.float64) * 1e6), _LOWEST_US, _HIGHEST_US)
    values, counts = np.unique(us.astype(np.int64), return_counts=True)
    for value, count in zip(values.tolist(), counts.tolist(), strict=True):
        histogram.record_value(value, count)
    return histogram


def summarize(latencies_s: npt.ArrayLike) -> dict[str, Any]:
    """``{"p50", "p90", "p95", "p99", "p99_9", "max", "mean"}`` in ms (None when there is no value) and ``count``."""
    histogram = histogram_of(latencies_s)
    n = int(histogram.get_total_count())
    if n == 0:
        return {**{_key(q): None for q in PERCENTILES}, "max": None, "mean": None, "count": 0}
    out: dict[str, Any] = {_key(q): round(histogram.get_value_at_percentile(q) / 1e3, 3) for q in PERCENTILES}
    out.update(max=round(histogram.get_max_value() / 1e3, 3), mean=round(histogram.get_mean_value() / 1e3, 3), count=n)
    return out
