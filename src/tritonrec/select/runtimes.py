"""Each in-process runtime of a candidate as a :data:`tritonrec.metrics.Scorer`.

The speed worker times these scorers and the quality step scores the test split through the same ones, with the
shared metrics module (``tritonrec evaluate`` opens ONNX files and checkpoints the same way). Imports are local:
the ONNX Runtime paths never load torch, the PyTorch paths load it only when asked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tritonrec.data.splits import FeatureBatch
from tritonrec.errors import ConfigError
from tritonrec.metrics import Scorer
from tritonrec.select.candidates import Precision, Runtime

__all__ = ["open_scorer"]


def _torch_scorer(checkpoint: Path, precision: Precision, threads: int, *, compiled: bool) -> Scorer:
    import torch

    from tritonrec.scorers.eager import torch_scorer
    from tritonrec.train.checkpoint import load_checkpoint

    if threads:
        torch.set_num_threads(threads)
    model: Any = load_checkpoint(checkpoint).model.eval()
    if compiled:
        model = torch.compile(model, dynamic=True)
    scorer = torch_scorer(model)
    if precision is Precision.FP32:
        return scorer

    def bf16(batch: FeatureBatch) -> npt.NDArray[np.float32]:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return np.asarray(scorer(batch), dtype=np.float32)

    return bf16


def _served_session_scorer(path: Path, threads: int, runtime: str = "onnxruntime") -> Scorer:
    """The session ``ranker_cpu`` serves with (its threads, no spinning), fed the layout the graph's inputs name."""
    from tritonrec.backends.ranker_cpu_model import open_session
    from tritonrec.scorers.ort import session_scorer

    return session_scorer(open_session(path, threads, runtime))


def open_scorer(runtime: Runtime, precision: Precision, artifact: Path, *, threads: int = 0) -> Scorer:
    """Load ``artifact`` in ``runtime`` and return its scorer (``threads`` 0 = the runtime's default).

    ONNX graphs (``onnxruntime`` and ``triton`` candidates) are opened as ``ranker_cpu`` opens them inside the
    server (its thread count, no spinning), so in-process figures are the served model's own compute and the two
    runtimes differ only by serving; ``openvino`` candidates as ``ranker_cpu`` opens them with its ``openvino``
    runtime.

    Raises:
        ConfigError: the runtime cannot run in process here.
    """
    if runtime in (Runtime.EAGER, Runtime.COMPILE):
        return _torch_scorer(artifact, precision, threads, compiled=runtime is Runtime.COMPILE)
    if runtime in (Runtime.ONNXRUNTIME, Runtime.TRITON, Runtime.OPENVINO, Runtime.TRITON_OPENVINO):
        return _served_session_scorer(artifact, threads, runtime.cpu_runtime)
    raise ConfigError(f"{runtime.value} does not run in process on this machine")
