"""Triton Python-backend model of ``ranker_gpu``: the exported PyTorch ranker on CUDA over the whole dynamic batch.

``tritonrec repo build`` copies this file verbatim to ``ranker_gpu/<version>/model.py``. It imports only torch and
Triton's ``triton_python_backend_utils`` (no tritonrec, no numpy): the artifact beside it is a ``torch.export``
program (``model.pt2``, written by ``tritonrec.export.torch_export``). The pure parts below (request checks,
packing, shape buckets, :class:`ProgramRunner`) are imported and unit-tested from ``tritonrec``, and the in-process
GPU scorer (``tritonrec.scorers.torch_device``) runs the same :class:`ProgramRunner`.

Tensors cross the stub through DLPack (``to_dlpack`` / ``Tensor.from_dlpack``), never ``as_numpy()``: the Python
backend stub of Triton 2.51 (the nvidia-pytriton 0.7.0 wheel) is built with pybind11 2.10, whose numpy bridge
breaks under numpy 2 (``as_numpy`` outputs arrive empty), while the DLPack path works with numpy 1 and 2 alike
(checked with the 3.11 and 3.12 stubs here). The GPU machine has numpy 2.

One ``execute()`` call gets every request of a dynamic batch (the inputs are ``allow_ragged_batch``). Each
request is checked on its own and a bad one gets its own INVALID_ARG answer, with the same messages as
``ranker_cpu``; the good ones are packed into one ``[B, L]`` / ``[B, N]`` pair (histories left-padded with 0 to
``max_history``, candidates right-padded with 0), scored in one run on the instance's device and split back.

Config parameters: ``max_history``, ``max_candidates`` (the request limits), ``precision`` (``fp32``, ``bf16``,
``fp16``: autocast on the device; the program's weights stay FP32), ``cuda_graphs`` (``1``: replay one CUDA graph
per bucketed batch shape, ``0``: eager), ``program_file`` and ``intra_op_threads`` (CPU threads per instance;
``0`` = the usable cores shared out between the instances). The device is the instance's: ``KIND_GPU`` instance
``i`` runs on ``cuda:i``, ``KIND_CPU`` on the CPU (how CI checks this file against the eager model).

Every row of a batch is scored independently (attention runs within a user's own history and candidates), so
padding rows and columns, and stale values left in a CUDA graph's static input buffers beyond the current batch,
never change the scores returned.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Idle OpenMP threads sleep instead of spinning (read when torch loads): spinning threads would take the cores
# Triton's gRPC and batching threads need (ranker_cpu turns ONNX Runtime's spinning off for the same reason).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from torch import Tensor  # noqa: E402
from torch.utils.dlpack import from_dlpack  # noqa: E402

try:  # present only inside the Triton Python backend
    import triton_python_backend_utils as pb_utils
except ImportError:  # imported for its pure functions (tests, tritonrec.scorers)
    pb_utils = None

__all__ = [
    "PRECISIONS",
    "ProgramRunner",
    "TritonPythonModel",
    "bucket_candidates",
    "bucket_users",
    "check_request",
    "load_program",
    "pack_requests",
    "split_scores",
]

PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
"""Precision name -> autocast dtype (None: plain FP32)."""

Module = Callable[[Tensor, Tensor], Tensor]


def _negative_positions(name: str, ids: Tensor) -> str | None:
    bad = (ids < 0).nonzero()
    if bad.shape[0] == 0:
        return None
    row, col = (int(v) for v in bad[0])
    return f"{name} has {bad.shape[0]} negative id(s), first {int(ids[row, col])} at [{row}, {col}]; ids must be >= 0"


def check_request(history: Tensor, candidates: Tensor, *, max_history: int, max_candidates: int) -> str | None:
    """Return what is wrong with one request, or None when it can be scored (``ranker_cpu``'s rules and messages).

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


def pack_requests(pairs: list[tuple[Tensor, Tensor]], history_len: int) -> tuple[Tensor, Tensor]:
    """Stack requests into one ``[B, history_len]`` history and ``[B, N]`` candidate tensor (on the CPU).

    Histories are right-aligned (left-padded with 0) to ``history_len``; candidates are left-aligned
    (right-padded with 0) to the longest list of the batch.
    """
    rows = sum(int(h.shape[0]) for h, _ in pairs)
    n_max = max(int(c.shape[1]) for _, c in pairs)
    histories = torch.zeros((rows, history_len), dtype=torch.int64)
    candidates = torch.zeros((rows, n_max), dtype=torch.int64)
    at = 0
    for history, cands in pairs:
        b = int(history.shape[0])
        if history.shape[1]:
            histories[at : at + b, history_len - history.shape[1] :] = history
        candidates[at : at + b, : cands.shape[1]] = cands
        at += b
    return histories, candidates


def split_scores(scores: Tensor, pairs: list[tuple[Tensor, Tensor]]) -> list[Tensor]:
    """Cut the batch's ``[B, N_max]`` scores back into one contiguous float32 ``[b, n]`` tensor per request."""
    out: list[Tensor] = []
    at = 0
    for _, cands in pairs:
        b, n = int(cands.shape[0]), int(cands.shape[1])
        out.append(scores[at : at + b, :n].to(torch.float32).contiguous())
        at += b
    return out


def bucket_users(users: int) -> int:
    """The CUDA-graph batch size for ``users``: the next power of two up to 64, then the next multiple of 64."""
    if users <= 64:
        return 1 << max(users - 1, 0).bit_length()
    return -(-users // 64) * 64


def bucket_candidates(candidates: int, step: int = 8) -> int:
    """The CUDA-graph candidate width for ``candidates``: the next multiple of ``step``."""
    return -(-candidates // step) * step


def load_program(path: Path, device: torch.device) -> torch.nn.Module:
    """Load a ``torch.export`` program, move it to ``device`` and return it as a callable module."""
    from torch.export.passes import move_to_device_pass

    program = torch.export.load(str(path))
    module: torch.nn.Module = move_to_device_pass(program, device).module()
    return module


class _Graph:
    """One captured CUDA graph of the module at a fixed ``[users, L]`` / ``[users, candidates]`` shape."""

    def __init__(self, run: Callable[[Tensor, Tensor], Tensor], shape: tuple[int, int, int], device: torch.device,
                 pool: Any) -> None:  # fmt: skip
        users, history_len, candidates = shape
        self.histories = torch.zeros((users, history_len), dtype=torch.int64, device=device)
        self.candidates = torch.zeros((users, candidates), dtype=torch.int64, device=device)
        side = torch.cuda.Stream(device)  # type: ignore[no-untyped-call]
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):  # warm-up runs on a side stream, as graph capture requires
            for _ in range(2):
                run(self.histories, self.candidates)
        torch.cuda.current_stream(device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, pool=pool):
            self.scores = run(self.histories, self.candidates)

    def __call__(self, histories: Tensor, candidates: Tensor) -> Tensor:
        b, n = histories.shape[0], candidates.shape[1]
        self.histories[:b].copy_(histories, non_blocking=True)
        self.candidates[:b, :n].copy_(candidates, non_blocking=True)
        self.graph.replay()
        return self.scores[:b, :n]


class ProgramRunner:
    """Runs a ranker module on one device in one precision, through CUDA graphs per bucketed shape if asked.

    Args:
        module: ``(histories [B, L] int64, candidates [B, N] int64) -> logits [B, N]``, already on ``device``.
        device: where it runs.
        precision: ``fp32``, ``bf16`` or ``fp16`` (autocast on ``device``; ``fp32`` = none).
        cuda_graphs: capture and replay a CUDA graph per bucketed shape (CUDA only).
        candidate_step: candidate widths are rounded up to a multiple of this for graphs.
        max_graphs: at most this many graphs; shapes beyond them run eagerly.
    """

    def __init__(
        self,
        module: Module,
        device: torch.device,
        *,
        precision: str = "fp32",
        cuda_graphs: bool = False,
        candidate_step: int = 8,
        max_graphs: int = 48,
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
        if cuda_graphs and device.type != "cuda":
            raise ValueError(f"CUDA graphs need a CUDA device, got {device}")
        self.module = module
        self.device = device
        self.precision = precision
        self.cuda_graphs = cuda_graphs
        self.candidate_step = candidate_step
        self.max_graphs = max_graphs
        self.graphs: OrderedDict[tuple[int, int, int], _Graph] = OrderedDict()
        self._pool: Any = torch.cuda.graph_pool_handle() if cuda_graphs else None

    def _eager(self, histories: Tensor, candidates: Tensor) -> Tensor:
        dtype = PRECISIONS[self.precision]
        # no autocast weight cache: a CUDA graph must record the casts, not read a cache freed after capture
        autocast = torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None, cache_enabled=False)
        with torch.inference_mode(), autocast:
            scores: Tensor = self.module(histories, candidates)
        return scores.float()

    def run(self, histories: Tensor, candidates: Tensor) -> Tensor:
        """Score inputs already on the device; returns float32 ``[B, N]`` on the device.

        With CUDA graphs the result is a view of the graph's output buffer: read it before the next call.
        """
        if not self.cuda_graphs:
            return self._eager(histories, candidates)
        shape = (
            bucket_users(int(histories.shape[0])),
            int(histories.shape[1]),
            bucket_candidates(int(candidates.shape[1]), self.candidate_step),
        )
        graph = self.graphs.get(shape)
        if graph is None:
            if len(self.graphs) >= self.max_graphs:
                return self._eager(histories, candidates)
            with torch.inference_mode():
                graph = _Graph(self._eager, shape, self.device, self._pool)
            self.graphs[shape] = graph
        with torch.inference_mode():
            return graph(histories, candidates)

    def score(self, histories: Tensor, candidates: Tensor) -> Tensor:
        """Score CPU tensors: copy them to the device, run, and return float32 ``[B, N]`` scores on the CPU."""
        on_device = self.device.type != "cpu"
        h = histories.to(self.device, non_blocking=True) if on_device else histories
        c = candidates.to(self.device, non_blocking=True) if on_device else candidates
        return self.run(h, c).to("cpu")


def _device(args: dict[str, str]) -> torch.device:
    if args.get("model_instance_kind", "CPU") == "GPU":
        return torch.device(f"cuda:{int(args.get('model_instance_device_id', '0'))}")
    return torch.device("cpu")


def _cpu_threads(config: dict[str, Any], params: dict[str, str]) -> int:
    instances = sum(int(group.get("count", 1)) for group in config.get("instance_group", [])) or 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return int(params.get("intra_op_threads", "0")) or max(1, cores // instances)


class TritonPythonModel:
    """The model object the Python backend instantiates once per model instance."""

    def initialize(self, args: dict[str, str]) -> None:
        """Load the program named by ``program_file`` onto this instance's device."""
        config = json.loads(args["model_config"])
        params = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
        self.max_history = int(params["max_history"])
        self.max_candidates = int(params["max_candidates"])
        torch.set_num_threads(_cpu_threads(config, params))
        device = _device(args)
        path = Path(args["model_repository"]) / args["model_version"] / params.get("program_file", "model.pt2")
        self.runner = ProgramRunner(
            load_program(path, device),
            device,
            precision=params.get("precision", "fp32"),
            cuda_graphs=params.get("cuda_graphs", "0") == "1" and device.type == "cuda",
        )

    def _error(self, message: str, code: Any = None) -> Any:
        error = pb_utils.TritonError(message, code if code is not None else pb_utils.TritonError.INVALID_ARG)
        return pb_utils.InferenceResponse(output_tensors=[], error=error)

    def execute(self, requests: list[Any]) -> list[Any]:
        """Score every valid request of the batch in one run; answer bad ones with INVALID_ARG."""
        responses: list[Any] = [None] * len(requests)
        good: list[int] = []
        pairs: list[tuple[Tensor, Tensor]] = []
        for i, request in enumerate(requests):
            history = from_dlpack(pb_utils.get_input_tensor_by_name(request, "history").to_dlpack())
            candidates = from_dlpack(pb_utils.get_input_tensor_by_name(request, "candidates").to_dlpack())
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
            scores = self.runner.score(*pack_requests(pairs, self.max_history))
        except Exception as e:  # noqa: BLE001 - answer each request instead of failing the batch blindly
            for i in good:
                responses[i] = self._error(f"the ranker failed on this batch: {e}", pb_utils.TritonError.INTERNAL)
            return responses
        for i, part in zip(good, split_scores(scores, pairs), strict=True):
            output = pb_utils.Tensor.from_dlpack("scores", part.__dlpack__())
            responses[i] = pb_utils.InferenceResponse(output_tensors=[output])
        return responses

    def finalize(self) -> None:
        """Release the program and its graphs."""
        self.runner = None  # type: ignore[assignment]
