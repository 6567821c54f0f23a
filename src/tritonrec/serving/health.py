"""Health that readiness cannot see: a probe running a real inference, a watchdog reloading a dead backend.

When a Python stub process dies (killed, out of memory), Triton 2.51 answers every later request of that model
with INTERNAL "Stub process ... is not healthy" while server and model readiness stay 200: HTTP probes never
notice, and the server does not restart the stub. :func:`probe_model` sends one real ranking request (an empty
history, one candidate) and reports what failed; :class:`Watchdog` probes every model on a timer and, on a
failure that a reload cures (the model is unhealthy or unavailable), unloads and loads it again through the
repository API (explicit model control, as ``LocalTriton`` runs), recording how long the model was down.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import grpc
import numpy as np
from tritonclient.grpc import service_pb2, service_pb2_grpc

from tritonrec.client.channel import open_stub
from tritonrec.client.core import rpc_error
from tritonrec.client.options import ClientOptions
from tritonrec.client.wire import infer_request, scores_of
from tritonrec.contract import MAX_HISTORY_PARAM
from tritonrec.errors import ClientError, ConfigError, ModelNotReadyError

__all__ = ["Recovery", "Watchdog", "probe_model"]

logger = logging.getLogger(__name__)


def _probe_history_len(stub: service_pb2_grpc.GRPCInferenceServiceStub, model: str, timeout_s: float) -> int:
    config = stub.ModelConfig(service_pb2.ModelConfigRequest(name=model), timeout=timeout_s).config
    return int(config.parameters[MAX_HISTORY_PARAM].string_value or "0")


def probe_model(
    stub: service_pb2_grpc.GRPCInferenceServiceStub, model: str, *, timeout_s: float = 2.0
) -> ClientError | None:
    """One real inference on ``model`` (a padded empty history, one candidate); None when it answered scores."""
    try:
        length = _probe_history_len(stub, model, timeout_s)
        history = np.zeros((1, length), dtype=np.int64)  # all padding: valid for ragged and padded variants
        request = infer_request(model, "", history, np.ones((1, 1), dtype=np.int64))
        scores = scores_of(stub.ModelInfer(request, timeout=timeout_s), model)
    except grpc.RpcError as e:
        return rpc_error(e, f"probe of {model}")
    except ClientError as e:
        return e
    if scores.shape != (1, 1) or not np.isfinite(scores).all():
        return ClientError(f"probe of {model}: scores {scores!r} are not one finite value")
    return None


@dataclass(frozen=True, slots=True)
class Recovery:
    """One reload by the watchdog: which model, what the probe saw, how long until it answered again."""

    model: str
    error: str
    detected_at: float
    recovered_s: float | None


@dataclass(slots=True)
class _State:
    recoveries: list[Recovery] = field(default_factory=list)
    probes: int = 0


class Watchdog:
    """Probes ``models`` every ``interval_s`` on a background thread; reloads a model whose probe fails.

    Args:
        url: Triton's gRPC endpoint.
        models: the models to watch.
        interval_s: time between probe rounds.
        timeout_s: deadline of one probe.
        options: channel settings (TLS, headers: an admin key when the repository API is restricted).
    """

    def __init__(
        self,
        url: str,
        models: list[str],
        *,
        interval_s: float = 10.0,
        timeout_s: float = 2.0,
        options: ClientOptions | None = None,
    ) -> None:
        if interval_s <= 0 or timeout_s <= 0 or not models:
            raise ConfigError("a watchdog needs models, interval_s > 0 and timeout_s > 0")
        self.url, self.models, self.interval_s, self.timeout_s = url, models, interval_s, timeout_s
        self._options = options or ClientOptions()
        self._metadata = tuple((k.lower(), v) for k, v in self._options.headers.items()) or None
        self._state = _State()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def recoveries(self) -> list[Recovery]:
        """Every reload so far."""
        return list(self._state.recoveries)

    @property
    def probes(self) -> int:
        """Probes sent so far."""
        return self._state.probes

    def start(self) -> Watchdog:
        """Start probing in the background."""
        self._thread = threading.Thread(target=self._run, name="tritonrec-watchdog", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop probing (waits for the round in progress)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_s + 4 * self.timeout_s)

    def _run(self) -> None:
        channel, stub = open_stub(self.url, self._options)
        try:
            while not self._stop.wait(self.interval_s):
                for model in self.models:
                    self._check(stub, model)
        finally:
            channel.close()

    def _check(self, stub: service_pb2_grpc.GRPCInferenceServiceStub, model: str) -> None:
        self._state.probes += 1
        error = probe_model(stub, model, timeout_s=self.timeout_s)
        if error is None or not isinstance(error, ModelNotReadyError):
            return  # healthy, or a failure a reload does not cure (server down, overloaded)
        detected = time.monotonic()
        logger.warning("%s; reloading %s", error, model)
        try:
            stub.RepositoryModelUnload(
                service_pb2.RepositoryModelUnloadRequest(model_name=model), timeout=30, metadata=self._metadata
            )
            stub.RepositoryModelLoad(
                service_pb2.RepositoryModelLoadRequest(model_name=model), timeout=300, metadata=self._metadata
            )
        except grpc.RpcError as e:
            logger.error("reload of %s failed: %s", model, rpc_error(e, model))
            self._state.recoveries.append(Recovery(model, str(error), detected, None))
            return
        recovered = None
        while recovered is None and not self._stop.is_set() and time.monotonic() - detected < 60:
            if probe_model(stub, model, timeout_s=self.timeout_s) is None:
                recovered = time.monotonic() - detected
            else:
                time.sleep(0.05)
        logger.warning("%s reloaded; answering again after %.2f s", model, recovered or float("nan"))
        self._state.recoveries.append(Recovery(model, str(error), detected, recovered))
