"""The one error hierarchy of tritonrec.

Every error the library raises on purpose derives from :class:`TritonRecError`, so a caller (and the CLI)
can catch exactly what tritonrec means to report::

    TritonRecError
    ├── ConfigError        a configuration value is invalid (presets, model/train/feature configs)
    ├── DataError          a data file is missing, garbled or inconsistent with what was asked
    ├── CheckpointError    a checkpoint is missing, of another format version, or does not fit the data
    ├── ExportError        an export failed, or its artifact does not match its source within tolerance
    ├── RepositoryError    a Triton model repository cannot be built from what was given
    ├── ServerError        the Triton server binary is missing, a port is taken, or the server/a model failed
    ├── ToolError          an external tool we run (Model Analyzer) is missing or failed; the message says where
    └── ClientError        a ranking request over gRPC failed (``status`` holds the gRPC status code name)
        ├── InvalidRequestError     the request is malformed (checked before sending, or INVALID_ARGUMENT)
        ├── ServerUnavailableError  no server answers (down, restarting, connection refused); retryable
        ├── ServerOverloadedError   the model's queue is full or its queue timeout expired; retryable
        ├── InferenceTimeoutError   the caller's deadline passed (DEADLINE_EXCEEDED)
        ├── ModelNotReadyError      the model is unknown, unloaded, or its backend is unhealthy
        ├── PermissionDeniedError   a restricted API without its key, or an auth failure; never retried
        └── TransportSecurityError  the TLS handshake failed (certificate, host name, TLS vs plaintext); never retried

A new kind of failure gets its own class under the branch it belongs to, and the CLI prints it as
``TypeName: message``.
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "ClientError",
    "ConfigError",
    "DataError",
    "InferenceTimeoutError",
    "InvalidRequestError",
    "ModelNotReadyError",
    "PermissionDeniedError",
    "ExportError",
    "RepositoryError",
    "ServerError",
    "ServerOverloadedError",
    "ServerUnavailableError",
    "ToolError",
    "TransportSecurityError",
    "TritonRecError",
]


class TritonRecError(Exception):
    """Base class of every error tritonrec raises on purpose."""


class ConfigError(TritonRecError, ValueError):
    """A configuration value is invalid."""


class DataError(TritonRecError):
    """A data file is missing, malformed, or inconsistent with the request."""


class CheckpointError(TritonRecError):
    """A checkpoint cannot be used: missing files, another format version, or a data mismatch."""


class ExportError(TritonRecError):
    """An export failed or its artifact does not match its source within tolerance."""


class RepositoryError(TritonRecError):
    """A Triton model repository cannot be built: missing artifacts or an invalid variant."""


class ServerError(TritonRecError):
    """The Triton server could not be started, did not become ready, or a model failed to load."""


class ToolError(TritonRecError):
    """An external tool we run (NVIDIA Triton Model Analyzer) is missing or failed.

    The message names the step that failed, the command, its exit code and the tail of the tool's log.
    """


class ClientError(TritonRecError):
    """A ranking request failed; ``status`` is the gRPC status code name (e.g. ``INVALID_ARGUMENT``).

    ``retryable`` says whether sending the same request again later may succeed.
    """

    retryable = False

    def __init__(self, message: str, *, status: str | None = None) -> None:
        super().__init__(message)
        self.status = status


class InvalidRequestError(ClientError, ValueError):
    """The request is malformed: caught before sending, or answered INVALID_ARGUMENT. Never retried."""


class ServerUnavailableError(ClientError):
    """No server answered (down, restarting, unreachable). Retryable."""

    retryable = True


class ServerOverloadedError(ClientError):
    """The model's queue is full or the request waited past the queue timeout. Retryable after a backoff."""

    retryable = True


class InferenceTimeoutError(ClientError):
    """The caller's deadline passed before an answer came."""


class ModelNotReadyError(ClientError):
    """The model is unknown or not loaded, or its backend process is unhealthy."""


class PermissionDeniedError(ClientError):
    """A restricted API was called without its key, or authentication failed. Never retried."""


class TransportSecurityError(ClientError):
    """The TLS handshake failed: an untrusted or mismatched certificate, or TLS against plaintext.

    Never retried: the same settings fail the same way until someone fixes them.
    """
