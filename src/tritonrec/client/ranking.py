"""RankingClient: rank one user's candidates on a Triton ranker over gRPC (the request contract in code).

One request = one user: ``history`` int64 ``[1, L]`` (most recent items, oldest first, padding dropped) and
``candidates`` int64 ``[1, N]``; the answer is ``scores`` float32 ``[1, N]``. See ``model_repository/README.md``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from tritonrec.errors import ClientError

__all__ = ["RankingClient", "infer_inputs", "request_arrays"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]


def request_arrays(history: npt.ArrayLike, candidates: npt.ArrayLike) -> tuple[IntArray, IntArray]:
    """Return one user's ``[1, L]`` history (padding zeros dropped) and ``[1, N]`` candidates as int64.

    Raises:
        ClientError: the ids are not one-dimensional integers.
    """
    h = np.asarray(history)
    c = np.asarray(candidates)
    for name, arr in (("history", h), ("candidates", c)):
        if arr.ndim != 1 or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
            raise ClientError(f"{name} must be a 1-D sequence of integer ids, got shape {arr.shape} {arr.dtype}")
    h = h.astype(np.int64, copy=False)
    return h[h != 0][None, :], c.astype(np.int64, copy=False)[None, :]


def infer_inputs(arrays: dict[str, IntArray], datatype: str = "INT64") -> list[grpcclient.InferInput]:
    """Wrap named arrays as tritonclient gRPC inputs (raw binary contents)."""
    inputs = []
    for name, arr in arrays.items():
        tensor = grpcclient.InferInput(name, list(arr.shape), datatype)
        tensor.set_data_from_numpy(np.ascontiguousarray(arr))
        inputs.append(tensor)
    return inputs


def _error(e: InferenceServerException, model: str) -> ClientError:
    status = str(e.status() or "").removeprefix("StatusCode.") or None
    return ClientError(f"{model}: {e.message()}", status=status)


class RankingClient:
    """A gRPC client of one ranker model (``ranker_cpu`` by default).

    Args:
        url: ``host:port`` of Triton's gRPC endpoint.
        model: model name in the repository.
        timeout_s: per-request deadline in seconds.
    """

    def __init__(self, url: str, *, model: str = "ranker_cpu", timeout_s: float = 30.0) -> None:
        self.url = url
        self.model = model
        self.timeout_s = timeout_s
        self._client = grpcclient.InferenceServerClient(url)
        self._requests = 0
        self._lock = threading.Lock()

    @property
    def requests_sent(self) -> int:
        """Inference requests sent so far (answered or not)."""
        return self._requests

    def _inputs(self, history: IntArray, candidates: IntArray) -> list[grpcclient.InferInput]:
        with self._lock:
            self._requests += 1
        return infer_inputs({"history": history, "candidates": candidates})

    def score(self, history: npt.ArrayLike, candidates: npt.ArrayLike) -> FloatArray:
        """Return the ``[N]`` scores of ``candidates`` for the user with ``history``.

        Raises:
            ClientError: the request was invalid or the server failed; ``status`` says how.
        """
        h, c = request_arrays(history, candidates)
        try:
            result = self._client.infer(self.model, self._inputs(h, c), client_timeout=self.timeout_s)
        except InferenceServerException as e:
            raise _error(e, self.model) from e
        scores: FloatArray = np.asarray(result.as_numpy("scores"), dtype=np.float32)[0]
        return scores

    def score_async(self, history: npt.ArrayLike, candidates: npt.ArrayLike) -> Future[FloatArray]:
        """Send the request without waiting; the future resolves to the ``[N]`` scores or a ClientError."""
        h, c = request_arrays(history, candidates)
        future: Future[FloatArray] = Future()

        def done(result: Any, error: InferenceServerException | None) -> None:
            if error is not None:
                future.set_exception(_error(error, self.model))
            else:
                future.set_result(np.asarray(result.as_numpy("scores"), dtype=np.float32)[0])

        self._client.async_infer(self.model, self._inputs(h, c), done, client_timeout=self.timeout_s)
        return future

    def score_many(
        self, histories: Sequence[npt.ArrayLike], candidates: Sequence[npt.ArrayLike], *, concurrency: int = 16
    ) -> list[FloatArray]:
        """Score many users, one request each, with at most ``concurrency`` in flight (lets Triton batch them).

        Raises:
            ClientError: the first request that failed.
        """
        window = threading.BoundedSemaphore(concurrency)
        futures: list[Future[FloatArray]] = []
        for history, cands in zip(histories, candidates, strict=True):
            window.acquire()
            future = self.score_async(history, cands)
            future.add_done_callback(lambda _: window.release())
            futures.append(future)
        return [f.result() for f in futures]

    def statistics(self) -> dict[str, int]:
        """Triton's counters for the model: ``inference_count`` (users scored), ``execution_count`` (batches run).

        Raises:
            ClientError: the server did not answer.
        """
        try:
            stats = self._client.get_inference_statistics(self.model, as_json=True)
        except InferenceServerException as e:
            raise _error(e, self.model) from e
        counts = {"inference_count": 0, "execution_count": 0}
        for model in stats.get("model_stats", []):
            for key in counts:
                counts[key] += int(model.get(key, 0))
        return counts

    def close(self) -> None:
        """Close the gRPC channel."""
        self._client.close()

    def __enter__(self) -> RankingClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
