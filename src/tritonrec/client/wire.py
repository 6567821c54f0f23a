"""The ranking request and answer in Triton's wire format: numpy arrays to ``ModelInferRequest`` and back.

Tensors travel as raw little-endian bytes (``raw_input_contents`` / ``raw_output_contents``), the cheapest form
Triton accepts: no per-element protobuf fields, no intermediate objects. Triton's own per-request queue timeout
travels as the ``timeout`` parameter (microseconds).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from tritonclient.grpc import service_pb2

from tritonrec.contract import CANDIDATES, HISTORY, SCORES
from tritonrec.errors import ClientError

__all__ = ["infer_request", "output_array", "scores_of"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]
_INT64 = np.dtype("<i8")


def infer_request(
    model: str, version: str, history: IntArray, candidates: IntArray, *, timeout_us: int | None = None
) -> service_pb2.ModelInferRequest:
    """One ranking request: ``history`` ``[B, L]`` and ``candidates`` ``[B, N]`` int64, asking for ``scores``.

    Args:
        model: model name.
        version: model version ('' = the server's policy).
        history: the users' histories.
        candidates: the users' candidates.
        timeout_us: Triton's per-request timeout (the queue drops the request once it passes); None = none.
    """
    request = service_pb2.ModelInferRequest(model_name=model, model_version=version)
    for name, array in ((HISTORY, history), (CANDIDATES, candidates)):
        tensor = request.inputs.add()
        tensor.name = name
        tensor.datatype = "INT64"
        tensor.shape.extend(array.shape)
        request.raw_input_contents.append(np.ascontiguousarray(array, dtype=_INT64).tobytes())
    request.outputs.add().name = SCORES
    if timeout_us is not None:
        request.parameters["timeout"].int64_param = max(1, int(timeout_us))
    return request


def output_array(response: service_pb2.ModelInferResponse, name: str, model: str) -> FloatArray:
    """The FP32 output ``name`` of a response, in the shape it announces, read straight from its raw bytes.

    Raises:
        ClientError: the response carries no such output, or its bytes do not match its shape.
    """
    for index, output in enumerate(response.outputs):
        if output.name == name and index < len(response.raw_output_contents):
            values = np.frombuffer(response.raw_output_contents[index], dtype="<f4")
            shape = tuple(int(d) for d in output.shape)
            if output.datatype != "FP32" or values.size != math.prod(shape):
                raise ClientError(
                    f"{model}: {name} of {output.datatype} {shape} do not match their {values.size} values"
                )
            return values.reshape(shape)
    raise ClientError(f"{model}: the response has no raw '{name}' output")


def scores_of(response: service_pb2.ModelInferResponse, model: str) -> FloatArray:
    """The ``scores`` of a ranking response as float32 ``[B, N]``.

    Raises:
        ClientError: the response carries no ``scores`` output of the shape it announces.
    """
    return output_array(response, SCORES, model)
