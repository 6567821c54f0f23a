"""Request building for the ranking contract (model_repository/README.md): checks, numpy layout, top-K.

One user per request: ``history`` int64 ``[1, L]`` (most recent items, oldest first, padding dropped) and
``candidates`` int64 ``[1, N]``. Everything here is vectorised numpy; nothing loops over ids in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from tritonrec.contract import HISTORY, MAX_CANDIDATES_PARAM, MAX_HISTORY_PARAM
from tritonrec.errors import ClientError, InvalidRequestError

__all__ = ["ModelLimits", "Ranking", "candidate_chunks", "prepare_user", "top_k"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class ModelLimits:
    """What the served model accepts, read from the ``max_history``/``max_candidates`` parameters of its config.

    Attributes:
        max_history: ``L``; longer histories are cut to their most recent ``L`` items (what the model reads).
        max_candidates: most candidates per request; longer lists are split into several requests.
        pad_history: pad every history to ``L`` (native GPU backends batch only equal shapes).
    """

    max_history: int
    max_candidates: int
    pad_history: bool = False

    def __post_init__(self) -> None:
        if self.max_history < 0 or self.max_candidates < 1:
            raise ClientError(f"model limits need max_history >= 0 and max_candidates >= 1, got {self}")

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ModelLimits:
        """Read the limits from a model config as Triton returns it in JSON.

        Raises:
            ClientError: the config states no limits (not a repository written by ``tritonrec repo build``).
        """
        params = {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}
        try:
            max_history, max_candidates = int(params[MAX_HISTORY_PARAM]), int(params[MAX_CANDIDATES_PARAM])
        except (KeyError, ValueError):
            raise ClientError(
                f"model {config.get('name', '?')!r} states no integer {MAX_HISTORY_PARAM}/{MAX_CANDIDATES_PARAM} "
                "parameters in its config: build its repository with `tritonrec repo build`"
            ) from None
        # a history input that takes ragged batches may be sent at its own length; otherwise pad it to L
        ragged = any(i.get("name") == HISTORY and i.get("allow_ragged_batch") for i in config.get("input", []))
        return cls(max_history=max_history, max_candidates=max_candidates, pad_history=not ragged)


@dataclass(frozen=True, slots=True)
class Ranking:
    """One user's answer: ``items`` and their ``scores`` (best first when top-K was asked, else input order)."""

    items: IntArray
    scores: FloatArray


def _ids(name: str, values: npt.ArrayLike) -> IntArray:
    arr = values if isinstance(values, np.ndarray) else np.asarray(values)
    if arr.ndim != 1:
        raise InvalidRequestError(f"{name} must be a 1-D sequence of item ids, got shape {arr.shape}")
    if arr.dtype != np.int64:  # the common int64 case skips the dtype checks and the copy (the hot path)
        if arr.size and (arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer)):
            raise InvalidRequestError(f"{name} must hold integer item ids, got dtype {arr.dtype}")
        arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        negative = np.flatnonzero(arr < 0)
        first = int(negative[0])
        raise InvalidRequestError(
            f"{name} has {negative.size} negative id(s), first {int(arr[first])} at position {first}"
        )
    return arr


def prepare_user(history: npt.ArrayLike, candidates: npt.ArrayLike, limits: ModelLimits) -> tuple[IntArray, IntArray]:
    """Check one user's ids and lay them out as ``[1, L]`` and ``[N]``.

    Raises:
        InvalidRequestError: not 1-D integer ids, negative ids, or no candidates.
    """
    h = _ids("history", history)
    c = _ids("candidates", candidates)
    if c.size == 0:
        raise InvalidRequestError("candidates is empty: send at least one candidate id")
    h = h[h != 0][-limits.max_history :] if limits.max_history else h[:0]
    if limits.pad_history and h.size < limits.max_history:
        h = np.concatenate([np.zeros(limits.max_history - h.size, dtype=np.int64), h])
    return h[None, :], c


def candidate_chunks(candidates: IntArray, max_candidates: int) -> list[IntArray]:
    """Split ``[N]`` candidates into ``[1, n <= max_candidates]`` request tensors."""
    return [candidates[lo : lo + max_candidates][None, :] for lo in range(0, candidates.size, max_candidates)]


def top_k(candidates: IntArray, scores: FloatArray, k: int | None) -> Ranking:
    """All candidates in input order (``k`` None) or the ``k`` best, highest score first (ties: input order)."""
    if k is None:
        return Ranking(candidates, scores)
    if k < 1:
        raise InvalidRequestError(f"top_k must be >= 1, got {k}")
    order = np.argsort(-scores, kind="stable")[:k]
    return Ranking(candidates[order], scores[order])
