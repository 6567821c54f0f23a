"""The soak's growth figures: a short-lived thread is not a leak, threads that stay are."""

import pytest

from tritonrec.measure.soak import _growth

pytestmark = pytest.mark.unit


def _samples(threads, fds=None):
    fds = fds or [10] * len(threads)
    return [
        {"t_s": 5.0 * i, "server": {"rss_mib": 100.0, "fds": f, "threads": t}}
        for i, (t, f) in enumerate(zip(threads, fds, strict=True))
    ]


def test_a_thread_seen_in_one_sample_is_not_growth():
    assert _growth(_samples([50, 50, 50, 50, 50, 50, 53]), "server", warmup_s=0)["threads_growth"] == 0
    assert _growth(_samples([53, 50, 50, 50, 50, 50, 50]), "server", warmup_s=0)["threads_growth"] == 0


def test_threads_and_descriptors_that_stay_are_growth():
    grown = _growth(_samples([50, 50, 50, 51, 52, 52, 52], fds=[10, 10, 10, 12, 12, 12, 12]), "server", warmup_s=0)
    assert grown["threads_growth"] == 2 and grown["fds_growth"] == 2


def test_samples_in_the_warmup_are_not_judged():
    assert _growth(_samples([40, 40, 50, 50, 50, 50]), "server", warmup_s=10)["threads_growth"] == 0
