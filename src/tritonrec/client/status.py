"""The one table from gRPC status codes to tritonrec client errors, and Triton's overloaded UNAVAILABLE.

Triton answers UNAVAILABLE for four different things (seen on Triton 2.51, see the repository README): the
server is down or restarting (retry), the model's queue is full or its queue timeout expired (retry after a
backoff), a restricted API called without its key, and a failed TLS handshake (never retry those two: they will
not change). gRPC gives the same code for all of them, so the message text is the only signal; that matching
lives here and nowhere else.
"""

from __future__ import annotations

import grpc

from tritonrec.errors import (
    ClientError,
    InferenceTimeoutError,
    InvalidRequestError,
    ModelNotReadyError,
    PermissionDeniedError,
    ServerOverloadedError,
    ServerUnavailableError,
    TransportSecurityError,
)

__all__ = ["STATUS_ERRORS", "error_for"]

STATUS_ERRORS: dict[grpc.StatusCode, type[ClientError]] = {
    grpc.StatusCode.CANCELLED: ClientError,
    grpc.StatusCode.UNKNOWN: ClientError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequestError,
    grpc.StatusCode.DEADLINE_EXCEEDED: InferenceTimeoutError,
    grpc.StatusCode.NOT_FOUND: ModelNotReadyError,
    grpc.StatusCode.ALREADY_EXISTS: ClientError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ServerOverloadedError,
    grpc.StatusCode.FAILED_PRECONDITION: ModelNotReadyError,
    grpc.StatusCode.ABORTED: ServerUnavailableError,
    grpc.StatusCode.OUT_OF_RANGE: InvalidRequestError,
    grpc.StatusCode.UNIMPLEMENTED: ClientError,
    grpc.StatusCode.INTERNAL: ClientError,
    grpc.StatusCode.UNAVAILABLE: ServerUnavailableError,
    grpc.StatusCode.DATA_LOSS: ClientError,
    grpc.StatusCode.UNAUTHENTICATED: PermissionDeniedError,
}

# (status, text in Triton's or gRPC's message, error): checked in order before the table.
_REFINEMENTS: tuple[tuple[grpc.StatusCode, str, type[ClientError]], ...] = (
    (grpc.StatusCode.UNAVAILABLE, "exceeds maximum queue size", ServerOverloadedError),
    (grpc.StatusCode.UNAVAILABLE, "request timeout expired", ServerOverloadedError),
    (grpc.StatusCode.UNAVAILABLE, "protocol is restricted", PermissionDeniedError),
    (grpc.StatusCode.UNAVAILABLE, "handshake failed", TransportSecurityError),
    (grpc.StatusCode.UNAVAILABLE, "certificate verify failed", TransportSecurityError),
    (grpc.StatusCode.UNAVAILABLE, "unknown model", ModelNotReadyError),
    (grpc.StatusCode.UNAVAILABLE, "has no available versions", ModelNotReadyError),
    (grpc.StatusCode.INVALID_ARGUMENT, "unknown model", ModelNotReadyError),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, "larger than max", InvalidRequestError),
    (grpc.StatusCode.INTERNAL, "stub process", ModelNotReadyError),
)


def _status(name: str | None) -> grpc.StatusCode | None:
    try:
        return grpc.StatusCode[(name or "").removeprefix("StatusCode.")]
    except KeyError:
        return None


def error_for(status_name: str | None, message: str, *, context: str) -> ClientError:
    """Return the tritonrec error for a failed call.

    Args:
        status_name: the gRPC status as tritonclient reports it (``"StatusCode.UNAVAILABLE"``) or its bare name.
        message: the server's (or gRPC's) message.
        context: what was being done, e.g. the model name; it prefixes the message.
    """
    status = _status(status_name)
    if status is None:
        return ClientError(f"{context}: {message}", status=status_name)
    lowered = message.lower()
    cls = next((err for code, text, err in _REFINEMENTS if code == status and text in lowered), None)
    cls = cls or STATUS_ERRORS.get(status, ClientError)
    return cls(f"{context}: {message}", status=status.name)
