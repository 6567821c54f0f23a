"""Triton Python-backend model of ``ranker_cpu``: ONNX Runtime (or OpenVINO) over the whole dynamic batch.

``tritonrec repo build`` copies this file verbatim to ``ranker_cpu/<version>/model.py``. It imports only numpy,
onnxruntime and Triton's ``triton_python_backend_utils``, so it also runs in a stock Triton image with
onnxruntime installed; the pure functions below are imported and unit-tested from ``tritonrec.repository``.

One ``execute()`` call gets every request of a dynamic batch. Each request is checked on its own; a bad one is
answered with its own INVALID_ARG error (raising in ``execute()`` would fail every request of the batch); with the
config's ``cancel_check`` 1, one its client has cancelled (gone past its deadline, disconnected) is answered CANCELLED,
unscored (off by default: Triton's core drops requests cancelled in the batcher's queue). The good ones are
packed and scored in one session run, then split back, in the layout the config's ``layout`` parameter names:

- ``ragged`` (the default of ``tritonrec repo build``): the graph ``model_ragged.onnx``; histories right-aligned to
  the batch's longest real history, candidates in a grid padded to the batch's longest list with the positions of
  the real ones: each history is encoded once, and only real candidates go through the cross network and MLP;
- ``padded``: ``[B, L]`` / ``[B, N]`` (histories left-padded with 0 to the graph's ``L``, candidates right-padded
  with 0 to the batch's longest list; the model masks padding, so scores do not change).

If that run fails, each request is scored alone, so only the requests that fail on their own get INTERNAL.

Ids: ``0`` is padding; negative ids are a client bug and rejected; ids above the catalogue are unknown items
(new products) and score with the model's OOV embedding, a mapping that is inside the ONNX graph.

Runtime (config parameter ``runtime``): ``onnxruntime`` (default) runs the ``onnx_file`` (FP32, FP16 or an INT8
file from ``tritonrec quantize``: a quantized model is just another file); ``openvino`` compiles the file (an ONNX
file or OpenVINO IR ``.xml``, e.g. NNCF's INT8 model) for OpenVINO's CPU plugin with FP32 inference precision.
Either runtime serves either layout; the layout must be the one the file was exported in (the ragged graph takes
``real_index``; the FP16 and INT8 files are padded graphs), which ``initialize`` checks.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import numpy.typing as npt

try:  # present only inside the Triton Python backend
    import triton_python_backend_utils as pb_utils
except ImportError:  # imported for its pure functions (tests, tritonrec.repository)
    pb_utils = None

__all__ = [
    "LAYOUTS",
    "RUNTIMES",
    "OpenVinoSession",
    "TritonPythonModel",
    "cgroup_cpu_limit",
    "check_layout",
    "check_request",
    "open_session",
    "pack_ragged",
    "pack_requests",
    "serving_cpus",
    "session_threads",
    "split_ragged",
    "split_scores",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]


def _negative_positions(name: str, ids: IntArray) -> str | None:
    bad = np.argwhere(ids < 0)
    if bad.size == 0:
        return None
    row, col = (int(v) for v in bad[0])
    return f"{name} has {len(bad)} negative id(s), first {int(ids[row, col])} at [{row}, {col}]; ids must be >= 0"


def check_request(history: IntArray, candidates: IntArray, *, max_history: int, max_candidates: int) -> str | None:
    """Return what is wrong with one request, or None when it can be scored.

    Triton itself has already checked names, dtypes (int64) and ranks (``[B, L]``, ``[B, N]``).
    """
    if history.shape[0] != candidates.shape[0]:
        return f"history has {history.shape[0]} user row(s) but candidates has {candidates.shape[0]}"
    if history.shape[1] > max_history:
        return f"history has {history.shape[1]} items; this model reads at most {max_history} (send the most recent)"
    if candidates.shape[1] == 0:
        return "candidates is empty: send at least one candidate id"
    if candidates.shape[1] > max_candidates:
        return f"candidates has {candidates.shape[1]} ids; at most {max_candidates} per request"
    return _negative_positions("history", history) or _negative_positions("candidates", candidates)


def pack_requests(pairs: list[tuple[IntArray, IntArray]], history_len: int) -> tuple[IntArray, IntArray]:
    """Stack requests into one ``[B, history_len]`` history and ``[B, N]`` candidate array.

    Histories are right-aligned (left-padded with 0) to the graph's fixed ``L``; candidates are left-aligned
    (right-padded with 0) to the longest list of the batch.
    """
    rows = sum(h.shape[0] for h, _ in pairs)
    width = history_len
    n_max = max(c.shape[1] for _, c in pairs)
    histories = np.zeros((rows, width), dtype=np.int64)
    candidates = np.zeros((rows, n_max), dtype=np.int64)
    at = 0
    for history, cands in pairs:
        b = history.shape[0]
        if history.shape[1]:
            histories[at : at + b, width - history.shape[1] :] = history
        candidates[at : at + b, : cands.shape[1]] = cands
        at += b
    return histories, candidates


def split_scores(scores: FloatArray, pairs: list[tuple[IntArray, IntArray]]) -> list[FloatArray]:
    """Cut the batch's ``[B, N_max]`` scores back into one ``[b, n]`` array per request."""
    out: list[FloatArray] = []
    at = 0
    for _, cands in pairs:
        b, n = cands.shape
        out.append(np.ascontiguousarray(scores[at : at + b, :n], dtype=np.float32))
        at += b
    return out


