"""The client-wide retry budget (:class:`~tritonrec.client.options.RetryBudget`) as a thread-safe account."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from tritonrec.client.options import RetryBudget

__all__ = ["RetryAccount"]


class RetryAccount:
    """Counts calls and retries in one-second buckets over the budget's window.

    A retry is allowed while retries in the last ``window_s`` stay below ``ratio`` x calls in it + ``min_per_s``
    x ``window_s``.

    Args:
        budget: the budget (None: every retry is allowed).
        clock: seconds, monotonic (tests pass their own).
    """

    def __init__(self, budget: RetryBudget | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.budget = budget
        self._clock = clock
        self._lock = threading.Lock()
        size = int(budget.window_s) if budget else 1
        self._second = [-1] * size
        self._calls = [0] * size
        self._retries = [0] * size
        self.refused = 0

    def _bucket(self, now: float) -> int:
        second = int(now)
        index = second % len(self._second)
        if self._second[index] != second:
            self._second[index], self._calls[index], self._retries[index] = second, 0, 0
        return index

    def record_call(self) -> None:
        """A new call (not a retry) starts."""
        if self.budget is None:
            return
        with self._lock:
            self._calls[self._bucket(self._clock())] += 1

    def try_retry(self) -> bool:
        """Take one retry from the budget; False (and counted in ``refused``) when it is spent."""
        if self.budget is None:
            return True
        with self._lock:
            now = self._clock()
            index = self._bucket(now)
            oldest = int(now) - len(self._second) + 1
            live = [i for i, second in enumerate(self._second) if second >= oldest]
            calls = sum(self._calls[i] for i in live)
            retries = sum(self._retries[i] for i in live)
            if retries + 1 > self.budget.ratio * calls + self.budget.min_per_s * self.budget.window_s:
                self.refused += 1
                return False
            self._retries[index] += 1
            return True
