"""gRPC channels and Triton's service stub, made from :class:`~tritonrec.client.options.ClientOptions`.

The clients talk to Triton through the generated ``GRPCInferenceService`` stub over a plain ``grpc`` channel
(``grpc.aio`` for the asyncio client): one channel per client, reused by every call.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import grpc.aio
from tritonclient.grpc import service_pb2_grpc

from tritonrec.client.options import ClientOptions

__all__ = ["credentials", "open_aio_stub", "open_stub"]


def _read(path: str | None) -> bytes | None:
    return Path(path).read_bytes() if path else None


def credentials(options: ClientOptions) -> grpc.ChannelCredentials | None:
    """TLS credentials for ``options`` (None for a plaintext channel)."""
    if not options.ssl:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=_read(options.root_certificates),
        private_key=_read(options.private_key),
        certificate_chain=_read(options.certificate_chain),
    )


def open_stub(url: str, options: ClientOptions) -> tuple[grpc.Channel, service_pb2_grpc.GRPCInferenceServiceStub]:
    """A synchronous channel to ``url`` (``host:port`` or ``dns:///name:port``) and Triton's stub on it."""
    creds = credentials(options)
    settings = options.channel_options()
    channel = grpc.secure_channel(url, creds, settings) if creds else grpc.insecure_channel(url, settings)
    return channel, service_pb2_grpc.GRPCInferenceServiceStub(channel)


def open_aio_stub(
    url: str, options: ClientOptions
) -> tuple[grpc.aio.Channel, service_pb2_grpc.GRPCInferenceServiceStub]:
    """An asyncio channel to ``url`` and Triton's stub on it (create it inside the running event loop)."""
    creds = credentials(options)
    settings = options.channel_options()
    channel = grpc.aio.secure_channel(url, creds, settings) if creds else grpc.aio.insecure_channel(url, settings)
    return channel, service_pb2_grpc.GRPCInferenceServiceStub(channel)
