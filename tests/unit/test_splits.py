import numpy as np
import pytest

from tritonrec.data.catalogue import Catalogue
from tritonrec.data.feature_spec import FeatureSpec
from tritonrec.data.sequences import SequenceDataset, build_histories, pack_sequences
from tritonrec.data.splits import NextItemTrainSet, leave_one_out, sample_eval_negatives, trim_history_padding

pytestmark = pytest.mark.unit


def _dataset(sequences, n_items=50, history_len=4):
    spec = FeatureSpec(n_items=n_items, history_len=history_len)
    items, offsets = pack_sequences(sequences)
    return SequenceDataset(name="t", spec=spec, catalogue=Catalogue.empty(spec), items=items, offsets=offsets)


def test_histories_are_right_aligned_and_left_padded():
    items = np.array([5, 6, 7, 8, 9, 10])
    out = build_histories(items, np.array([0, 0, 2]), np.array([0, 2, 6]), 3)
    assert out.tolist() == [[0, 0, 0], [0, 5, 6], [8, 9, 10]]


def test_leave_one_out_holds_out_the_last_two_items():
    ds = _dataset([[1, 2, 3, 4, 5], [6, 7, 8], [9, 10]])
    split = leave_one_out(ds, n_eval_negatives=5, seed=0)
    assert split.test.candidates[:, 0].tolist() == [5, 8]
    assert split.valid.candidates[:, 0].tolist() == [4, 7]
    assert split.test.histories.tolist() == [[1, 2, 3, 4], [0, 0, 6, 7]]
    assert split.valid.histories.tolist() == [[0, 1, 2, 3], [0, 0, 0, 6]]
    # training targets: users' items before the held-out ones; the 2-item user trains on everything
    assert sorted(split.train.targets.tolist()) == [1, 2, 3, 6, 9, 10]


def test_no_evaluation_target_is_a_training_target_at_its_position():
    rng = np.random.default_rng(3)
    seqs = [rng.choice(np.arange(1, 200), size=int(rng.integers(3, 12)), replace=False) for _ in range(300)]
    ds = _dataset(seqs, n_items=199, history_len=8)
    split = leave_one_out(ds, n_eval_negatives=20, seed=0)
    # items are distinct within a user, so (history-last-item, target) pairs identify positions
    train = zip(split.train.histories.tolist(), split.train.targets.tolist(), strict=True)
    train_pairs = {(tuple(h), t) for h, t in train}
    for rows in (split.valid, split.test):
        for h, t in zip(rows.histories.tolist(), rows.candidates[:, 0].tolist(), strict=True):
            assert (tuple(h), t) not in train_pairs


def test_eval_negatives_are_never_interacted_distinct_and_seeded():
    rng = np.random.default_rng(1)
    seqs = [rng.choice(np.arange(1, 120), size=30, replace=False) for _ in range(40)]
    ds = _dataset(seqs, n_items=119)
    users = np.arange(40)
    a = sample_eval_negatives(ds, users, 60, np.random.default_rng(7))
    b = sample_eval_negatives(ds, users, 60, np.random.default_rng(7))
    c = sample_eval_negatives(ds, users, 60, np.random.default_rng(8))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    for user, negatives in zip(users, a, strict=True):
        assert len(set(negatives.tolist())) == 60
        assert not set(negatives.tolist()) & set(ds.sequence(user).tolist())
        assert negatives.min() >= 1 and negatives.max() <= 119


def test_leave_one_out_candidates_are_reproducible_for_a_seed():
    ds = _dataset([[1, 2, 3, 4], [5, 6, 7, 8, 9]] * 10)
    a, b = leave_one_out(ds, n_eval_negatives=10, seed=4), leave_one_out(ds, n_eval_negatives=10, seed=4)
    assert np.array_equal(a.test.candidates, b.test.candidates)
    assert not np.array_equal(a.test.candidates, leave_one_out(ds, n_eval_negatives=10, seed=5).test.candidates)


def test_training_batches_cover_every_example_once_and_never_sample_the_target_as_negative():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 9, 1000)
    histories = np.zeros((1000, 8), np.int64)
    for row, n in enumerate(lengths):
        histories[row, 8 - n :] = rng.integers(1, 5, n)
    train = NextItemTrainSet(histories, np.arange(1000) % 5 + 1, n_items=5, n_negatives=8)
    seen = []
    for batch in train.batches(64, np.random.default_rng(0)):
        cands = batch.features.candidates
        assert (cands[:, 1:] != cands[:, :1]).all()
        assert (batch.labels[:, 0] == 1).all() and (batch.labels[:, 1:] == 0).all()
        width = batch.features.histories.shape[1]
        assert width == ((batch.features.histories != 0).sum(1).max())
        seen.append(len(cands))
    assert sum(seen) == 1000


def test_trimming_keeps_the_longest_history_and_at_least_one_column():
    h = np.array([[0, 0, 0, 4], [0, 0, 2, 3]])
    assert trim_history_padding(h).tolist() == [[0, 4], [2, 3]]
    assert trim_history_padding(np.zeros((2, 5), np.int64)).shape == (2, 1)


def test_a_valid_user_fraction_trains_the_other_users_on_their_second_last_item():
    rng = np.random.default_rng(5)
    seqs = [rng.choice(np.arange(1, 300), size=int(rng.integers(3, 10)), replace=False) for _ in range(40)]
    ds = _dataset(seqs, n_items=299, history_len=12)
    classic = leave_one_out(ds, n_eval_negatives=10, seed=0)
    split = leave_one_out(ds, n_eval_negatives=10, seed=0, valid_user_fraction=0.25)
    assert len(split.valid) == 10
    assert len(split.train) == len(classic.train) + 30
    assert np.array_equal(split.test.candidates, classic.test.candidates)  # the test protocol is unchanged
    train = zip(split.train.histories.tolist(), split.train.targets.tolist(), strict=True)
    train_pairs = {(tuple(h), t) for h, t in train}
    for h, t in zip(split.test.histories.tolist(), split.test.candidates[:, 0].tolist(), strict=True):
        assert (tuple(h), t) not in train_pairs  # test items are never trained on
    for h, t in zip(split.valid.histories.tolist(), split.valid.candidates[:, 0].tolist(), strict=True):
        assert (tuple(h), t) not in train_pairs  # validation stays clean


def test_invalid_valid_user_fraction_is_a_config_error():
    from tritonrec.errors import ConfigError

    with pytest.raises(ConfigError):
        leave_one_out(_dataset([[1, 2, 3]]), valid_user_fraction=0.0)
