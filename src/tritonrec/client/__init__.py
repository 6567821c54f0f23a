"""The service-facing gRPC client of the tritonrec rankers (needs only numpy and tritonclient)."""

from tritonrec.client.ranking import RankingClient, infer_inputs, request_arrays

__all__ = ["RankingClient", "infer_inputs", "request_arrays"]
