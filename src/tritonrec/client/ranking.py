"""RankingClient: rank a user's candidates on a Triton ranker over gRPC (synchronous; see ``aio`` for asyncio).

The request contract (model_repository/README.md): one request = one user, ``history`` int64 ``[1, L]`` and
``candidates`` int64 ``[1, N]``, answered with ``scores`` float32 ``[1, N]``. Every call has a deadline that
covers its retries and, on first use of a model, the read of its limits; only retryable failures (server
unavailable, queue full) are retried, with jittered exponential backoff, within the client's retry budget; bad
input is refused before anything is sent. Requests travel as raw bytes on one reused gRPC channel.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, TypeVar

import grpc
import numpy as np
import numpy.typing as npt
from tritonclient.grpc import service_pb2, service_pb2_grpc

from tritonrec.client.channel import open_stub
from tritonrec.client.core import ClientCore, as_dict, count_statistics, rpc_error
from tritonrec.client.features import FeatureLimits, Features, check_features, feature_request, row_chunks, scores_named
from tritonrec.client.options import ClientOptions
from tritonrec.client.request import ModelLimits, Ranking, candidate_chunks, prepare_user
from tritonrec.client.request import top_k as select_top_k
from tritonrec.client.wire import infer_request, scores_of
from tritonrec.contract import DEFAULT_MODEL
from tritonrec.errors import ClientError

__all__ = ["RankingClient"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]
T = TypeVar("T")


class RankingClient(ClientCore):
    """A synchronous, thread-safe gRPC client of one ranker model. Connects lazily, on the first call.

    Args:
        url: ``host:port`` of Triton's gRPC endpoint (or ``dns:///name:port``).
        model: model name in the repository (default :data:`tritonrec.contract.DEFAULT_MODEL`, ``ranker_cpu``).
        version: model version ('' = the server's policy, i.e. the latest).
        options: deadlines, retries, retry budget, channel settings, TLS and headers.
        limits: the model's limits, given instead of read from its config (for a server whose model-config API
            is restricted); a mapping gives them per model name.
    """

    def __init__(
        self,
        url: str,
        *,
        model: str = DEFAULT_MODEL,
        version: str = "",
        options: ClientOptions | None = None,
        limits: ModelLimits | Mapping[str, ModelLimits] | None = None,
    ) -> None:
        super().__init__(url, model=model, version=version, options=options, limits=limits)
        self._channel: grpc.Channel | None = None
        self._stub_: service_pb2_grpc.GRPCInferenceServiceStub | None = None
        self._lock = threading.Lock()
        self._limit_locks: dict[str, threading.Lock] = {}

    # -- connection and plain RPCs ----------------------------------------------------------------------------

    @property
    def _stub(self) -> service_pb2_grpc.GRPCInferenceServiceStub:
        with self._lock:
            if self._stub_ is None:
                self._channel, self._stub_ = open_stub(self.url, self.options)
            return self._stub_

    def _rpc(self, what: str, method: str, request: Any, timeout_s: float | None = None) -> Any:
        try:
            return getattr(self._stub, method)(
                request, timeout=timeout_s or self.options.timeout_s, metadata=self._metadata
            )
        except grpc.RpcError as e:
            raise rpc_error(e, what) from e

    def is_server_ready(self) -> bool:
        """True when the server answers and is ready; False when it does not answer."""
        try:
            return bool(self._rpc("server ready", "ServerReady", service_pb2.ServerReadyRequest()).ready)
        except ClientError:
            return False

    def is_model_ready(self, model: str | None = None) -> bool:
        """True when ``model`` (default: this client's) is loaded and ready."""
        request = service_pb2.ModelReadyRequest(name=model or self.model, version=self.version)
        try:
            return bool(self._rpc("model ready", "ModelReady", request).ready)
        except ClientError:
            return False

    def server_version(self) -> str:
        """The server's version string (Triton's ``ServerMetadata.version``, e.g. ``2.51.0``)."""
        return str(self._rpc("server metadata", "ServerMetadata", service_pb2.ServerMetadataRequest()).version)

    def model_metadata(self, model: str | None = None) -> dict[str, Any]:
        """Triton's metadata of ``model``: versions, platform, inputs and outputs."""
        name = model or self.model
        request = service_pb2.ModelMetadataRequest(name=name, version=self.version)
        return as_dict(self._rpc(name, "ModelMetadata", request))

    def model_config(self, model: str | None = None) -> dict[str, Any]:
        """The served model's configuration as Triton returns it (JSON form of ``ModelConfig``)."""
        name = model or self.model
        return as_dict(self._rpc(name, "ModelConfig", self._config_request(name)).config)

    def raw_statistics(self, model: str | None = None) -> dict[str, Any]:
        """Triton's full statistics answer for the model (JSON form): per-stage times, per-batch-size counts."""
        name = model or self.model
        return as_dict(self._rpc(name, "ModelStatistics", self._statistics_request(name)))

    def statistics(self, model: str | None = None) -> dict[str, int]:
        """Triton's counters for the model: ``inference_count`` (users scored), ``execution_count`` (batches)."""
        return count_statistics(self.raw_statistics(model))

    # -- retries, limits and ranking --------------------------------------------------------------------------

    def _retrying(self, what: str, attempt_once: Callable[[float], T], deadline: float) -> T:
        """Run ``attempt_once(deadline)`` until it succeeds, no retry is allowed, or the deadline passes."""
        for attempt in range(self.options.retry.max_attempts):
            if time.monotonic() >= deadline:
                break
            try:
                return attempt_once(deadline)
            except ClientError as e:
                wait = self._retry_wait(e, attempt, deadline)
            time.sleep(wait)
        raise self._deadline_passed(what)

    def limits(self, model: str | None = None, *, timeout_s: float | None = None) -> ModelLimits:
        """The model's limits: given at construction, or read once from its config (one read for all threads)."""
        name = model or self.model
        known = self._limits.get(name)
        if known is not None:
            return known
        return self._read_limits(name, self._deadline(timeout_s))

    def _read_limits(self, name: str, deadline: float) -> ModelLimits:
        with self._lock:
            lock = self._limit_locks.setdefault(name, threading.Lock())
        with lock:  # one reader per model; the others wait for its answer
            if name not in self._limits:

                def read(deadline: float) -> ModelLimits:
                    remaining = deadline - time.monotonic()
                    return self._limits_from(self._rpc(name, "ModelConfig", self._config_request(name), remaining))

                self._limits[name] = self._retrying(name, read, deadline)
            return self._limits[name]

    def _infer_once(self, model: str, history: IntArray, chunk: IntArray, deadline: float) -> FloatArray:
        request = infer_request(model, self.version, history, chunk, timeout_us=self._timeout_us(deadline))
        self._count_request()
        response = self._rpc(model, "ModelInfer", request, deadline - time.monotonic())
        scores: FloatArray = scores_of(response, model)[0]
        return scores

    def _attempt(self, model: str, history: IntArray, chunk: IntArray) -> Callable[[float], FloatArray]:
        return lambda deadline: self._infer_once(model, history, chunk, deadline)

    def rank(
        self,
        history: npt.ArrayLike,
        candidates: npt.ArrayLike,
        *,
        top_k: int | None = None,
        model: str | None = None,
        timeout_s: float | None = None,
    ) -> Ranking:
        """Score ``candidates`` for the user with ``history``; all of them in input order, or the ``top_k`` best.

        Args:
            history: the user's item ids, oldest first (0 = padding, dropped; only the last ``L`` are sent).
            candidates: item ids to rank; longer lists than the model takes are split and merged.
            top_k: return only the best ``k`` (highest score first).
            model: another model than the client's default.
            timeout_s: deadline of this call, retries and the first read of the limits included (default:
                ``options.timeout_s``).

        Raises:
            InvalidRequestError: bad ids (checked before sending) or INVALID_ARGUMENT from the server.
            ServerUnavailableError, ServerOverloadedError: still failing when retries, the retry budget or the
                deadline ran out.
            InferenceTimeoutError: the deadline passed.
            ModelNotReadyError, PermissionDeniedError, TransportSecurityError, ClientError: see
                ``tritonrec.errors``.
        """
        name = model or self.model
        deadline = self._deadline(timeout_s)
        limits = self._limits.get(name) or self._read_limits(name, deadline)
        h, c = prepare_user(history, candidates, limits)
        parts: list[FloatArray] = []
        for chunk in candidate_chunks(c, limits.max_candidates):
            self._budget.record_call()
            parts.append(self._retrying(name, self._attempt(name, h, chunk), deadline))
        return select_top_k(c, np.concatenate(parts) if len(parts) > 1 else parts[0], top_k)

    def score_rows(self, features: Features, *, model: str | None = None, timeout_s: float | None = None) -> FloatArray:
        """Score one query's candidate rows on a rows-layout model (a model spec's): one score per row, in order.

        Args:
            features: ``{input name: [N, *dims]}`` as the served config states them (a scalar per row may be
                ``[N]``); more rows than the model takes per request are sent as several requests.
            model: another model than the client's default.
            timeout_s: deadline of this call, retries and the first read of the model's config included.

        Raises:
            InvalidRequestError: a missing or unknown input, another dtype or row shape, unequal row counts
                (checked before sending), or INVALID_ARGUMENT from the server (e.g. NaN in a float input).
            ServerUnavailableError, ServerOverloadedError, InferenceTimeoutError, ModelNotReadyError, ClientError:
                as for :meth:`rank`.
        """
        name = model or self.model
        deadline = self._deadline(timeout_s)
        limits = self._feature_limits.get(name) or self._read_feature_limits(name, deadline)
        parts = []
        for chunk in row_chunks(check_features(features, limits, name), limits.max_rows):
            self._budget.record_call()
            parts.append(self._retrying(name, self._rows_attempt(name, chunk, limits.output), deadline))
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def _read_feature_limits(self, name: str, deadline: float) -> FeatureLimits:
        def read(deadline: float) -> FeatureLimits:
            remaining = deadline - time.monotonic()
            return self._feature_limits_from(self._rpc(name, "ModelConfig", self._config_request(name), remaining))

        self._feature_limits[name] = self._retrying(name, read, deadline)
        return self._feature_limits[name]

    def _rows_attempt(self, model: str, chunk: dict[str, Any], output: str) -> Callable[[float], FloatArray]:
        def once(deadline: float) -> FloatArray:
            request = feature_request(model, self.version, chunk, output, timeout_us=self._timeout_us(deadline))
            self._count_request()
            return scores_named(self._rpc(model, "ModelInfer", request, deadline - time.monotonic()), output, model)

        return once

    def rank_many(
        self,
        histories: Sequence[npt.ArrayLike],
        candidates: Sequence[npt.ArrayLike],
        *,
        top_k: int | None = None,
        model: str | None = None,
        timeout_s: float | None = None,
        concurrency: int = 16,
    ) -> list[Ranking]:
        """Rank many users, one request each, ``concurrency`` in flight (so Triton's batcher can join them).

        Raises:
            ClientError: the first user whose ranking failed, in input order.
        """
        self._check_pairs(histories, candidates)
        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            futures = [
                pool.submit(self.rank, h, c, top_k=top_k, model=model, timeout_s=timeout_s)
                for h, c in zip(histories, candidates, strict=True)
            ]
            return [f.result() for f in futures]

    def close(self) -> None:
        """Close the gRPC channel (a later call reconnects)."""
        with self._lock:
            channel, self._channel, self._stub_ = self._channel, None, None
        if channel is not None:
            channel.close()

    def __enter__(self) -> RankingClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
