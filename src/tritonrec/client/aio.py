"""AsyncRankingClient: the asyncio twin of :class:`~tritonrec.client.ranking.RankingClient`.

Same contract, checks, deadlines, retries and errors; built on ``tritonclient.grpc.aio``. Use it inside an
event loop (``async with AsyncRankingClient(url) as client: await client.rank(...)``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt
import tritonclient.grpc.aio as grpcaio
from tritonclient.utils import InferenceServerException

from tritonrec.client.core import ClientCore, count_statistics, infer_inputs
from tritonrec.client.options import ClientOptions
from tritonrec.client.request import ModelLimits, Ranking, candidate_chunks, prepare_user
from tritonrec.client.request import top_k as select_top_k
from tritonrec.client.status import error_for
from tritonrec.contract import CANDIDATES, DEFAULT_MODEL, HISTORY, SCORES
from tritonrec.errors import ClientError

__all__ = ["AsyncRankingClient"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]


class AsyncRankingClient(ClientCore):
    """An asyncio gRPC client of one ranker model; connects lazily. Arguments as for ``RankingClient``."""

    def __init__(
        self, url: str, *, model: str = DEFAULT_MODEL, version: str = "", options: ClientOptions | None = None
    ) -> None:
        super().__init__(url, model=model, version=version, options=options)
        self._client: grpcaio.InferenceServerClient | None = None

    @property
    def _grpc(self) -> grpcaio.InferenceServerClient:
        if self._client is None:
            self._client = grpcaio.InferenceServerClient(self.url, **self.options.client_kwargs())
        return self._client

    async def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, headers=self._headers(), client_timeout=self.options.timeout_s, **kwargs)
        except InferenceServerException as e:
            raise error_for(e.status(), e.message() or str(e), context=what) from e

    async def is_server_ready(self) -> bool:
        """True when the server answers and is ready."""
        try:
            return bool(await self._call("server ready", self._grpc.is_server_ready))
        except ClientError:
            return False

    async def is_model_ready(self, model: str | None = None) -> bool:
        """True when ``model`` (default: this client's) is loaded and ready."""
        try:
            return bool(await self._call("model ready", self._grpc.is_model_ready, model or self.model, self.version))
        except ClientError:
            return False

    async def limits(self, model: str | None = None) -> ModelLimits:
        """The served model's limits, read once from its config."""
        name = model or self.model
        if name not in self._limits:
            config = await self._call(name, self._grpc.get_model_config, name, self.version, as_json=True)
            self._limits[name] = ModelLimits.from_config(config.get("config", config))
        return self._limits[name]

    async def statistics(self, model: str | None = None) -> dict[str, int]:
        """Triton's ``inference_count`` and ``execution_count`` for the model."""
        name = model or self.model
        return count_statistics(
            await self._call(name, self._grpc.get_inference_statistics, name, self.version, as_json=True)
        )

    async def _infer_once(self, model: str, history: IntArray, chunk: IntArray, deadline: float) -> FloatArray:
        inputs = infer_inputs({HISTORY: history, CANDIDATES: chunk})
        self._requests += 1
        try:
            result = await self._grpc.infer(
                model,
                inputs,
                model_version=self.version,
                client_timeout=deadline - time.monotonic(),
                headers=self._headers(),
            )
        except InferenceServerException as e:
            raise error_for(e.status(), e.message() or str(e), context=model) from e
        scores: FloatArray = np.asarray(result.as_numpy(SCORES), dtype=np.float32)[0]
        return scores

    async def _infer(self, model: str, history: IntArray, chunk: IntArray, deadline: float) -> FloatArray:
        for attempt in range(self.options.retry.max_attempts):
            if time.monotonic() >= deadline:
                break
            try:
                return await self._infer_once(model, history, chunk, deadline)
            except ClientError as e:
                wait = self._retry_wait(e, attempt, deadline)
            await asyncio.sleep(wait)
        raise self._deadline_passed(model)

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
        limits = await self.limits(name)
        h, c = prepare_user(history, candidates, limits)
        chunks = candidate_chunks(c, limits.max_candidates)
        parts = await asyncio.gather(*(self._infer(name, h, chunk, deadline) for chunk in chunks))
        return select_top_k(c, np.concatenate(parts), top_k)

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
            ClientError: the first user whose ranking failed (in input order).
        """
        self._check_pairs(histories, candidates)
        window = asyncio.Semaphore(max(1, concurrency))

        async def one(h: npt.ArrayLike, c: npt.ArrayLike) -> Ranking:
            async with window:
                return await self.rank(h, c, top_k=top_k, model=model, timeout_s=timeout_s)

        return list(await asyncio.gather(*(one(h, c) for h, c in zip(histories, candidates, strict=True))))

    async def close(self) -> None:
        """Close the gRPC channel (a later call reconnects)."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def __aenter__(self) -> AsyncRankingClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()