def pack_ragged(pairs: list[tuple[IntArray, IntArray]]) -> tuple[IntArray, IntArray, IntArray]:
    """The batch in the ragged layout: ``history [B, L]``, ``candidates [B, N]``, ``real_index [M]``.

    Histories are right-aligned to the longest real history of the batch (leading all-padding columns dropped,
    at least one column kept); candidates are left-aligned in a grid as wide as the longest list (padded with 0),
    and ``real_index`` holds the flattened grid position of every real candidate, request by request, so the
    scores come back in request order.
    """
    rows = sum(h.shape[0] for h, _ in pairs)
    width = max(max(int((h != 0).sum(axis=1).max(initial=0)) for h, _ in pairs), 1)
    n_max = max(c.shape[1] for _, c in pairs)
    history = np.zeros((rows, width), dtype=np.int64)
    candidates = np.zeros((rows, n_max), dtype=np.int64)
    real = []
    at = 0
    for h, c in pairs:
        b, n = c.shape
        kept = h[:, -width:] if h.shape[1] >= width else h
        history[at : at + b, width - kept.shape[1] :] = kept
        candidates[at : at + b, :n] = c
        real.append(((np.arange(at, at + b, dtype=np.int64) * n_max)[:, None] + np.arange(n)).reshape(-1))
        at += b
    return history, candidates, np.concatenate(real)


def split_ragged(scores: FloatArray, pairs: list[tuple[IntArray, IntArray]]) -> list[FloatArray]:
    """Cut the batch's ``[M]`` scores back into one ``[b, n]`` array per request."""
    out: list[FloatArray] = []
    at = 0
    for _, cands in pairs:
        b, n = cands.shape
        out.append(np.ascontiguousarray(scores[at : at + b * n].reshape(b, n), dtype=np.float32))
        at += b * n
    return out


def cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs the cgroup's CFS quota allows (Kubernetes CPU limits), None when there is none or it cannot be read.

    cgroup v2: ``cpu.max`` (``"<quota> <period>"`` or ``"max <period>"``); v1: ``cpu/cpu.cfs_quota_us`` and
    ``cpu/cpu.cfs_period_us`` (quota -1 = none).
    """
    try:
        quota, _, period = (root / "cpu.max").read_text().strip().partition(" ")
        return None if quota == "max" or not period else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us


def serving_cpus(root: Path = Path("/sys/fs/cgroup")) -> int:
    """CPUs the server may really use: its affinity mask, capped by the cgroup CPU quota (at least 1).

    On a Kubernetes node, ``sched_getaffinity`` sees every core of the node while the container's CPU limit is a
    quota: threads sized by the node's cores would be throttled. A fractional quota rounds down.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    limit = cgroup_cpu_limit(root)
    return max(1, min(cores, int(limit)) if limit is not None else cores)


