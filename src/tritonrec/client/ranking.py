"""RankingClient: rank a user's candidates on a Triton ranker over gRPC (synchronous; see ``aio`` for asyncio).

The request contract (model_repository/README.md): one request = one user, ``history`` int64 ``[1, L]`` and
``candidates`` int64 ``[1, N]``, answered with ``scores`` float32 ``[1, N]``. Every call has a deadline that
covers its retries; only retryable failures (server unavailable, queue full) are retried, with jittered
exponential backoff; bad input is refused before anything is sent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from tritonrec.client.core import ClientCore, count_statistics, infer_inputs
from tritonrec.client.options import ClientOptions
from tritonrec.client.request import ModelLimits, Ranking, candidate_chunks, prepare_user
from tritonrec.client.request import top_k as select_top_k
from tritonrec.client.status import error_for
from tritonrec.contract import CANDIDATES, DEFAULT_MODEL, HISTORY, SCORES
from tritonrec.errors import ClientError

__all__ = ["RankingClient"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]


class RankingClient(ClientCore):
    """A synchronous, thread-safe gRPC client of one ranker model. Connects lazily, on the first call.

    Args:
        url: ``host:port`` of Triton's gRPC endpoint.
        model: model name in the repository (default :data:`tritonrec.contract.DEFAULT_MODEL`, ``ranker_cpu``).
        version: model version ('' = the server's policy, i.e. the latest).
        options: deadlines, retries, channel settings, TLS and headers.
    """

    def __init__(
        self, url: str, *, model: str = DEFAULT_MODEL, version: str = "", options: ClientOptions | None = None
    ) -> None:
        super().__init__(url, model=model, version=version, options=options)
        self._client: grpcclient.InferenceServerClient | None = None
        self._lock = threading.Lock()

    # -- connection and helpers -------------------------------------------------------------------------------

    @property
    def _grpc(self) -> grpcclient.InferenceServerClient:
        with self._lock:
            if self._client is None:
                self._client = grpcclient.InferenceServerClient(self.url, **self.options.client_kwargs())
            return self._client

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(
                *args, headers=dict(self.options.headers) or None, client_timeout=self.options.timeout_s, **kwargs
            )
        except InferenceServerException as e:
            raise error_for(e.status(), e.message() or str(e), context=what) from e

    def is_server_ready(self) -> bool:
        """True when the server answers and is ready; False when it does not answer."""
        try:
            return bool(self._call("server ready", self._grpc.is_server_ready))
        except ClientError:
            return False

    def is_model_ready(self, model: str | None = None) -> bool:
        """True when ``model`` (default: this client's) is loaded and ready."""
        try:
            return bool(self._call("model ready", self._grpc.is_model_ready, model or self.model, self.version))
        except ClientError:
            return False

    def server_version(self) -> str:
        """The server's version string (Triton's ``ServerMetadata.version``, e.g. ``2.51.0``)."""
        return str(self._call("server metadata", self._grpc.get_server_metadata, as_json=True).get("version", ""))

    def model_metadata(self, model: str | None = None) -> dict[str, Any]:
        """Triton's metadata of ``model``: versions, platform, inputs and outputs."""
        name = model or self.model
        return dict(self._call(name, self._grpc.get_model_metadata, name, self.version, as_json=True))

    def model_config(self, model: str | None = None) -> dict[str, Any]:
        """The served model's configuration as Triton returns it (JSON form of ``ModelConfig``)."""
        name = model or self.model
        config = self._call(name, self._grpc.get_model_config, name, self.version, as_json=True)
        return dict(config.get("config", config))

    def limits(self, model: str | None = None) -> ModelLimits:
        """The served model's limits (history length, candidates per request), read once from its config."""
        name = model or self.model
        if name not in self._limits:
            self._limits[name] = ModelLimits.from_config(self.model_config(name))
        return self._limits[name]

    def raw_statistics(self, model: str | None = None) -> dict[str, Any]:
        """Triton's full statistics answer for the model (JSON form): per-stage times, per-batch-size counts."""
        name = model or self.model
        return dict(self._call(name, self._grpc.get_inference_statistics, name, self.version, as_json=True))

    def statistics(self, model: str | None = None) -> dict[str, int]:
        """Triton's counters for the model: ``inference_count`` (users scored), ``execution_count`` (batches)."""
        name = model or self.model
        return count_statistics(self._call(name, self._grpc.get_inference_statistics, name, self.version, as_json=True))

    # -- ranking ---------------------------------------------------------------------------------------------

    def _infer_once(self, model: str, history: IntArray, chunk: IntArray, deadline: float) -> FloatArray:
        inputs = infer_inputs({HISTORY: history, CANDIDATES: chunk})
        remaining = deadline - time.monotonic()
        with self._lock:
            self._requests += 1
        try:
            result = self._grpc.infer(
                model,
                inputs,
                model_version=self.version,
                client_timeout=remaining,
                headers=self._headers(),
            )
        except InferenceServerException as e:
            raise error_for(e.status(), e.message() or str(e), context=model) from e
        scores: FloatArray = np.asarray(result.as_numpy(SCORES), dtype=np.float32)[0]
        return scores

    def _infer(self, model: str, history: IntArray, chunk: IntArray, deadline: float) -> FloatArray:
        for attempt in range(self.options.retry.max_attempts):
            if time.monotonic() >= deadline:
                break
            try:
                return self._infer_once(model, history, chunk, deadline)
            except ClientError as e:
                with self._lock:
                    wait = self._retry_wait(e, attempt, deadline)
            time.sleep(wait)
        raise self._deadline_passed(model)

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
            timeout_s: deadline of this call, retries included (default: ``options.timeout_s``).

        Raises:
            InvalidRequestError: bad ids (checked before sending) or INVALID_ARGUMENT from the server.
            ServerUnavailableError, ServerOverloadedError: still failing when retries or the deadline ran out.
            InferenceTimeoutError: the deadline passed.
            ModelNotReadyError, PermissionDeniedError, ClientError: see ``tritonrec.errors``.
        """
        name = model or self.model
        deadline = self._deadline(timeout_s)
        limits = self.limits(name)
        h, c = prepare_user(history, candidates, limits)
        chunks = candidate_chunks(c, limits.max_candidates)
        scores = np.concatenate([self._infer(name, h, chunk, deadline) for chunk in chunks])
        return select_top_k(c, scores, top_k)

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
            ClientError: the first user whose ranking failed (in input order).
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
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def __enter__(self) -> RankingClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
