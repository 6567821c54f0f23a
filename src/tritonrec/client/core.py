"""What the sync and asyncio clients share: settings, counters, the retry decision, the limits, Triton's RPCs.

Every call runs against one deadline (``timeout_s``) that covers everything it does: reading the model's limits
on first use, each attempt, each backoff. A failure is retried only when it is retryable
(:attr:`~tritonrec.errors.ClientError.retryable`), the call's :class:`~tritonrec.client.options.RetryPolicy`
allows another attempt, and the next wait ends before the deadline. A retry after an overload (queue full or
queue timeout) also needs room in the client's retry budget: those retries add load to a server that is already
refusing it, while retrying a server that is down or restarting costs it nothing.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import grpc
import numpy as np
import numpy.typing as npt
import tritonclient.grpc as grpcclient
from google.protobuf import json_format
from tritonclient.grpc import service_pb2

from tritonrec.client.budget import RetryAccount
from tritonrec.client.features import FeatureLimits
from tritonrec.client.options import ClientOptions
from tritonrec.client.request import ModelLimits
from tritonrec.client.status import error_for
from tritonrec.contract import DEFAULT_MODEL
from tritonrec.errors import ClientError, InferenceTimeoutError, ServerOverloadedError

__all__ = ["ClientCore", "as_dict", "count_statistics", "infer_inputs", "rpc_error"]

IntArray = npt.NDArray[np.int64]


def infer_inputs(arrays: dict[str, IntArray], datatype: str = "INT64") -> list[grpcclient.InferInput]:
    """Wrap named arrays as tritonclient gRPC inputs (for tools that use tritonclient's own client directly)."""
    inputs = []
    for name, arr in arrays.items():
        tensor = grpcclient.InferInput(name, list(arr.shape), datatype)
        tensor.set_data_from_numpy(np.ascontiguousarray(arr))
        inputs.append(tensor)
    return inputs


def as_dict(message: Any) -> dict[str, Any]:
    """A protobuf answer as the JSON-style dict tritonclient's ``as_json=True`` gives (proto field names)."""
    return dict(json_format.MessageToDict(message, preserving_proto_field_name=True))


def count_statistics(stats: dict[str, Any]) -> dict[str, int]:
    """``inference_count`` and ``execution_count`` summed over the entries of a statistics answer (JSON)."""
    counts = {"inference_count": 0, "execution_count": 0}
    for entry in stats.get("model_stats", []):
        for key in counts:
            counts[key] += int(entry.get(key, 0))
    return counts


def rpc_error(error: grpc.RpcError, context: str) -> ClientError:
    """The tritonrec error for a failed gRPC call (sync ``grpc.RpcError`` or ``grpc.aio.AioRpcError``)."""
    code = error.code() if hasattr(error, "code") else None
    details = error.details() if hasattr(error, "details") else None
    name = code.name if isinstance(code, grpc.StatusCode) else None
    return error_for(name, details or str(error), context=context)


class ClientCore:
    """Settings and bookkeeping of a ranking client (see ``RankingClient`` for the arguments)."""

    def __init__(
        self,
        url: str,
        *,
        model: str = DEFAULT_MODEL,
        version: str = "",
        options: ClientOptions | None = None,
        limits: ModelLimits | Mapping[str, ModelLimits] | None = None,
    ) -> None:
        self.url = url
        self.model = model
        self.version = version
        self.options = options or ClientOptions()
        self._limits: dict[str, ModelLimits] = (
            {model: limits} if isinstance(limits, ModelLimits) else dict(limits or {})
        )
        self._feature_limits: dict[str, FeatureLimits] = {}
        self._rng = random.Random()
        self._counter_lock = threading.Lock()
        self._requests = 0
        self._retries = 0
        self._budget = RetryAccount(self.options.retry_budget)
        self._metadata = tuple((k.lower(), v) for k, v in self.options.headers.items()) or None

    @property
    def requests_sent(self) -> int:
        """Inference requests sent so far, retries included."""
        return self._requests

    @property
    def retries(self) -> int:
        """Requests sent again after a retryable failure."""
        return self._retries

    @property
    def retries_refused(self) -> int:
        """Retries the client-wide retry budget refused (the error was raised instead)."""
        return self._budget.refused

    def _count_request(self) -> None:
        with self._counter_lock:
            self._requests += 1

    def _deadline(self, timeout_s: float | None) -> float:
        return time.monotonic() + (timeout_s or self.options.timeout_s)

    def _timeout_us(self, deadline: float) -> int | None:
        """Triton's per-request timeout for a call that must end by ``deadline`` (None when not sent)."""
        if not self.options.server_timeout:
            return None
        return max(1, int((deadline - time.monotonic()) * 1e6))

    def _retry_wait(self, error: ClientError, attempt: int, deadline: float) -> float:
        """Seconds to wait before retrying after ``error``; re-raises it when no retry is allowed."""
        wait = self.options.retry.backoff_s(attempt, self._rng)
        last = attempt + 1 >= self.options.retry.max_attempts
        if not error.retryable or last or time.monotonic() + wait >= deadline:
            raise error
        if isinstance(error, ServerOverloadedError) and not self._budget.try_retry():
            raise error  # a retry would add load to a server that already refuses it
        with self._counter_lock:
            self._retries += 1
        return wait

    @staticmethod
    def _deadline_passed(model: str) -> InferenceTimeoutError:
        return InferenceTimeoutError(f"{model}: the deadline passed before an answer", status="DEADLINE_EXCEEDED")

    @staticmethod
    def _check_pairs(histories: Sequence[Any], candidates: Sequence[Any]) -> None:
        if len(histories) != len(candidates):
            raise ClientError(f"{len(histories)} histories but {len(candidates)} candidate lists")

    def _config_request(self, model: str) -> service_pb2.ModelConfigRequest:
        return service_pb2.ModelConfigRequest(name=model, version=self.version)

    def _statistics_request(self, model: str) -> service_pb2.ModelStatisticsRequest:
        return service_pb2.ModelStatisticsRequest(name=model, version=self.version)

    @staticmethod
    def _limits_from(response: service_pb2.ModelConfigResponse) -> ModelLimits:
        return ModelLimits.from_config(as_dict(response.config))

    @staticmethod
    def _feature_limits_from(response: service_pb2.ModelConfigResponse) -> FeatureLimits:
        return FeatureLimits.from_config(as_dict(response.config))
