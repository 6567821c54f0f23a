"""AsyncRankingClient: the asyncio twin of ``RankingClient``, native ``grpc.aio`` on one reused channel.

Same contract, deadlines, retries, retry budget and errors as the sync client. The first calls that need a
model's limits share one read of its config. ``rank_many`` waits for every user and raises the first failure in
input order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import grpc
import grpc.aio
import numpy as np
import numpy.typing as npt
from tritonclient.grpc import service_pb2, service_pb2_grpc

from tritonrec.client.channel import open_aio_stub
from tritonrec.client.core import ClientCore, as_dict, count_statistics, rpc_error
from tritonrec.client.features import FeatureLimits, Features, check_features, feature_request, row_chunks, scores_named
from tritonrec.client.options import ClientOptions
from tritonrec.client.request import ModelLimits, Ranking, candidate_chunks, prepare_user
from tritonrec.client.request import top_k as select_top_k
from tritonrec.client.wire import infer_request, scores_of
from tritonrec.contract import DEFAULT_MODEL
from tritonrec.errors import ClientError

__all__ = ["AsyncRankingClient"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]
T = TypeVar("T")


class AsyncRankingClient(ClientCore):
    """An asyncio gRPC client of one ranker model; connects lazily. Arguments as for ``RankingClient``."""

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
        self._channel: grpc.aio.Channel | None = None
        self._stub_: service_pb2_grpc.GRPCInferenceServiceStub | None = None
        self._limit_reads: dict[str, asyncio.Task[ModelLimits]] = {}

    @property
    def _stub(self) -> service_pb2_grpc.GRPCInferenceServiceStub:
        if self._stub_ is None:
            self._channel, self._stub_ = open_aio_stub(self.url, self.options)
        return self._stub_

    async def _rpc(self, what: str, method: str, request: Any, timeout_s: float | None = None) -> Any:
        try:
            return await getattr(self._stub, method)(
                request, timeout=timeout_s or self.options.timeout_s, metadata=self._metadata
            )
        except grpc.aio.AioRpcError as e:
            raise rpc_error(e, what) from e

    async def is_server_ready(self) -> bool:
        """True when the server answers and is ready."""
        try:
            return bool((await self._rpc("server ready", "ServerReady", service_pb2.ServerReadyRequest())).ready)
        except ClientError:
            return False

    async def is_model_ready(self, model: str | None = None) -> bool:
        """True when ``model`` (default: this client's) is loaded and ready."""
        request = service_pb2.ModelReadyRequest(name=model or self.model, version=self.version)
        try:
            return bool((await self._rpc("model ready", "ModelReady", request)).ready)
        except ClientError:
            return False

    async def statistics(self, model: str | None = None) -> dict[str, int]:
        """Triton's ``inference_count`` and ``execution_count`` for the model."""
        name = model or self.model
        return count_statistics(as_dict(await self._rpc(name, "ModelStatistics", self._statistics_request(name))))

    async def _retrying(self, what: str, attempt_once: Callable[[float], Awaitable[T]], deadline: float) -> T:
        for attempt in range(self.options.retry.max_attempts):
            if time.monotonic() >= deadline:
                break
            try:
                return await attempt_once(deadline)
            except ClientError as e:
                wait = self._retry_wait(e, attempt, deadline)
            await asyncio.sleep(wait)
        raise self._deadline_passed(what)

    async def limits(self, model: str | None = None, *, timeout_s: float | None = None) -> ModelLimits:
        """The model's limits: given at construction, or read once from its config (concurrent callers share it)."""
        name = model or self.model
        known = self._limits.get(name)
        return known if known is not None else await self._read_limits(name, self._deadline(timeout_s))

    async def _read_limits(self, name: str, deadline: float) -> ModelLimits:
        task = self._limit_reads.get(name)
        if task is None or (task.done() and task.exception() is not None):

            async def read(deadline: float) -> ModelLimits:
                response = await self._rpc(name, "ModelConfig", self._config_request(name), deadline - time.monotonic())
                return self._limits_from(response)

            task = asyncio.ensure_future(self._retrying(name, read, deadline))
            self._limit_reads[name] = task
        limits = await asyncio.shield(task)
        self._limits[name] = limits
        return limits

    async def _infer_once(self, model: str, history: IntArray, chunk: IntArray, deadline: float) -> FloatArray:
        request = infer_request(model, self.version, history, chunk, timeout_us=self._timeout_us(deadline))
        self._count_request()
        response = await self._rpc(model, "ModelInfer", request, deadline - time.monotonic())
        scores: FloatArray = scores_of(response, model)[0]
        return scores

    def _attempt(self, model: str, history: IntArray, chunk: IntArray) -> Callable[[float], Awaitable[FloatArray]]:
        return lambda deadline: self._infer_once(model, history, chunk, deadline)

    async def rank(
        self,
        history: npt.ArrayLike,
        candidates: npt.ArrayLike,
        *,
        top_k: int | None = None,
        model: str | None = None,
        timeout_s: float | None = None,
    ) -> Ranking:
        """Score ``candidates`` for one user; see ``RankingClient.rank``."""
        name = model or self.model
        deadline = self._deadline(timeout_s)
        limits = self._limits.get(name) or await self._read_limits(name, deadline)
        h, c = prepare_user(history, candidates, limits)
        chunks = candidate_chunks(c, limits.max_candidates)
        for _ in chunks:
            self._budget.record_call()
        if len(chunks) == 1:
            scores = await self._retrying(name, self._attempt(name, h, chunks[0]), deadline)
        else:
            parts = await asyncio.gather(*(self._retrying(name, self._attempt(name, h, ch), deadline) for ch in chunks))
            scores = np.concatenate(parts)
        return select_top_k(c, scores, top_k)

    async def score_rows(
        self, features: Features, *, model: str | None = None, timeout_s: float | None = None
    ) -> FloatArray:
        """Score one query's candidate rows on a rows-layout model; see ``RankingClient.score_rows``."""
        name = model or self.model
        deadline = self._deadline(timeout_s)
        limits = self._feature_limits.get(name) or await self._read_feature_limits(name, deadline)
        chunks = row_chunks(check_features(features, limits, name), limits.max_rows)
        for _ in chunks:
            self._budget.record_call()
        parts = await asyncio.gather(
            *(self._retrying(name, self._rows_attempt(name, chunk, limits.output), deadline) for chunk in chunks)
        )
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    async def _read_feature_limits(self, name: str, deadline: float) -> FeatureLimits:
        async def read(deadline: float) -> FeatureLimits:
            response = await self._rpc(name, "ModelConfig", self._config_request(name), deadline - time.monotonic())
            return self._feature_limits_from(response)

        self._feature_limits[name] = await self._retrying(name, read, deadline)
        return self._feature_limits[name]

    def _rows_attempt(self, model: str, chunk: dict[str, Any], output: str) -> Callable[[float], Awaitable[FloatArray]]:
        async def once(deadline: float) -> FloatArray:
            request = feature_request(model, self.version, chunk, output, timeout_us=self._timeout_us(deadline))
            self._count_request()
            response = await self._rpc(model, "ModelInfer", request, deadline - time.monotonic())
            return scores_named(response, output, model)

        return once

    async def rank_many(
        self,
        histories: Sequence[npt.ArrayLike],
        candidates: Sequence[npt.ArrayLike],
        *,
        top_k: int | None = None,
        model: str | None = None,
        timeout_s: float | None = None,
        concurrency: int = 32,
    ) -> list[Ranking]:
        """Rank many users, one request each, at most ``concurrency`` in flight.

        Raises:
            ClientError: the first user whose ranking failed, in input order (after every user has finished).
        """
        self._check_pairs(histories, candidates)
        window = asyncio.Semaphore(max(1, concurrency))

        async def one(h: npt.ArrayLike, c: npt.ArrayLike) -> Ranking:
            async with window:
                return await self.rank(h, c, top_k=top_k, model=model, timeout_s=timeout_s)

        results = await asyncio.gather(
            *(one(h, c) for h, c in zip(histories, candidates, strict=True)), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return [r for r in results if isinstance(r, Ranking)]

    async def close(self) -> None:
        """Close the gRPC channel (a later call reconnects)."""
        channel, self._channel, self._stub_ = self._channel, None, None
        self._limit_reads.clear()
        if channel is not None:
            await channel.close()

    async def __aenter__(self) -> AsyncRankingClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()
