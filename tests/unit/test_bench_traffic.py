"""Generated traffic: real Beauty histories, Zipf-skewed users, distinct popular candidates, reproducible."""

import numpy as np
import pytest

from tritonrec.errors import ConfigError
from tritonrec.measure.traffic import CandidateCounts, TrafficSpec, UserPool, load_user_pool

pytestmark = pytest.mark.unit


SMALL = CandidateCounts(low=5, high=20)


def _pool(zipf=1.1, counts=SMALL, seed=0, users=200, items=500):
    histories = [np.arange(1, 1 + (u % 30), dtype=np.int64) for u in range(users)]
    popularity = np.arange(items + 1, dtype=np.int64)[::-1].copy()
    return UserPool(histories, popularity, TrafficSpec(user_zipf=zipf, candidates=counts, seed=seed))


def test_candidates_are_distinct_in_range_and_counted_as_asked():
    pool = _pool()
    for history, candidates in pool.sample(300):
        assert 5 <= candidates.size <= 20
        assert np.unique(candidates).size == candidates.size
        assert candidates.min() >= 1 and candidates.max() <= 500
        assert candidates.dtype == np.int64 and history.dtype == np.int64


def test_popular_items_are_drawn_more_often():
    drawn = np.concatenate([c for _, c in _pool().sample(500)])
    assert (drawn <= 100).mean() > (drawn > 400).mean() * 2  # item 1 is the most popular


def test_zipf_concentrates_traffic_on_few_users():
    def top_share(zipf):
        pool = _pool(zipf=zipf)
        ids = [id(h) for h, _ in pool.sample(2000)]
        _, counts = np.unique(ids, return_counts=True)
        return np.sort(counts)[::-1][:10].sum() / len(ids)

    assert top_share(1.2) > 3 * top_share(0.0)


def test_same_seed_same_traffic_other_seed_other_traffic():
    a, b, c = (_pool(seed=s).sample(50) for s in (1, 1, 2))
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x[1], y[1]) for x, y in zip(a, c, strict=True))


def test_candidate_count_distributions():
    rng = np.random.default_rng(0)
    assert set(CandidateCounts.fixed(8).draw(rng, 100)) == {8}
    logs = CandidateCounts(low=50, high=500, distribution="log_uniform").draw(rng, 5000)
    uniform = CandidateCounts(low=50, high=500).draw(rng, 5000)
    assert logs.min() >= 50 and logs.max() <= 500
    assert np.median(logs) < np.median(uniform)  # log-uniform favours short lists


def test_more_candidates_than_items_is_refused():
    with pytest.raises(ConfigError, match="catalogue has 500 items"):
        _pool(counts=CandidateCounts(low=10, high=600))


def test_beauty_pool_has_the_real_history_lengths():
    pool = load_user_pool(TrafficSpec())
    lengths = np.asarray([h.size for h in pool.histories])
    assert len(pool) == 22363  # every user of the bundled Amazon Beauty file
    assert lengths.max() == 50 and lengths.min() >= 1  # at most L; the held-out item is dropped
    assert np.median(lengths) < 10  # most shoppers have short histories


def test_load_generation_needs_no_training_stack():
    # the locust image installs tritonrec[client,bench] only: traffic and scenarios must not pull torch or onnx
    import subprocess
    import sys

    code = (
        "import sys; from tritonrec.measure.traffic import TrafficSpec, load_user_pool; "
        "import tritonrec.measure.scenario; "
        "load_user_pool(TrafficSpec()); print(sorted(m for m in ('torch', 'onnx', 'onnxruntime') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
