"""A spec's model as a :data:`tritonrec.metrics.RowsScorer`: eager PyTorch, or an ONNX Runtime or OpenVINO session.

Each takes ``{input name: [B, *dims]}`` in the spec's input order and returns float32 scores as the model gives them
(``[B]`` or ``[B, 1]`` for a ranker; :func:`~tritonrec.metrics.score_rows` checks), so the one
metrics module scores the eager module, the exported file and the served model (:func:`served_query_scores`, one
request per query through the client) the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from tritonrec.errors import ConfigError, ExportError
from tritonrec.metrics import RowsScorer
from tritonrec.spec.model_spec import ModelSpec
from tritonrec.spec.rows import SpecRows

if TYPE_CHECKING:
    from torch import nn

__all__ = ["module_rows_scorer", "onnx_rows_scorer", "served_query_scores", "spec_scorer"]


def module_rows_scorer(module: nn.Module, spec: ModelSpec) -> RowsScorer:
    """Score rows with the eager ``module`` (no grad), its inputs passed positionally in the spec's order."""
    import torch

    names = [i.name for i in spec.inputs]

    def score(features: dict[str, npt.NDArray[Any]]) -> npt.NDArray[np.floating[Any]]:
        with torch.no_grad():
            out = module(*(torch.from_numpy(np.ascontiguousarray(features[n])) for n in names))
        scores: npt.NDArray[np.floating[Any]] = out.detach().float().numpy()
        return scores  # [B] or [B, 1] for a ranker; callers check the shape

    return score


def onnx_rows_scorer(path: Path, spec: ModelSpec, *, threads: int = 0, runtime: str = "onnxruntime") -> RowsScorer:
    """Score rows with a CPU session on ``path`` opened as the served ``<name>_cpu`` opens it.

    ``runtime`` is ``onnxruntime`` or ``openvino`` (an ONNX file, or OpenVINO IR ``.xml`` for ``openvino``); the
    model's inputs are named as the spec's.

    Raises:
        ExportError: the file is missing or the runtime cannot load it.
    """
    from tritonrec.backends.rows_cpu_model import open_session

    if not path.is_file():
        raise ExportError(f"{path} not found: `tritonrec export onnx --spec SPEC --out DIR` writes DIR/model.onnx")
    try:
        session = open_session(path, threads, runtime)
    except Exception as e:  # onnxruntime and openvino raise their own types
        raise ExportError(f"{path}: {runtime} cannot load it: {e}") from e
    names = [i.name for i in spec.inputs]

    def score(features: dict[str, npt.NDArray[Any]]) -> npt.NDArray[np.floating[Any]]:
        (out,) = session.run([spec.output.name], {n: features[n] for n in names})
        return np.asarray(out, dtype=np.float32)

    return score


def spec_scorer(spec: ModelSpec, runtime: str, path: Path | None = None, *, threads: int = 0) -> RowsScorer:
    """The spec's model in ``runtime``: ``eager`` (its module), or ``onnxruntime`` / ``openvino`` on ``path``.

    ``threads``: torch's threads (eager) or the session's intra-op threads; 0 keeps the runtime's default.

    Raises:
        ConfigError: eager on a spec that names an ONNX file, or no ``path`` for a graph runtime.
        ExportError: the module or the graph cannot be loaded.
    """
    if runtime == "eager":
        import torch

        from tritonrec.spec.module import load_module

        if threads:
            torch.set_num_threads(threads)
        return module_rows_scorer(load_module(spec), spec)
    if path is None:
        raise ConfigError(f"{runtime} scores a graph file: none was given")
    return onnx_rows_scorer(path, spec, threads=threads, runtime=runtime)


def served_query_scores(
    url: str, model: str, rows: SpecRows, *, concurrency: int = 16, timeout_s: float = 30.0
) -> npt.NDArray[np.float64]:
    """Score ``rows`` through a served model, one request per query (its rows), ``concurrency`` in flight.

    Returns ``[R]`` scores in the rows' order, as :func:`~tritonrec.metrics.score_rows` gives in process, so the
    one metrics module judges the served model on the same rows.

    Raises:
        ClientError: a request failed (the first, in query order).
    """
    from concurrent.futures import ThreadPoolExecutor

    from tritonrec.client import ClientOptions, RankingClient

    queries = list(rows.queries())
    scores = np.zeros(len(rows), dtype=np.float64)
    with RankingClient(url, model=model, options=ClientOptions(timeout_s=timeout_s)) as client:

        def one(bounds: tuple[int, int]) -> npt.NDArray[np.float32]:
            return client.score_rows(rows.batch(*bounds))

        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            for (start, stop), part in zip(queries, pool.map(one, queries), strict=True):
                scores[start:stop] = part
    return scores
