"""Train/evaluation sets, the leave-one-out split and negative sampling.

Legend: U = evaluated users, E = training examples, B = batch, L = history length, C = candidates per row.

Evaluation protocol (leave-one-out): a user's last item is the test target, the second-last the validation
target; each is ranked against ``n_negatives`` items drawn uniformly (seeded) from the items that user never
interacted with. Training targets are the earlier items only, so no evaluation target is ever trained on.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tritonrec.data.sequences import SequenceDataset, build_histories
from tritonrec.errors import ConfigError, DataError

__all__ = [
    "EvalSet",
    "FeatureBatch",
    "LeaveOneOutSplit",
    "NextItemTrainSet",
    "SlateTrainSet",
    "TrainBatch",
    "leave_one_out",
    "sample_eval_negatives",
    "trim_history_padding",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]


_BUCKET_BATCHES = 32


def trim_history_padding(histories: IntArray) -> IntArray:
    """Drop the leading columns that are padding in every row (keeps at least one column).

    Histories are right-aligned, so this keeps exactly the longest history of the batch.
    """
    width = max(int((histories != 0).sum(axis=1).max(initial=0)), 1)
    return histories[:, -width:]


def _length_bucketed(lengths: IntArray, batch_size: int, rng: np.random.Generator) -> Iterator[IntArray]:
    """Yield shuffled batches of row indices whose history lengths are similar.

    Rows are shuffled, cut into chunks of ``_BUCKET_BATCHES`` batches, sorted by length inside each chunk and
    batched; the batch order is then shuffled. A batch then pads to its own longest history instead of ``L``:
    on Beauty (median length 6, ``L`` = 50) this cuts the history compute several-fold.
    """
    order = rng.permutation(len(lengths))
    chunk = batch_size * _BUCKET_BATCHES
    batches: list[IntArray] = []
    for lo in range(0, len(order), chunk):
        part = order[lo : lo + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    for index in rng.permutation(len(batches)):
        yield batches[index]


@dataclass(frozen=True, slots=True)
class FeatureBatch:
    """What every scorer receives: users' histories and the candidates to score for each.

    Attributes:
        histories: ``[B, L]`` item ids, right-aligned, 0-padded.
        candidates: ``[B, C]`` item ids to score against the history of the same row.
    """

    histories: IntArray
    candidates: IntArray


@dataclass(frozen=True, slots=True)
class TrainBatch:
    """A training batch: features plus ``[B, C]`` labels (1 = positive)."""

    features: FeatureBatch
    labels: FloatArray


@dataclass(frozen=True, slots=True)
class EvalSet:
    """Rows of (history, candidates, labels) to score; one row per evaluated user.

    Attributes:
        histories: ``[U, L]``.
        candidates: ``[U, C]``.
        labels: ``[U, C]`` float32 in {0, 1}; leave-one-out rows have the positive in column 0.
    """

    histories: IntArray
    candidates: IntArray
    labels: FloatArray

    def __len__(self) -> int:
        return len(self.histories)

    def head(self, n: int) -> EvalSet:
        """Return the first ``n`` rows (for quick runs)."""
        return EvalSet(self.histories[:n], self.candidates[:n], self.labels[:n])

    def sample(self, n: int, seed: int) -> EvalSet:
        """A seeded random ``n`` rows in their original order (all rows when ``n`` is 0 or not below their count).

        What a quality figure on part of a split should be measured on: the first rows are not a random sample
        (the split's order follows the users' ids).
        """
        if n <= 0 or n >= len(self):
            return self
        index = np.sort(np.random.default_rng(seed).choice(len(self), size=n, replace=False))
        return EvalSet(self.histories[index], self.candidates[index], self.labels[index])

    def batches(self, batch_size: int) -> Iterator[FeatureBatch]:
        """Yield feature batches of at most ``batch_size`` rows, in order."""
        for lo in range(0, len(self), batch_size):
            yield FeatureBatch(self.histories[lo : lo + batch_size], self.candidates[lo : lo + batch_size])


@dataclass(frozen=True, slots=True)
class NextItemTrainSet:
    """Next-item examples; each batch row gets its target plus uniformly sampled negatives.

    Attributes:
        histories: ``[E, L]``.
        targets: ``[E]`` the item that followed each history.
        n_items: negatives are drawn from ``1..n_items``.
        n_negatives: negatives per example (the sampled-softmax width minus one).
    """

    histories: IntArray
    targets: IntArray
    n_items: int
    n_negatives: int

    def __len__(self) -> int:
        return len(self.targets)

    def batches(self, batch_size: int, rng: np.random.Generator) -> Iterator[TrainBatch]:
        """Yield length-bucketed shuffled batches; candidates are ``[target, negatives...]``, label 1 on column 0."""
        for rows in _length_bucketed((self.histories != 0).sum(axis=1), batch_size, rng):
            targets = self.targets[rows]
            negatives = rng.integers(1, self.n_items + 1, size=(len(rows), self.n_negatives), dtype=np.int64)
            # A negative equal to the target would be a contradictory label: shift it to the next id.
            clash = negatives == targets[:, None]
            negatives[clash] = negatives[clash] % self.n_items + 1
            candidates = np.concatenate([targets[:, None], negatives], axis=1)
            labels = np.zeros(candidates.shape, dtype=np.float32)
            labels[:, 0] = 1.0
            yield TrainBatch(FeatureBatch(trim_history_padding(self.histories[rows]), candidates), labels)


@dataclass(frozen=True, slots=True)
class SlateTrainSet:
    """Impression slates with observed click labels (the synthetic data's form)."""

    histories: IntArray
    candidates: IntArray
    labels: FloatArray

    def __len__(self) -> int:
        return len(self.histories)

    def batches(self, batch_size: int, rng: np.random.Generator) -> Iterator[TrainBatch]:
        """Yield length-bucketed shuffled batches of whole slates."""
        for rows in _length_bucketed((self.histories != 0).sum(axis=1), batch_size, rng):
            histories = trim_history_padding(self.histories[rows])
            yield TrainBatch(FeatureBatch(histories, self.candidates[rows]), self.labels[rows])


@dataclass(frozen=True, slots=True)
class LeaveOneOutSplit:
    """Training examples plus validation and test evaluation sets."""

    train: NextItemTrainSet
    valid: EvalSet
    test: EvalSet


def sample_eval_negatives(
    dataset: SequenceDataset, users: IntArray, n_negatives: int, rng: np.random.Generator
) -> IntArray:
    """Draw ``n_negatives`` distinct items per user, uniformly from the items the user never interacted with.

    Returns:
        ``[len(users), n_negatives]`` int64.
    """
    n_items = dataset.spec.n_items
    out = np.empty((len(users), n_negatives), dtype=np.int64)
    for row, user in enumerate(users):
        seen = np.unique(dataset.sequence(int(user)))
        if n_items - len(seen) < n_negatives:
            raise DataError(f"user {user} has interacted with too many items to draw {n_negatives} negatives")
        chosen = np.empty(0, dtype=np.int64)
        while len(chosen) < n_negatives:
            draw = rng.integers(1, n_items + 1, size=2 * n_negatives + 8, dtype=np.int64)
            draw = np.concatenate([chosen, draw[~np.isin(draw, seen)]])
            _, first = np.unique(draw, return_index=True)
            chosen = draw[np.sort(first)]
        out[row] = chosen[:n_negatives]
    return out


def _eval_set(
    dataset: SequenceDataset, users: IntArray, target_pos: IntArray, n_negatives: int, rng: np.random.Generator
) -> EvalSet:
    starts = dataset.offsets[users]
    histories = build_histories(dataset.items, starts, target_pos, dataset.spec.history_len)
    negatives = sample_eval_negatives(dataset, users, n_negatives, rng)
    candidates = np.concatenate([dataset.items[target_pos][:, None], negatives], axis=1)
    labels = np.zeros(candidates.shape, dtype=np.float32)
    labels[:, 0] = 1.0
    return EvalSet(histories, candidates, labels)


def leave_one_out(
    dataset: SequenceDataset,
    *,
    n_eval_negatives: int = 99,
    n_train_negatives: int = 16,
    seed: int = 0,
    include_empty_history: bool = True,
    valid_user_fraction: float = 1.0,
) -> LeaveOneOutSplit:
    """Split ``dataset`` leave-one-out: last item = test, second-last = validation, the rest = training.

    Users with fewer than 3 items are used for training only. The negatives of each evaluation set come from
    their own seeded stream, so the same ``seed`` gives the same candidates in every process.

    Args:
        dataset: the sequences.
        n_eval_negatives: sampled negatives per evaluated user (99 in the standard protocol).
        n_train_negatives: negatives per training example, drawn fresh in every batch.
        seed: seed of the evaluation negatives.
        include_empty_history: also train on each user's first item with an empty history (teaches the
            model to score users it knows nothing about).
        valid_user_fraction: share of the evaluated users (seeded draw) whose second-last item is held out
            for validation. 1.0 is the classic protocol. Below 1.0 the other users also train on their
            second-last item: more (and the most recent) training data, validation stays clean because it
            only scores held-out items, and the test item of every user is still never trained on.
    """
    if not 0.0 < valid_user_fraction <= 1.0:
        raise ConfigError(f"valid_user_fraction must lie in (0, 1], got {valid_user_fraction}")
    lengths = dataset.lengths
    evaluated = np.flatnonzero(lengths >= 3)
    if len(evaluated) == 0:
        raise DataError(f"{dataset.name}: no user has the 3+ interactions leave-one-out needs")
    valid_rng, test_rng, user_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    validated = evaluated
    if valid_user_fraction < 1.0:
        n_valid = max(1, round(valid_user_fraction * len(evaluated)))
        validated = np.sort(user_rng.choice(evaluated, size=n_valid, replace=False))
    held_out = np.zeros(dataset.n_users, dtype=np.int64)
    held_out[evaluated] = 1
    held_out[validated] = 2
    # Training targets: positions [first, train_end) per user; train_end excludes the held-out items.
    train_end = dataset.offsets[1:] - held_out
    first = dataset.offsets[:-1] + (0 if include_empty_history else 1)
    counts = np.maximum(train_end - first, 0)
    user_of_example = np.repeat(np.arange(dataset.n_users), counts)
    positions = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + first[user_of_example]
    histories = build_histories(dataset.items, dataset.offsets[user_of_example], positions, dataset.spec.history_len)
    train = NextItemTrainSet(histories, dataset.items[positions], dataset.spec.n_items, n_train_negatives)

    last = dataset.offsets[1:] - 1
    valid = _eval_set(dataset, validated, last[validated] - 1, n_eval_negatives, valid_rng)
    test = _eval_set(dataset, evaluated, last[evaluated], n_eval_negatives, test_rng)
    return LeaveOneOutSplit(train=train, valid=valid, test=test)
