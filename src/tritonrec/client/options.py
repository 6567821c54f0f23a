"""Client settings: deadlines, retries and the gRPC channel, chosen deliberately and documented in client/README.md."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tritonrec.errors import ConfigError

__all__ = ["ClientOptions", "RetryPolicy"]

_MIB = 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Retries of retryable failures (server unavailable, queue full) with jittered exponential backoff.

    Attempt ``k`` (0-based) waits a uniform random time in ``[0, min(max_backoff_s, initial_backoff_s *
    multiplier**k)]`` ("full jitter", so clients that failed together do not retry together). Retries stop at
    ``max_attempts`` or when the next wait would pass the call's deadline.
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
class ClientOptions:
    """How a client talks to Triton.

    Attributes:
        timeout_s: default deadline of one ``rank`` call, retries included.
        retry: the retry policy.
        max_message_bytes: gRPC send/receive limit; 64 MiB holds 2048 users x 2048 candidates of scores.
        keepalive_time_ms: ping an idle connection this often, so a dead server is noticed between calls.
        keepalive_timeout_ms: a ping unanswered this long closes the connection.
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
    max_message_bytes: int = 64 * _MIB
    keepalive_time_ms: int = 30_000
    keepalive_timeout_ms: int = 10_000
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

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``tritonclient.grpc[.aio].InferenceServerClient``."""
        return {
            "ssl": self.ssl,
            "root_certificates": self.root_certificates,
            "private_key": self.private_key,
            "certificate_chain": self.certificate_chain,
            # tritonclient ignores keepalive_options when channel_args is given: everything goes here.
            "channel_args": [
                ("grpc.max_send_message_length", self.max_message_bytes),
                ("grpc.max_receive_message_length", self.max_message_bytes),
                ("grpc.keepalive_time_ms", self.keepalive_time_ms),
                ("grpc.keepalive_timeout_ms", self.keepalive_timeout_ms),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.max_pings_without_data", 0),
                # gRPC's default reconnect backoff grows to 120 s; cap it so a restarted server is back in ~1 s.
                ("grpc.initial_reconnect_backoff_ms", self.reconnect_backoff_ms),
                ("grpc.min_reconnect_backoff_ms", self.reconnect_backoff_ms),
                ("grpc.max_reconnect_backoff_ms", self.max_reconnect_backoff_ms),
                ("grpc.lb_policy_name", self.load_balancing),
            ],
        }
