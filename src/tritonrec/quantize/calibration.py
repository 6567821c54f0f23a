"""Calibration rows from real training users, and the reader ONNX Runtime's calibrators pull them through.

The quantizers take any :class:`CalibrationFeeds` (rows that yield ONNX input feeds): the bundled model's
:class:`CalibrationSet` below, or :class:`FeedBatches` of a team's own model (its spec's calibration rows).

Activation ranges are only as good as the rows they are measured on: random or all-zero ids give the attention
and cross layers ranges no real user produces. Each calibration row is one real training example (a user's
history before one of their training items) with that item plus uniformly sampled catalogue items as
candidates, the same shape the evaluation protocol and serving use. Validation and test items are never
training targets, so calibration sees nothing the quality figures are measured on.

Legend: R = calibration rows, L = history length, C = candidates per row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from tritonrec.contract import CANDIDATES, HISTORY
from tritonrec.data.splits import FeatureBatch, NextItemTrainSet
from tritonrec.errors import ConfigError, DataError
from tritonrec.spec.rows import pad_alike

if TYPE_CHECKING:
    from onnxruntime.quantization import CalibrationDataReader

__all__ = ["CalibrationFeeds", "CalibrationSet", "FeedBatches", "calibration_reader", "calibration_set"]

IntArray = npt.NDArray[np.int64]
Feed = dict[str, npt.NDArray[Any]]


class CalibrationFeeds(Protocol):
    """Calibration rows as the quantizers read them: a row count and batches of named ONNX inputs."""

    def __len__(self) -> int: ...

    def feeds(self) -> list[Feed]:
        """The rows in batches of named inputs."""
        ...


@dataclass(frozen=True, slots=True)
class FeedBatches:
    """Calibration rows of any model: batches of ``{input name: [B, *dims]}`` (a spec's calibration rows)."""

    batches: tuple[Feed, ...]

    def __post_init__(self) -> None:
        if not self.batches or not all(self.batches):
            raise ConfigError("calibration needs at least one batch of named inputs")

    def __len__(self) -> int:
        return sum(len(next(iter(b.values()))) for b in self.batches)

    def feeds(self) -> list[Feed]:
        """The batches, in order."""
        return list(self.batches)

    def save(self, path: Path) -> Path:
        """Write every batch as one array per input to an ``.npz`` file (what a calibrator in another process reads).

        Batches whose per-row dims differ (a dynamic dim, a query's candidates) are padded with 0 to the widest.
        """
        np.savez(path, **{name: np.concatenate(pad_alike([b[name] for b in self.batches])) for name in self.batches[0]})
        return path


@dataclass(frozen=True, slots=True, kw_only=True)
class CalibrationSet:
    """Calibration rows.

    Attributes:
        histories: ``[R, L]`` real training histories.
        candidates: ``[R, C]`` the example's item first, then sampled items.
        batch_users: rows per calibration batch.
    """

    histories: IntArray
    candidates: IntArray
    batch_users: int = 64

    def __post_init__(self) -> None:
        if self.histories.ndim != 2 or self.candidates.ndim != 2 or len(self.histories) != len(self.candidates):
            raise ConfigError(
                f"calibration histories {self.histories.shape} and candidates {self.candidates.shape} must be "
                "2-D with the same number of rows"
            )
        if len(self.histories) == 0 or self.batch_users < 1:
            raise ConfigError("a calibration set needs at least one row and batch_users >= 1")

    def __len__(self) -> int:
        return len(self.histories)

    def batches(self) -> list[FeatureBatch]:
        """The rows in batches of ``batch_users``."""
        return [
            FeatureBatch(self.histories[lo : lo + self.batch_users], self.candidates[lo : lo + self.batch_users])
            for lo in range(0, len(self), self.batch_users)
        ]

    def feeds(self) -> list[Feed]:
        """The batches as ONNX input feeds (``history``, ``candidates``)."""
        return [{HISTORY: b.histories, CANDIDATES: b.candidates} for b in self.batches()]

    def save(self, path: Path) -> Path:
        """Write the rows to an ``.npz`` file (what a calibrator in another process reads)."""
        np.savez(path, **{HISTORY: self.histories, CANDIDATES: self.candidates})
        return path


def calibration_set(
    train: NextItemTrainSet, *, users: int = 512, candidates: int = 100, batch_users: int = 64, seed: int = 0
) -> CalibrationSet:
    """Draw ``users`` real training examples (seeded) as calibration rows.

    Args:
        train: the training examples of the dataset (histories and their next items).
        users: rows to draw (without replacement; all rows when fewer exist).
        candidates: candidates per row: the example's item plus ``candidates - 1`` uniformly sampled items.
        batch_users: rows per calibration batch.
        seed: seed of the draw.

    Raises:
        ConfigError: ``users`` or ``candidates`` < 1.
        DataError: the training set is empty.
    """
    if users < 1 or candidates < 1:
        raise ConfigError(f"calibration needs users >= 1 and candidates >= 1, got {users} and {candidates}")
    if len(train) == 0:
        raise DataError("the training set is empty: nothing to calibrate on")
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(train), size=min(users, len(train)), replace=False))
    targets = train.targets[rows].astype(np.int64)
    sampled = rng.integers(1, train.n_items + 1, size=(len(rows), candidates - 1), dtype=np.int64)
    return CalibrationSet(
        histories=np.ascontiguousarray(train.histories[rows], dtype=np.int64),
        candidates=np.concatenate([targets[:, None], sampled], axis=1),
        batch_users=batch_users,
    )


def calibration_reader(rows: CalibrationFeeds) -> CalibrationDataReader:
    """An ONNX Runtime ``CalibrationDataReader`` over ``rows`` (rewindable: entropy/percentile read twice)."""
    from onnxruntime.quantization import CalibrationDataReader

    class _Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self._feeds = rows.feeds()
            self._at = 0

        def get_next(self) -> Feed | None:
            if self._at >= len(self._feeds):
                return None
            self._at += 1
            return self._feeds[self._at - 1]

        def rewind(self) -> None:
            self._at = 0

    return _Reader()