def session_threads(config: dict[str, Any], root: Path = Path("/sys/fs/cgroup")) -> int:
    """ONNX Runtime threads of each instance of the model ``config`` (Triton's JSON form of config.pbtxt).

    The config's ``intra_op_threads`` parameter when set; otherwise (``0``) the CPUs the server may use are shared
    out between the model's instances: 2 instances under an 8-CPU limit get 4 threads each.
    """
    params = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
    instances = sum(int(group.get("count", 1)) for group in config.get("instance_group", [])) or 1
    return int(params.get("intra_op_threads", "0")) or max(1, serving_cpus(root) // instances)


_INPUT_NAMES = {"history", "candidates", "real_index", "candidate_offsets"}


class OpenVinoSession:
    """An OpenVINO compiled model behind ONNX Runtime's ``run(output_names, feeds)`` call."""

    def __init__(self, path: Path, threads: int) -> None:
        import openvino as ov  # heavy; only for the openvino runtime

        # f32: OpenVINO's CPU plugin would otherwise run float layers in bf16 on AMX/AVX512-BF16 CPUs;
        # LATENCY: one stream per compiled model, like one ONNX Runtime session per instance.
        config = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
        self.compiled = ov.Core().compile_model(str(path), "CPU", config)

    def run(self, output_names: list[str], feeds: dict[str, Any]) -> list[Any]:
        """Score ``feeds``; returns the outputs named, in order."""
        results = self.compiled(feeds)
        return [results[self.compiled.output(name)] for name in output_names]

    def get_inputs(self) -> list[SimpleNamespace]:
        """The model's inputs, each with a ``name`` (as ONNX Runtime's ``get_inputs()`` gives them).

        A port may carry several tensor names (the ONNX input's and those of what consumes it directly); the
        contract's name wins over the one OpenVINO would pick.
        """
        inputs = []
        for port in self.compiled.inputs:
            names = port.get_names() & _INPUT_NAMES
            inputs.append(SimpleNamespace(name=min(names) if names else port.get_any_name()))
        return inputs


RUNTIMES = ("onnxruntime", "openvino")
LAYOUTS = ("ragged", "padded")


def check_layout(layout: str, input_names: set[str], file_name: str) -> None:
    """Refuse a ``layout`` parameter that does not fit the loaded graph (the ragged graph takes ``real_index``).

    Raises:
        ValueError: an unknown layout, or one the graph was not exported for (e.g. ``ragged`` on the padded INT8
            file of ``tritonrec quantize``); the model then fails to load with this message.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if "user_index" in input_names:
        raise ValueError(
            f"{file_name} is the ragged graph of an earlier tritonrec (it takes user_index; this model.py feeds "
            "real_index): export it again with `tritonrec export onnx` and rebuild the repository"
        )
    graph = "ragged" if "real_index" in input_names else "padded"
    if graph != layout:
        raise ValueError(
            f"{file_name} is a {graph} graph (inputs {', '.join(sorted(input_names))}) but the config's layout "
            f"parameter is {layout!r}: set layout to {graph!r} or serve the {layout} graph"
        )


def open_session(path: Path, threads: int = 0, runtime: str = "onnxruntime") -> Any:
    """The CPU session this model serves with, ``threads`` intra-op threads (0 = every core).

    ``runtime`` is ``onnxruntime`` (an ONNX Runtime session) or ``openvino`` (:class:`OpenVinoSession`).
    ``tritonrec bench efficiency`` and ``tritonrec quantize`` open the same session in process.

    Raises:
        ValueError: an unknown runtime.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
    if runtime == "openvino":
        return OpenVinoSession(path, threads or serving_cpus())
    import onnxruntime as ort  # heavy; only needed inside the server

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or serving_cpus()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Idle ORT threads must not spin: they would take the cores Triton's gRPC and batching threads need.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


class TritonPythonModel:
    """The model object the Python backend instantiates once per model instance."""

    def initialize(self, args: dict[str, str]) -> None:
        """Open the ONNX Runtime session named by the config's ``onnx_file`` parameter."""
        config = json.loads(args["model_config"])
        params = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
        self.max_history = int(params["max_history"])
        self.max_candidates = int(params["max_candidates"])
        path = Path(args["model_repository"]) / args["model_version"] / params.get("onnx_file", "model.onnx")
        self.session = open_session(path, session_threads(config), params.get("runtime", "onnxruntime"))
        self.output_name = "scores"
        self.layout = params.get("layout", "padded")
        self.cancel_check = params.get("cancel_check", "0") == "1"  # off: Triton drops those cancelled in the queue
        check_layout(self.layout, {i.name for i in self.session.get_inputs()}, path.name)

    def _error(self, message: str, code: Any = None) -> Any:
        error = pb_utils.TritonError(message, code if code is not None else pb_utils.TritonError.INVALID_ARG)
        return pb_utils.InferenceResponse(output_tensors=[], error=error)

    def _scores(self, pairs: list[tuple[IntArray, IntArray]]) -> list[FloatArray]:
        if self.layout == "ragged":
            history, grid, real = pack_ragged(pairs)
            feeds = {"history": history, "candidates": grid, "real_index": real}
            (scores,) = self.session.run([self.output_name], feeds)
            return split_ragged(np.asarray(scores), pairs)
        histories, candidates = pack_requests(pairs, self.max_history)
        (scores,) = self.session.run([self.output_name], {"history": histories, "candidates": candidates})
        return split_scores(np.asarray(scores), pairs)

    def _answer(self, i: int, pair: tuple[IntArray, IntArray], responses: list[Any]) -> None:
        """Score one request of a failed batch alone: its own scores, or its own INTERNAL error."""
        try:
            (part,) = self._scores([pair])
        except Exception as e:  # noqa: BLE001 - ONNX Runtime raises many types; each request gets its own answer
            responses[i] = self._error(f"ONNX Runtime failed on this request: {e}", pb_utils.TritonError.INTERNAL)
            return
        responses[i] = pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("scores", part)])

    def execute(self, requests: list[Any]) -> list[Any]:
        """Score every valid request of the batch in one session run; answer bad ones with INVALID_ARG."""
        responses: list[Any] = [None] * len(requests)
        good: list[int] = []
        pairs: list[tuple[IntArray, IntArray]] = []
        cancelled = getattr(pb_utils.TritonError, "CANCELLED", pb_utils.TritonError.UNAVAILABLE)
        for i, request in enumerate(requests):
            if self.cancel_check and request.is_cancelled():  # one round trip to the server per request
                responses[i] = self._error("the request was cancelled before it was scored", cancelled)
                continue
            history = pb_utils.get_input_tensor_by_name(request, "history").as_numpy()
            candidates = pb_utils.get_input_tensor_by_name(request, "candidates").as_numpy()
            problem = check_request(
                history, candidates, max_history=self.max_history, max_candidates=self.max_candidates
            )
            if problem is not None:
                responses[i] = self._error(problem)
            else:
                good.append(i)
                pairs.append((history, candidates))
        if not pairs:
            return responses
        try:
            parts = self._scores(pairs)
        except Exception:  # noqa: BLE001 - score the requests one by one instead of failing them all
            for i, pair in zip(good, pairs, strict=True):
                self._answer(i, pair, responses)
            return responses
        for i, part in zip(good, parts, strict=True):
            responses[i] = pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("scores", part)])
        return responses

    def finalize(self) -> None:
        """Release the session."""
        self.session = None
