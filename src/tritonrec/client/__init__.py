"""The service-facing gRPC client of the tritonrec rankers (needs only numpy and tritonclient[grpc]).

``RankingClient`` (sync, thread-safe) and ``AsyncRankingClient`` (asyncio) rank one user's candidates per
request, with deadlines, retries of retryable failures within a client-wide retry budget, and errors from
``tritonrec.errors``. Requests travel in Triton's raw wire format on one reused gRPC channel.
"""

from tritonrec.client.aio import AsyncRankingClient
from tritonrec.client.core import infer_inputs
from tritonrec.client.options import ClientOptions, RetryBudget, RetryPolicy
from tritonrec.client.ranking import RankingClient
from tritonrec.client.request import ModelLimits, Ranking
from tritonrec.client.status import STATUS_ERRORS, error_for

__all__ = [
    "STATUS_ERRORS",
    "AsyncRankingClient",
    "ClientOptions",
    "ModelLimits",
    "Ranking",
    "RankingClient",
    "RetryBudget",
    "RetryPolicy",
    "error_for",
    "infer_inputs",
]
