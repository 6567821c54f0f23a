"""Client settings: deadlines, retries, the retry budget and the gRPC channel (documented in client/README.md)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tritonrec.errors import ConfigError

__all__ = ["ClientOptions", "RetryBudget", "RetryPolicy"]

_MIB = 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Retries of retryable failures (server unavailable, queue full) with jittered exponential backoff.

    Attempt ``k`` (0-based) waits a uniform random time in ``[0, min(max_backoff_s, initial_backoff_s *
    multiplier**k)]`` ("full jitter", so clients that failed together do not retry together). Retries stop at
    ``max_attempts``, when the next wait would pass the call's deadline, or when the client's
    :class:`RetryBudget` is spent.
    """

    max_attempts: int = 5
    initial_backoff_s: float = 0.05
    max_backoff_s: float = 1.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.initial_backoff_s < 0 or self.max_backoff_s < self.initial_backoff_s or self.multiplier < 1:
            raise ConfigError("backoff needs 0 <= initial_backoff_s <= max_backoff_s and multiplier >= 1")

    def backoff_s(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``attempt + 1``."""
        return rng.uniform(0.0, min(self.max_backoff_s, self.initial_backoff_s * self.multiplier**attempt))


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryBudget:
    """How many retries after an overload one client may send, whatever each call's :class:`RetryPolicy` allows.

    Over any ``window_s``, such retries are allowed up to ``ratio`` times the calls made plus ``min_per_s`` per
    second (Finagle's retry budget). When a server is overloaded every call fails; per-call retries alone would
    multiply the load by ``max_attempts``; with a budget, attempts per call stay at most ``1 + ratio`` (plus the
    small reserve) and the overload is not made worse. Retries of a server that is down (connection refused,
    restarting) are not counted: they add no load to it.
    """

    ratio: float = 0.2
    min_per_s: float = 1.0
    window_s: float = 10.0

    def __post_init__(self) -> None:
        if self.ratio < 0 or self.min_per_s < 0 or self.window_s < 1:
            raise ConfigError("a retry budget needs ratio >= 0, min_per_s >= 0 and window_s >= 1")


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientOptions:
    """How a client talks to Triton.

    Attributes:
        timeout_s: default deadline of one ``rank`` call, retries and the first config read included.
        retry: the retry policy of one call.
        retry_budget: the client-wide retry budget (None: only the per-call policy limits retries).
        server_timeout: send the remaining deadline as Triton's per-request ``timeout``, so a request still
            queued when the caller has given up is dropped by the server instead of computed (the configs allow
            the override; see model_repository/README.md).
        max_message_bytes: gRPC send/receive limit; 64 MiB holds 2048 users x 2048 candidates of scores.
        keepalive_time_ms: ping the connection this often while calls are in flight.
        keepalive_timeout_ms: a ping unanswered this long closes the connection.
        keepalive_idle: also ping while no call is in flight (notices a dead server between calls). Triton's
            defaults answer idle pings more often than every 5 minutes with GOAWAY ``too_many_pings``; enable it
            only against a server started with ``--grpc-keepalive-permit-without-calls=1`` and
            ``--grpc-http2-min-recv-ping-interval-without-data`` below ``keepalive_time_ms`` (``tritonrec serve``
            and the Helm chart start Triton so).
        reconnect_backoff_ms: first wait before reconnecting a broken channel; ``max_reconnect_backoff_ms`` caps
            the growth (gRPC's own default grows to 120 s, far too slow to notice a restarted server).
        ssl: use TLS; ``root_certificates`` (PEM file) verifies the server, ``private_key`` and
            ``certificate_chain`` (PEM files) authenticate the client (mutual TLS).
        headers: metadata sent with every call (e.g. ``{"authorization": "Bearer ..."}``).
        load_balancing: gRPC's client-side policy (``grpc.lb_policy_name``): ``pick_first`` (one connection, the
            default) or ``round_robin``: with a ``dns:///<headless-service>:8001`` url, calls spread over every
            address the name resolves to, i.e. every ready Triton pod (see ``helm/README.md``).
    """

    timeout_s: float = 5.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    retry_budget: RetryBudget | None = field(default_factory=RetryBudget)
    server_timeout: bool = True
    max_message_bytes: int = 64 * _MIB
    keepalive_time_ms: int = 60_000
    keepalive_timeout_ms: int = 20_000
    keepalive_idle: bool = False
    reconnect_backoff_ms: int = 100
    max_reconnect_backoff_ms: int = 1_000
    ssl: bool = False
    root_certificates: str | None = None
    private_key: str | None = None
    certificate_chain: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    load_balancing: str = "pick_first"

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise ConfigError(f"timeout_s must be > 0, got {self.timeout_s}")
        if self.load_balancing not in ("pick_first", "round_robin"):
            raise ConfigError(f"load_balancing must be pick_first or round_robin, got {self.load_balancing!r}")
        if self.keepalive_time_ms < 1000 or self.keepalive_timeout_ms < 1:
            raise ConfigError("keepalive_time_ms must be >= 1000 and keepalive_timeout_ms >= 1")
        for name in ("root_certificates", "private_key", "certificate_chain"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"{name}: no such file {path}")
        if (self.private_key is None) != (self.certificate_chain is None):
            raise ConfigError("mutual TLS needs both private_key and certificate_chain")

    def channel_options(self) -> list[tuple[str, int | str]]:
        """The gRPC channel arguments (``grpc.*`` names) these options stand for."""
        return [
            ("grpc.max_send_message_length", self.max_message_bytes),
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.keepalive_time_ms", self.keepalive_time_ms),
            ("grpc.keepalive_timeout_ms", self.keepalive_timeout_ms),
            ("grpc.keepalive_permit_without_calls", int(self.keepalive_idle)),
            ("grpc.http2.max_pings_without_data", 0),
            # gRPC's default reconnect backoff grows to 120 s; cap it so a restarted server is back in ~1 s.
            ("grpc.initial_reconnect_backoff_ms", self.reconnect_backoff_ms),
            ("grpc.min_reconnect_backoff_ms", self.reconnect_backoff_ms),
            ("grpc.max_reconnect_backoff_ms", self.max_reconnect_backoff_ms),
            ("grpc.lb_policy_name", self.load_balancing),
        ]
