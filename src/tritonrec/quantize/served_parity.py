"""The winning precision served through Triton: same scores as in process, same ranking quality.

The quantize output folder is an export folder (``model.onnx``, ``export.json``, ``model_int8.*``), so
``ranker_cpu`` with ``cpu_precision="int8"`` (and the winner's runtime; the padded layout, as the INT8 file is a
padded graph) is built from it as any export is, served
by the bundled tritonserver, and every evaluation row is sent as its own gRPC request
(:func:`tritonrec.pipeline.steps.score_served`). The in-process scores come from the same file opened the way
``ranker_cpu`` opens it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tritonrec.backends.ranker_cpu_model import open_session
from tritonrec.data.splits import EvalSet
from tritonrec.metrics import ranking_metrics, score_eval_set
from tritonrec.records import Progress, quiet
from tritonrec.repository import VARIANTS, VariantName, VariantOverrides
from tritonrec.scorers.ort import session_scorer

__all__ = ["ServedCheck", "served_check"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ServedCheck:
    """Served vs in-process scores of one file on one split.

    Attributes:
        variant: the precision variant served.
        runtime: its runtime inside ``ranker_cpu``.
        users: rows scored (one gRPC request each).
        max_abs_diff: largest ``|served - in-process|`` score difference.
        ndcg_served: NDCG@10 of the served scores (``ndcg@10_served`` in JSON).
        ndcg_in_process: NDCG@10 of the in-process scores.
        auc_served: AUC of the served scores.
        auc_in_process: AUC of the in-process scores.
        grpc_requests: requests sent.
        executions: model executions Triton ran for them.
    """

    variant: str
    runtime: str
    users: int
    max_abs_diff: float
    ndcg_served: float
    ndcg_in_process: float
    auc_served: float
    auc_in_process: float
    grpc_requests: int
    executions: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with the metric keys spelled as the metrics module spells them."""
        out = asdict(self)
        for name in ("ndcg", "auc"):
            metric = "ndcg@10" if name == "ndcg" else "auc"
            out[f"{metric}_served"] = out.pop(f"{name}_served")
            out[f"{metric}_in_process"] = out.pop(f"{name}_in_process")
        return out


def served_check(
    folder: Path, rows: EvalSet, *, variant: str, runtime: str, concurrency: int = 16, progress: Progress = quiet
) -> ServedCheck:
    """Serve ``folder``'s INT8 file in ``ranker_cpu`` and compare it with in-process scores over ``rows``."""
    from tritonrec.pipeline.steps import score_served
    from tritonrec.serving.endpoint import local_endpoint

    cpu = VariantOverrides(cpu_precision="int8", cpu_runtime=runtime).apply(VARIANTS[VariantName.CPU])
    in_process = score_eval_set(session_scorer(open_session(folder / cpu.artifact, 0, runtime)), rows)
    progress(f"serving {folder / cpu.artifact} in {cpu.name} ({runtime}) on the bundled tritonserver")
    with local_endpoint(folder, [cpu]) as server:
        served = score_served(server.grpc_url, cpu.name, rows, concurrency=concurrency, progress=progress)
    served_metrics = ranking_metrics(served.scores, rows.labels)
    local_metrics = ranking_metrics(in_process, rows.labels)
    return ServedCheck(
        variant=variant,
        runtime=runtime,
        users=len(rows),
        max_abs_diff=float(np.max(np.abs(served.scores - in_process))) if len(rows) else 0.0,
        ndcg_served=served_metrics["ndcg@10"],
        ndcg_in_process=local_metrics["ndcg@10"],
        auc_served=served_metrics["auc"],
        auc_in_process=local_metrics["auc"],
        grpc_requests=served.grpc_requests,
        executions=served.executions,
    )
