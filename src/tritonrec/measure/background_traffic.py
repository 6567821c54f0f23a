"""Background traffic: client threads ranking users in a loop while something else happens (a fault, a soak).

Every call's start, end and outcome are recorded, so a study can say what the clients saw during a fault: how many
calls failed and how, and when requests succeeded again.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from tritonrec.client import ClientOptions, RankingClient, RetryPolicy
from tritonrec.errors import TritonRecError

__all__ = ["NO_RETRY", "BackgroundTraffic", "Outcome"]

IntArray = npt.NDArray[np.int64]
NO_RETRY = ClientOptions(timeout_s=5.0, retry=RetryPolicy(max_attempts=1))


@dataclass(slots=True)
class Outcome:
    """One call: when it started and ended (monotonic seconds), and ``"ok"`` or the error class name."""

    started: float
    ended: float
    kind: str


@dataclass(slots=True)
class BackgroundTraffic:
    """Client threads ranking users in a loop until stopped; every call's outcome is recorded.

    Args:
        url: Triton's gRPC endpoint.
        model: the model to rank with.
        users: ``(history, candidates)`` pairs, cycled.
        threads: calls in flight.
        options: client options (default: one attempt, 5 s deadline: a fault shows as an error, not a wait).
    """

    url: str
    model: str
    users: list[tuple[IntArray, IntArray]]
    threads: int = 8
    options: ClientOptions = NO_RETRY
    outcomes: list[Outcome] = field(default_factory=list)
    client: RankingClient = field(init=False)

    def __post_init__(self) -> None:
        self.client = RankingClient(self.url, model=self.model, options=self.options)

    @contextlib.contextmanager
    def running(self) -> Iterator[BackgroundTraffic]:
        """Run the traffic while the block runs; the client's counters stay readable afterwards."""
        stop = threading.Event()
        lock = threading.Lock()

        def loop(k: int) -> None:
            i = k
            while not stop.is_set():
                history, candidates = self.users[i % len(self.users)]
                i += self.threads
                started = time.monotonic()
                try:
                    self.client.rank(history, candidates)
                    kind = "ok"
                except TritonRecError as e:
                    kind = type(e).__name__
                with lock:
                    self.outcomes.append(Outcome(started, time.monotonic(), kind))

        workers = [threading.Thread(target=loop, args=(k,), daemon=True) for k in range(self.threads)]
        for w in workers:
            w.start()
        try:
            yield self
        finally:
            stop.set()
            for w in workers:
                w.join(timeout=30)
            self.client.close()

    def tally(self, since: float = 0.0) -> dict[str, int]:
        """Outcomes by kind of the calls that ended after ``since``."""
        return dict(Counter(o.kind for o in self.outcomes if o.ended >= since))

    def first(self, kind_ok: bool, after: float) -> float | None:
        """End time of the first call after ``after`` that succeeded (``kind_ok``) or failed."""
        times = [o.ended for o in self.outcomes if o.ended >= after and (o.kind == "ok") == kind_ok]
        return min(times) if times else None
