"""What the sync and asyncio clients share: settings, counters, the retry decision and request tensors."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import tritonclient.grpc as grpcclient

from tritonrec.client.options import ClientOptions
from tritonrec.client.request import ModelLimits
from tritonrec.contract import DEFAULT_MODEL
from tritonrec.errors import ClientError, InferenceTimeoutError

__all__ = ["ClientCore", "count_statistics", "infer_inputs"]

IntArray = npt.NDArray[np.int64]


def infer_inputs(arrays: dict[str, IntArray], datatype: str = "INT64") -> list[grpcclient.InferInput]:
    """Wrap named arrays as tritonclient gRPC inputs (raw binary contents; the aio client takes the same)."""
    inputs = []
    for name, arr in arrays.items():
        tensor = grpcclient.InferInput(name, list(arr.shape), datatype)
        tensor.set_data_from_numpy(np.ascontiguousarray(arr))
        inputs.append(tensor)
    return inputs


def count_statistics(stats: dict[str, Any]) -> dict[str, int]:
    """``inference_count`` and ``execution_count`` summed over the entries of a statistics answer (JSON)."""
    counts = {"inference_count": 0, "execution_count": 0}
    for entry in stats.get("model_stats", []):
        for key in counts:
            counts[key] += int(entry.get(key, 0))
    return counts


class ClientCore:
    """Settings and bookkeeping of a ranking client (see ``RankingClient`` for the arguments)."""

    def __init__(
        self, url: str, *, model: str = DEFAULT_MODEL, version: str = "", options: ClientOptions | None = None
    ) -> None:
        self.url = url
        self.model = model
        self.version = version
        self.options = options or ClientOptions()
        self._limits: dict[str, ModelLimits] = {}
        self._rng = random.Random()
        self._requests = 0
        self._retries = 0

    @property
    def requests_sent(self) -> int:
        """Inference requests sent so far, retries included."""
        return self._requests

    @property
    def retries(self) -> int:
        """Requests sent again after a retryable failure."""
        return self._retries

    def _headers(self) -> dict[str, str] | None:
        return dict(self.options.headers) or None

    def _deadline(self, timeout_s: float | None) -> float:
        return time.monotonic() + (timeout_s or self.options.timeout_s)

    def _retry_wait(self, error: ClientError, attempt: int, deadline: float) -> float:
        """Seconds to wait before retrying after ``error``; re-raises it when no retry is allowed."""
        wait = self.options.retry.backoff_s(attempt, self._rng)
        last = attempt + 1 >= self.options.retry.max_attempts
        if not error.retryable or last or time.monotonic() + wait >= deadline:
            raise error
        self._retries += 1
        return wait

    @staticmethod
    def _deadline_passed(model: str) -> InferenceTimeoutError:
        return InferenceTimeoutError(f"{model}: the deadline passed before an answer", status="DEADLINE_EXCEEDED")

    @staticmethod
    def _check_pairs(histories: Sequence[Any], candidates: Sequence[Any]) -> None:
        if len(histories) != len(candidates):
            raise ClientError(f"{len(histories)} histories but {len(candidates)} candidate lists")
