"""Health that readiness cannot see: a probe running a real inference, a watchdog reloading a dead backend.

When a Python stub process dies (killed, out of memory), Triton 2.51 answers every later request of that model
with INTERNAL "Stub process ... is not healthy" while server and model readiness stay 200: HTTP probes never
notice, and the server does not restart the stub. :func:`probe_model` sends one real request (the bundled ranker:
an empty history, one candidate; a model spec's model: the rows it warms up on) and reports what failed;
:class:`Watchdog` probes every model on a timer and, on a failure that a reload cures (the model is unhealthy or
unavailable), unloads and loads it again through the repository API (explicit model control, as ``LocalTriton``
runs), recording how long the model was down.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from tritonclient.grpc import model_config_pb2 as mc
from tritonclient.grpc import service_pb2, service_pb2_grpc

from tritonrec.client.channel import open_stub
from tritonrec.client.core import rpc_error
from tritonrec.client.features import feature_request, scores_named
from tritonrec.client.options import ClientOptions
from tritonrec.client.wire import infer_request, scores_of
from tritonrec.contract import MAX_HISTORY_PARAM
from tritonrec.errors import ClientError, ConfigError, ModelNotReadyError

__all__ = ["Recovery", "Watchdog", "probe_model"]

logger = logging.getLogger(__name__)


_WARMUP_DTYPES = {"TYPE_FP32": "<f4", "TYPE_FP16": "<f2", "TYPE_INT64": "<i8", "TYPE_INT32": "<i4", "TYPE_BOOL": "?"}


def _spec_rows_request(config: Any, repository: Path | None) -> tuple[service_pb2.ModelInferRequest, int] | None:
    """A spec model's probe: the rows of its warm-up (real rows of the spec's data when the repository is here)."""
    if "spec" not in config.parameters or not config.model_warmup:
        return None
    warm = config.model_warmup[0]
    features = {}
    for name, spec in warm.inputs.items():
        dtype = _WARMUP_DTYPES[mc.DataType.Name(spec.data_type)]
        shape = (warm.batch_size, *spec.dims)
        source = (
            repository / config.name / "warmup" / spec.input_data_file if repository and spec.input_data_file else None
        )
        if source is not None and source.is_file():
            features[name] = np.frombuffer(source.read_bytes(), dtype=dtype).reshape(shape)
        else:
            features[name] = np.zeros(shape, dtype=dtype)
    output = config.output[0].name
    return feature_request(config.name, "", features, output), warm.batch_size


def probe_model(
    stub: service_pb2_grpc.GRPCInferenceServiceStub,
    model: str,
    *,
    timeout_s: float = 2.0,
    repository: Path | None = None,
) -> ClientError | None:
    """One real inference on ``model``; None when it answered finite scores.

    The bundled ranker: a padded empty history and one candidate. A model spec's model (its config names the spec):
    the rows it warms up on, read from ``repository`` when given (one real query of the spec's data).
    """
    try:
        config = stub.ModelConfig(service_pb2.ModelConfigRequest(name=model), timeout=timeout_s).config
        rows = _spec_rows_request(config, repository)
        if rows is not None:
            request, n = rows
            scores = scores_named(stub.ModelInfer(request, timeout=timeout_s), config.output[0].name, model)
            expected: tuple[int, ...] = (n,)
        else:
            length = int(config.parameters[MAX_HISTORY_PARAM].string_value or "0")
            history = np.zeros((1, length), dtype=np.int64)  # all padding: valid for ragged and padded variants
            request = infer_request(model, "", history, np.ones((1, 1), dtype=np.int64))
            scores = scores_of(stub.ModelInfer(request, timeout=timeout_s), model)
            expected = (1, 1)
    except grpc.RpcError as e:
        return rpc_error(e, f"probe of {model}")
    except ClientError as e:
        return e
    if scores.shape != expected or not np.isfinite(scores).all():
        return ClientError(f"probe of {model}: scores {scores!r} are not {expected} finite values")
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
        repository: the served repository, when it is on this machine: a spec model is probed with its real rows.
    """

    def __init__(
        self,
        url: str,
        models: list[str],
        *,
        interval_s: float = 10.0,
        timeout_s: float = 2.0,
        options: ClientOptions | None = None,
        repository: Path | None = None,
    ) -> None:
        if interval_s <= 0 or timeout_s <= 0 or not models:
            raise ConfigError("a watchdog needs models, interval_s > 0 and timeout_s > 0")
        self.url, self.models, self.interval_s, self.timeout_s = url, models, interval_s, timeout_s
        self.repository = repository
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

    @property
    def stopped(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stop.is_set()

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
                    if self._stop.is_set():
                        break
                    self._check(stub, model)
        finally:
            channel.close()

    def _check(self, stub: service_pb2_grpc.GRPCInferenceServiceStub, model: str) -> None:
        self._state.probes += 1
        error = probe_model(stub, model, timeout_s=self.timeout_s, repository=self.repository)
        if error is None or not isinstance(error, ModelNotReadyError) or self._stop.is_set():
            return  # healthy, a failure a reload does not cure (server down, overloaded), or a shutdown under way
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
            if probe_model(stub, model, timeout_s=self.timeout_s, repository=self.repository) is None:
                recovered = time.monotonic() - detected
            else:
                time.sleep(0.05)
        logger.warning("%s reloaded; answering again after %.2f s", model, recovered or float("nan"))
        self._state.recoveries.append(Recovery(model, str(error), detected, recovered))
