"""Export a ranking model as a ``torch.export`` program (``model.pt2``), the artifact ``ranker_gpu`` serves.

The program needs torch only, not tritonrec: the Python-backend model (``ranker_gpu_model.py``) loads it with
``torch.export.load`` and moves it to its device with ``torch.export.passes.move_to_device_pass``. Shapes follow
the ONNX graph contract: ``history`` int64 ``[users, L]`` (``L`` = ``FeatureSpec.history_len``, fixed),
``candidates`` int64 ``[users, candidates]``, both ``users`` and ``candidates`` dynamic; output float32 logits
``[users, candidates]``. The program is exported in FP32 on the CPU; BF16/FP16 are chosen where it runs
(autocast), so one file serves every precision and every device.

``program.json`` beside it (so the folder may also hold the ONNX export and its ``export.json``) records the
FeatureSpec (what the repository builder reads), the torch version that wrote the file (``torch.export`` files
are read by the same or a newer torch) and a parity record of the program against the eager model on
real-looking, OOV and empty-history rows (FP32, CPU).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from tritonrec.data.splits import EvalSet, FeatureBatch
from tritonrec.errors import ExportError
from tritonrec.export.manifest import PROGRAM_REPORT_FILE
from tritonrec.export.parity import ParityRecord, compare_scorers, parity_batches
from tritonrec.metrics import Scorer
from tritonrec.model.ranker import RankingModel
from tritonrec.scorers.eager import torch_scorer

__all__ = ["PROGRAM_FILE", "PROGRAM_TOLERANCE", "TorchExport", "export_program", "random_rows"]

PROGRAM_FILE = "model.pt2"
PROGRAM_TOLERANCE = (1e-5, 1e-5)
"""``(atol, rtol)`` of the exported program against eager FP32 on the CPU: the same kernels, so near-identical."""
_EXAMPLE_USERS, _EXAMPLE_CANDIDATES = 3, 5  # not 0 or 1: torch.export would specialize those sizes
_MAX_USERS, _MAX_CANDIDATES = 65_536, 65_536


@dataclass(frozen=True, slots=True)
class TorchExport:
    """What :func:`export_program` wrote.

    Attributes:
        path: the ``model.pt2`` file.
        torch_version: the torch that exported it.
        parity: the program against the eager model (FP32, CPU).
    """

    path: Path
    torch_version: str
    parity: ParityRecord

    def to_dict(self, model: RankingModel) -> dict[str, Any]:
        """The JSON written to ``program.json``."""
        return {
            "format": "torch.export",
            "program": self.path.name,
            "torch": self.torch_version,
            "feature_spec": model.spec.to_dict(),
            "model_config": model.config.to_dict(),
            "parity": [self.parity.to_dict()],
        }


def random_rows(model: RankingModel, n_users: int, n_candidates: int, *, seed: int = 0) -> EvalSet:
    """Rows of random in-catalogue ids (full histories) for parity checks where no dataset is at hand."""
    rng = np.random.default_rng(seed)
    n_items = model.spec.n_items
    histories = rng.integers(1, n_items + 1, (n_users, model.spec.history_len), dtype=np.int64)
    candidates = rng.integers(1, n_items + 1, (n_users, n_candidates), dtype=np.int64)
    return EvalSet(histories, candidates, np.zeros(candidates.shape, dtype=np.float32))


def _program_scorer(module: torch.nn.Module) -> Scorer:
    def score(batch: FeatureBatch) -> npt.NDArray[np.float32]:
        with torch.inference_mode():
            histories = torch.from_numpy(np.ascontiguousarray(batch.histories, dtype=np.int64))
            candidates = torch.from_numpy(np.ascontiguousarray(batch.candidates, dtype=np.int64))
            scores: torch.Tensor = module(histories, candidates)
            return scores.float().numpy()

    return score


def export_program(model: RankingModel, out_dir: Path, *, rows: EvalSet | None = None) -> TorchExport:
    """Write ``model.pt2`` and ``program.json`` into ``out_dir``.

    Args:
        model: the model (a CPU copy in eval mode is exported; the model itself is not changed).
        out_dir: output folder.
        rows: evaluation rows for the parity check (default: random in-catalogue rows).

    Raises:
        ExportError: ``torch.export`` failed, or the program's scores are past :data:`PROGRAM_TOLERANCE`.
    """
    source = copy.deepcopy(model).to("cpu").eval()
    spec = source.spec
    users = torch.export.Dim("users", min=1, max=_MAX_USERS)
    candidates = torch.export.Dim("candidates", min=1, max=_MAX_CANDIDATES)
    example = (
        torch.ones((_EXAMPLE_USERS, spec.history_len), dtype=torch.int64),
        torch.ones((_EXAMPLE_USERS, _EXAMPLE_CANDIDATES), dtype=torch.int64),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / PROGRAM_FILE
    try:
        with torch.no_grad():
            program = torch.export.export(
                source, example, dynamic_shapes={"histories": {0: users}, "candidates": {0: users, 1: candidates}}
            )
        torch.export.save(program, path)
    except Exception as e:  # torch raises many types here; the message is what the user needs
        raise ExportError(f"torch.export of the ranker failed: {type(e).__name__}: {e}") from e
    loaded = torch.export.load(path).module()
    check_rows = rows if rows is not None else random_rows(source, 64, 50)
    parity = compare_scorers(
        torch_scorer(source),
        _program_scorer(loaded),
        parity_batches(check_rows, spec.n_items, n_rows=64),
        reference_name="eager fp32",
        candidate_name="torch.export fp32",
        atol=PROGRAM_TOLERANCE[0],
        rtol=PROGRAM_TOLERANCE[1],
    )
    result = TorchExport(path=path, torch_version=torch.__version__, parity=parity)
    (out_dir / PROGRAM_REPORT_FILE).write_text(json.dumps(result.to_dict(source), indent=2, sort_keys=True) + "\n")
    parity.raise_if_failed()
    return result
