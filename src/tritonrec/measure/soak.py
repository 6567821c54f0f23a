"""Soak: steady load for minutes; memory (RSS), file descriptors and threads of the server and the client.

After a warm-up, none of them may grow: a leak shows as RSS creeping up over the run, or descriptors and threads
piling up (connections not closed, threads not joined). The server is measured with its Python-backend stubs.
Descriptors and threads are compared as the fewest at each end of the run (three samples), so a short-lived thread
caught by one sample is not taken for a leak.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import psutil

from tritonrec.errors import ConfigError
from tritonrec.measure.background_traffic import BackgroundTraffic

__all__ = ["soak"]

IntArray = npt.NDArray[np.int64]


def _resources(process: psutil.Process, *, tree: bool) -> dict[str, float]:
    processes = [process, *(process.children(recursive=True) if tree else [])]
    rss = fds = threads = 0
    for p in processes:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            rss += p.memory_info().rss
            fds += p.num_fds()
            threads += p.num_threads()
    return {"rss_mib": round(rss / 2**20, 2), "fds": fds, "threads": threads}


_SETTLE = 3
"""Descriptors and threads are compared as the fewest over this many samples at each end of the judged run: a
thread alive for one sample (the Python-backend stubs start short-lived ones) is not piling up; a leak stays in every
sample after it appears."""


def _settled(samples: list[dict[str, Any]], key: str) -> int:
    return min(int(s[key]) for s in samples)


def _growth(samples: list[dict[str, Any]], who: str, warmup_s: float) -> dict[str, Any]:
    after = [s for s in samples if s["t_s"] >= warmup_s]
    first, last = after[0][who], after[-1][who]
    head, tail = [s[who] for s in after[:_SETTLE]], [s[who] for s in after[-_SETTLE:]]
    peak = max(s[who]["rss_mib"] for s in after)
    return {
        "rss_mib_after_warmup": first["rss_mib"],
        "rss_mib_end": last["rss_mib"],
        "rss_mib_peak": peak,
        "rss_growth_pct": round((last["rss_mib"] - first["rss_mib"]) / first["rss_mib"] * 100, 2),
        "fds_growth": _settled(tail, "fds") - _settled(head, "fds"),
        "threads_growth": _settled(tail, "threads") - _settled(head, "threads"),
    }


def soak(
    url: str,
    model: str,
    users: list[tuple[IntArray, IntArray]],
    server: psutil.Process,
    *,
    duration_s: float = 600.0,
    warmup_s: float | None = None,
    sample_every_s: float = 5.0,
    threads: int = 8,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Rank ``users`` at ``threads`` in flight for ``duration_s``; sample server and client resources.

    Args:
        url: Triton's gRPC endpoint.
        model: the model.
        users: requests, cycled.
        server: the tritonserver process (its stubs are counted with it).
        duration_s: how long the load runs.
        warmup_s: samples before this are not judged (default: a fifth of the run).
        sample_every_s: sampling period.
        threads: calls in flight.
        progress: told the elapsed time at each sample.
    """
    if duration_s <= 0 or sample_every_s <= 0:
        raise ConfigError("soak needs duration_s > 0 and sample_every_s > 0")
    warmup = duration_s / 5 if warmup_s is None else warmup_s
    client = psutil.Process()
    samples: list[dict[str, Any]] = []
    traffic = BackgroundTraffic(url, model, users, threads=threads)
    with traffic.running():
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < duration_s:
            samples.append(
                {
                    "t_s": round(elapsed, 1),
                    "server": _resources(server, tree=True),
                    "client": _resources(client, tree=False),
                    "calls": len(traffic.outcomes),
                }
            )
            if progress is not None:
                progress(f"soak: {elapsed:.0f}/{duration_s:.0f} s, {len(traffic.outcomes):,} calls")
            time.sleep(min(sample_every_s, max(duration_s - elapsed, 0.0)))
        samples.append(
            {
                "t_s": round(time.monotonic() - started, 1),
                "server": _resources(server, tree=True),
                "client": _resources(client, tree=False),
                "calls": len(traffic.outcomes),
            }
        )
    return {
        "duration_s": duration_s,
        "warmup_s": warmup,
        "threads": threads,
        "calls": len(traffic.outcomes),
        "outcomes": traffic.tally(),
        "server": _growth(samples, "server", warmup),
        "client": _growth(samples, "client", warmup),
        "samples": samples,
    }
