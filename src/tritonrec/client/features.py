"""Named-tensor requests for any model in the rows layout (a model spec's): checks, wire form, the answer.

A request is one query's N candidate rows: each input ``[N, *dims]`` as the served config states it, the answer
one score per row. The inputs, their dtypes and dims, the score output and the most rows per request are read once
from the served model's config (:class:`FeatureLimits`), so a wrong name, dtype or shape is refused before anything
is sent, naming the input; a query of more rows than the model takes is sent as several requests. Torch-free.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from tritonclient.grpc import service_pb2

from tritonrec.client.wire import output_array
from tritonrec.errors import ClientError, InvalidRequestError

__all__ = ["FeatureLimits", "check_features", "feature_request", "row_chunks", "scores_named"]

Features = Mapping[str, npt.ArrayLike]
_TRITON_DTYPES = {"TYPE_FP32": "<f4", "TYPE_FP16": "<f2", "TYPE_INT64": "<i8", "TYPE_INT32": "<i4", "TYPE_BOOL": "?"}
_WIRE = {"<f4": "FP32", "<f2": "FP16", "<i8": "INT64", "<i4": "INT32", "?": "BOOL"}


@dataclass(frozen=True, slots=True)
class FeatureLimits:
    """What a served rows-layout model takes, read from its config.

    Attributes:
        inputs: ``{name: (numpy dtype string, per-row dims)}`` (-1 = a dynamic dim).
        output: the score output's name.
        max_rows: most rows per request (``max_batch_size``).
    """

    inputs: dict[str, tuple[str, tuple[int, ...]]]
    output: str
    max_rows: int

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> FeatureLimits:
        """Read them from a model config as Triton returns it in JSON.

        Raises:
            ClientError: the config is not a batching model with typed inputs and one output.
        """
        try:
            inputs = {
                i["name"]: (_TRITON_DTYPES[i["data_type"]], tuple(int(d) for d in i["dims"])) for i in config["input"]
            }
            (output,) = config["output"]
            max_rows = int(config.get("max_batch_size", 0))
        except (KeyError, ValueError, TypeError):
            raise ClientError(
                f"model {config.get('name', '?')!r}: its config has no usable inputs and output"
            ) from None
        if max_rows < 1:
            raise ClientError(f"model {config.get('name', '?')!r} does not batch rows (max_batch_size 0)")
        return cls(inputs=inputs, output=str(output["name"]), max_rows=max_rows)


def check_features(features: Features, limits: FeatureLimits, model: str) -> dict[str, npt.NDArray[Any]]:
    """The request's arrays as the model takes them (``[N]`` scalars become ``[N, 1]``), checked.

    Raises:
        InvalidRequestError: an input missing or unknown, a dtype other than the model's (ints are not cast to
            floats or back: the caller says what it means), rows of another shape, or row counts that differ.
    """
    missing = sorted(set(limits.inputs) - set(features))
    unknown = sorted(set(features) - set(limits.inputs))
    if missing or unknown:
        raise InvalidRequestError(
            f"{model}: inputs missing {missing}, unknown {unknown}; it takes {sorted(limits.inputs)}"
        )
    out = {}
    for name, (dtype, dims) in limits.inputs.items():
        values = np.asarray(features[name])
        if values.dtype.kind != np.dtype(dtype).kind:
            raise InvalidRequestError(f"{model}: input {name!r} is {values.dtype}, the model takes {np.dtype(dtype)}")
        if values.ndim == 1 and dims == (1,):
            values = values.reshape(-1, 1)
        if values.ndim != len(dims) + 1 or any(d >= 0 and d != s for d, s in zip(dims, values.shape[1:], strict=True)):
            raise InvalidRequestError(
                f"{model}: input {name!r} has rows of shape {list(values.shape[1:])}; the model takes {list(dims)} "
                "per row (-1: any length)"
            )
        out[name] = np.ascontiguousarray(values, dtype=dtype)
    counts = {name: v.shape[0] for name, v in out.items()}
    if len(set(counts.values())) != 1:
        raise InvalidRequestError(f"{model}: inputs hold different row counts {counts}")
    if next(iter(counts.values())) == 0:
        raise InvalidRequestError(f"{model}: the request holds no rows")
    return out


def row_chunks(features: dict[str, npt.NDArray[Any]], max_rows: int) -> list[dict[str, npt.NDArray[Any]]]:
    """The request cut into requests of at most ``max_rows`` rows, in order."""
    rows = next(iter(features.values())).shape[0]
    return [{k: v[a : a + max_rows] for k, v in features.items()} for a in range(0, rows, max_rows)]


def feature_request(
    model: str, version: str, features: dict[str, npt.NDArray[Any]], output: str, *, timeout_us: int | None = None
) -> service_pb2.ModelInferRequest:
    """One request of named tensors (raw little-endian bytes), asking for ``output``."""
    request = service_pb2.ModelInferRequest(model_name=model, model_version=version)
    for name, array in features.items():
        tensor = request.inputs.add()
        tensor.name = name
        tensor.datatype = _WIRE[array.dtype.str if array.dtype.kind != "b" else "?"]
        tensor.shape.extend(array.shape)
        request.raw_input_contents.append(array.tobytes())
    request.outputs.add().name = output
    if timeout_us is not None:
        request.parameters["timeout"].int64_param = max(1, int(timeout_us))
    return request


def scores_named(response: service_pb2.ModelInferResponse, output: str, model: str) -> npt.NDArray[np.float32]:
    """The ``output`` scores of a response as float32 ``[N]``.

    Raises:
        ClientError: the response has no such output, or its bytes do not match its shape.
    """
    return output_array(response, output, model).reshape(-1)
