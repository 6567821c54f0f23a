"""Triton Python-backend model of a spec's CPU variant: any ranker, ONNX Runtime (or OpenVINO) over the whole batch.

``tritonrec repo build --spec`` copies this file verbatim to ``<name>_cpu/<version>/model.py``. It imports only
numpy, onnxruntime (or openvino) and Triton's ``triton_python_backend_utils``; the pure functions below are
imported and unit-tested from tritonrec.

In the rows layout a request is one query's N candidate rows: every input ``[N, *dims]``, the answer ``[N, 1]``, one
score per row. In the query + candidates layout (config parameter ``layout``) a request is Q queries: each query
input ``[Q, *dims]``, each item input ``[Q, N, *dims]`` (its N candidates; ``candidates_<name>``), the answer
``[Q, N]``. Triton has already checked names, dtypes, ranks and fixed dims against ``config.pbtxt``; each request
is then checked on its own (all inputs the same row or query count, item inputs the same candidate count, a dynamic
dim within its limit, no NaN or infinity in a float input unless the config allows it), a bad one answered with its
own INVALID_ARG. The good ones are concatenated along the first axis, each dynamic dim (a query's candidates
included) padded to the batch's longest with its pad value, scored in one session run, and split back; if that run
fails, each request is scored alone, so only those that fail on their own get INTERNAL.

Config parameters: ``onnx_file``, ``runtime`` (``onnxruntime`` or ``openvino``), ``output_name``,
``intra_op_threads``, and per input ``pad_<name>``, ``max_len_<name>`` (a dynamic dim's limit),
``allow_nan_<name>``, ``scalar_<name>`` (one value per row or query: ``[N, 1]`` on the wire, ``[N]`` in the graph)
and ``candidates_<name>`` (an item input of the query + candidates layout, its first dim the candidates, at most
``max_candidates``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

try:  # present only inside the Triton Python backend
    import triton_python_backend_utils as pb_utils
except ImportError:  # imported for its pure functions (tests)
    pb_utils = None

__all__ = [
    "InputRule",
    "TritonPythonModel",
    "check_rows",
    "open_session",
    "pack_rows",
    "rules_from_config",
    "split_rows",
]

Features = dict[str, npt.NDArray[Any]]
_DTYPES = {
    "TYPE_FP32": "float32",
    "TYPE_FP16": "float16",
    "TYPE_INT64": "int64",
    "TYPE_INT32": "int32",
    "TYPE_BOOL": "bool",
}


class InputRule:
    """What the config says of one input: its dtype, per-row dims (-1 = dynamic), pad value and limits.

    A scalar per row travels as ``[N, 1]`` (Triton's dims cannot be empty) and reaches the graph as ``[N]``.
    """

    def __init__(self, name: str, dtype: str, dims: list[int], *, pad: float = 0, max_len: int = 0,
                 allow_nan: bool = False, scalar: bool = False, max_candidates: int = 0) -> None:  # fmt: skip
        self.name, self.dtype, self.dims = name, dtype, dims
        self.pad, self.max_len, self.allow_nan, self.scalar = pad, max_len, allow_nan, scalar
        self.max_candidates = max_candidates  # > 0: an item input of the query + candidates layout, dims[0] = N

    @property
    def dynamic(self) -> bool:
        """Whether a per-row dim is dynamic."""
        return any(d < 0 for d in self.dims)


def rules_from_config(config: dict[str, Any]) -> list[InputRule]:
    """The input rules of ``config`` (Triton's JSON form of config.pbtxt), in the config's input order."""
    params = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
    rules = []
    for entry in config["input"]:
        name = entry["name"]
        dims = [int(d) for d in entry["dims"]]
        rules.append(
            InputRule(
                name,
                _DTYPES[entry["data_type"]],
                dims,
                pad=float(params.get(f"pad_{name}", "0")),
                max_len=int(params.get(f"max_len_{name}", "0")),
                allow_nan=params.get(f"allow_nan_{name}", "false") == "true",
                scalar=params.get(f"scalar_{name}", "false") == "true",
                max_candidates=int(params.get("max_candidates", "0")) if params.get(f"candidates_{name}") else 0,
            )
        )
    return rules


def check_rows(features: Features, rules: list[InputRule]) -> str | None:
    """Return what is wrong with one request, or None when it can be scored."""
    counts = {rule.name: features[rule.name].shape[0] for rule in rules}
    if len(set(counts.values())) > 1:
        return f"inputs hold different row counts {counts}: every input has one row per candidate (per query)"
    if next(iter(counts.values())) == 0:
        return "the request holds no rows: send at least one candidate row"
    items = [rule for rule in rules if rule.max_candidates]
    candidates = {rule.name: features[rule.name].shape[1] for rule in items}
    if len(set(candidates.values())) > 1:
        return f"item inputs hold different candidate counts {candidates}: each holds the query's N candidates"
    for rule in items:
        n = candidates[rule.name]
        if n == 0:
            return f"{rule.name} holds no candidates: send at least one"
        if n > rule.max_candidates:
            return f"{rule.name} holds {n} candidates per query; this model takes at most {rule.max_candidates}"
    for rule in rules:
        values = features[rule.name]
        inner = 2 if rule.max_candidates else 1  # the first per-row dim after the row (and candidate) axis
        if rule.max_len and any(d < 0 for d in rule.dims[inner - 1 :]) and values.ndim > inner:
            if values.shape[inner] > rule.max_len:
                return f"{rule.name} has rows of length {values.shape[inner]}; this model takes at most {rule.max_len}"
        if values.dtype.kind == "f" and not rule.allow_nan:
            bad = ~np.isfinite(values)
            if bad.any():
                row = int(np.argwhere(bad)[0][0])
                return f"{rule.name} holds {int(bad.sum())} NaN or infinite value(s), first in row {row}"
    return None


def pack_rows(requests: list[Features], rules: list[InputRule]) -> Features:
    """Concatenate requests along rows; each dynamic dim padded to the batch's longest with its pad value."""
    packed = {}
    for rule in rules:
        parts = [r[rule.name] for r in requests]
        if rule.dynamic:
            widest = [max(p.shape[k] for p in parts) for k in range(1, parts[0].ndim)]
            padded = []
            for part in parts:
                grown = np.full((part.shape[0], *widest), rule.pad, dtype=part.dtype)
                grown[(slice(None), *(slice(0, n) for n in part.shape[1:]))] = part
                padded.append(grown)
            parts = padded
        joined = np.concatenate(parts, axis=0)
        packed[rule.name] = np.ascontiguousarray(joined.reshape(-1) if rule.scalar else joined, dtype=rule.dtype)
    return packed


def split_rows(
    scores: npt.NDArray[Any], counts: list[int], widths: list[int] | None = None
) -> list[npt.NDArray[np.float32]]:
    """Cut the batch's scores back into one array per request.

    Rows layout: ``[R]`` (or ``[R, 1]``) into ``[n]`` per request. Query + candidates layout (``widths``: each
    request's candidate count): ``[Q, N_max]`` into ``[q, n]`` per request, the padding candidates dropped.
    """
    bounds = np.cumsum([0, *counts])
    if widths is None:
        flat = np.asarray(scores, dtype=np.float32).reshape(-1)
        return [np.ascontiguousarray(flat[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    grid = np.asarray(scores, dtype=np.float32).reshape(int(bounds[-1]), -1)
    return [np.ascontiguousarray(grid[a:b, :n]) for a, b, n in zip(bounds[:-1], bounds[1:], widths, strict=True)]


def open_session(path: Path, threads: int, runtime: str) -> Any:
    """A session on ``path`` as an instance serves it: ONNX Runtime (no spinning) or OpenVINO (f32, latency hint).

    Both answer ``run(output_names, feeds)``; an OpenVINO file may be ONNX or IR (``.xml``).
    """
    if runtime == "openvino":
        import openvino as ov

        config = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
        compiled = ov.Core().compile_model(str(path), "CPU", config)

        class _Session:
            def run(self, names: list[str], feeds: Features) -> list[Any]:
                results = compiled(feeds)
                return [results[compiled.output(n)] for n in names]

        return _Session()
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


class TritonPythonModel:
    """The model object the Python backend instantiates once per model instance."""

    def initialize(self, args: dict[str, str]) -> None:
        """Open the session on the config's ``onnx_file``; read the input rules."""
        config = json.loads(args["model_config"])
        params = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
        instances = sum(int(g.get("count", 1)) for g in config.get("instance_group", [])) or 1
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:
            cores = os.cpu_count() or 1
        threads = int(params.get("intra_op_threads", "0")) or max(1, cores // instances)
        path = Path(args["model_repository"]) / args["model_version"] / params.get("onnx_file", "model.onnx")
        self.session = open_session(path, threads, params.get("runtime", "onnxruntime"))
        self.rules = rules_from_config(config)
        self.output = params.get("output_name", config["output"][0]["name"])

    def _error(self, message: str, code: Any = None) -> Any:
        error = pb_utils.TritonError(message, code if code is not None else pb_utils.TritonError.INVALID_ARG)
        return pb_utils.InferenceResponse(output_tensors=[], error=error)

    def _scores(self, requests: list[Features]) -> list[npt.NDArray[np.float32]]:
        (scores,) = self.session.run([self.output], pack_rows(requests, self.rules))
        counts = [next(iter(r.values())).shape[0] for r in requests]
        item = next((rule.name for rule in self.rules if rule.max_candidates), None)
        widths = None if item is None else [r[item].shape[1] for r in requests]
        return split_rows(np.asarray(scores), counts, widths)

    def _response(self, scores: npt.NDArray[np.float32]) -> Any:
        shaped = scores if scores.ndim == 2 else scores.reshape(-1, 1)  # [q, n] per query, or [n, 1] per row
        return pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(self.output, shaped)])

    def execute(self, requests: list[Any]) -> list[Any]:
        """Score every valid request of the batch in one session run; answer bad ones with INVALID_ARG."""
        responses: list[Any] = [None] * len(requests)
        good: list[int] = []
        batch: list[Features] = []
        for i, request in enumerate(requests):
            features = {r.name: pb_utils.get_input_tensor_by_name(request, r.name).as_numpy() for r in self.rules}
            problem = check_rows(features, self.rules)
            if problem is not None:
                responses[i] = self._error(problem)
            else:
                good.append(i)
                batch.append(features)
        if not batch:
            return responses
        try:
            parts = self._scores(batch)
        except Exception:  # noqa: BLE001 - score the requests one by one instead of failing them all
            for i, features in zip(good, batch, strict=True):
                try:
                    (part,) = self._scores([features])
                    responses[i] = self._response(part)
                except Exception as e:  # noqa: BLE001 - each request gets its own answer
                    responses[i] = self._error(f"the model failed on this request: {e}", pb_utils.TritonError.INTERNAL)
            return responses
        for i, part in zip(good, parts, strict=True):
            responses[i] = self._response(part)
        return responses

    def finalize(self) -> None:
        """Release the session."""
        self.session = None
