"""The bundled ``RankingModel`` as a model spec: one spec among others, taken through the same commands.

:func:`write_bundled_spec` writes ``spec.toml`` (the checkpoint through the factory
:func:`~tritonrec.train.checkpoint.checkpoint_module`; ``history`` a query input of ``L`` ids, ``candidates`` an item
input, ``scores`` the logits) and ``rows.parquet``: a row per (user, candidate) of the dataset's test split, its
history repeated on the user's rows, the label, and ``evaluate`` marking the test users; validation users are the
calibration side. The spec's metrics (:func:`~tritonrec.metrics.grouped_metrics`) rank within each user, so its
NDCG@K, HR@K and MRR are the bundled evaluation's; its AUC pools all rows (the bundled ``auc_global``).
Legend: U = users, C = candidates per user, L = history length.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tritonrec.contract import CANDIDATES, HISTORY, SCORES
from tritonrec.data.registry import PreparedData
from tritonrec.data.splits import EvalSet
from tritonrec.errors import ConfigError
from tritonrec.export.spec_export import SpecExport
from tritonrec.pipeline.spec_steps import spec_export_step
from tritonrec.spec import ModelSpec, load_spec
from tritonrec.train.checkpoint import load_checkpoint

__all__ = ["BUNDLED_SPEC_NAME", "BundledSpec", "BundledSpecStep", "bundled_spec_step", "write_bundled_spec"]

BUNDLED_SPEC_NAME = "ranking_model"
"""The spec's name: its served variants are ``ranking_model_cpu`` etc., beside the bundled ``ranker_cpu``."""
SPEC_FILE, ROWS_FILE = "spec.toml", "rows.parquet"

_SPEC = """# The bundled RankingModel as a model spec (written by `tritonrec export spec`).
name = "{name}"
[model]
factory = "tritonrec.train.checkpoint:checkpoint_module"
factory_kwargs = {{ directory = "{checkpoint}" }}
[[inputs]]
name = "{history}"
dtype = "int64"
shape = [{history_len}]
role = "query"
[[inputs]]
name = "{candidates}"
dtype = "int64"
shape = []
role = "item"
[output]
name = "{scores}"
kind = "logit"
[data]
path = "{rows}"
evaluate_column = "evaluate"
[metrics]
cutoffs = [5, 10]
"""


@dataclass(frozen=True, slots=True)
class BundledSpec:
    """What :func:`write_bundled_spec` wrote.

    Attributes:
        path: the spec file.
        rows: the Parquet file.
        evaluate_users: test users written (the evaluation side).
        calibrate_users: validation users written (the calibration side).
    """

    path: Path
    rows: Path
    evaluate_users: int
    calibrate_users: int


def _table(rows: EvalSet, evaluate: bool, first_user: int) -> object:
    import pyarrow as pa

    users, c = rows.candidates.shape
    history = np.repeat(rows.histories, c, axis=0).reshape(-1)
    offsets = np.arange(0, users * c + 1, dtype=np.int32) * rows.histories.shape[1]
    return pa.table(
        {
            "query_id": np.repeat(np.arange(first_user, first_user + users, dtype=np.int64), c),
            HISTORY: pa.ListArray.from_arrays(pa.array(offsets), pa.array(history)),
            CANDIDATES: rows.candidates.reshape(-1),
            "label": rows.labels.reshape(-1).astype(np.int8),
            "evaluate": np.full(users * c, evaluate),
        }
    )


def write_bundled_spec(
    checkpoint: Path, data: PreparedData, out: Path, *, users: int = 0, calibration_users: int = 2000, seed: int = 0
) -> BundledSpec:
    """Write the checkpoint's spec and the dataset's rows into ``out``.

    Args:
        checkpoint: the bundled model's checkpoint folder.
        data: its dataset (the test split evaluates, the validation split calibrates).
        out: the folder (``spec.toml``, ``rows.parquet``).
        users: test users written (a seeded random sample; 0 = all, the figure ``make demo`` reports).
        calibration_users: validation users written (a seeded random sample; at least 2 are needed).
        seed: the samples' seed.

    Raises:
        ConfigError: fewer than 2 calibration users.
        CheckpointError: the checkpoint cannot be loaded.
        DataError: it was trained on another item vocabulary than ``data``'s.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if calibration_users < 2:
        raise ConfigError(f"--calibration-users must be >= 2 (calibrate and validate), got {calibration_users}")
    data.check_fits(load_checkpoint(checkpoint).spec, checkpoint)
    test, valid = data.test.sample(users, seed), data.valid.sample(calibration_users, seed)
    out.mkdir(parents=True, exist_ok=True)
    table = pa.concat_tables([_table(test, True, 0), _table(valid, False, len(test))])
    pq.write_table(table, out / ROWS_FILE, compression="zstd")
    text = _SPEC.format(
        name=BUNDLED_SPEC_NAME,
        checkpoint=checkpoint.resolve().as_posix(),
        history=HISTORY,
        history_len=test.histories.shape[1],
        candidates=CANDIDATES,
        scores=SCORES,
        rows=ROWS_FILE,
    )
    (out / SPEC_FILE).write_text(text)
    return BundledSpec(path=out / SPEC_FILE, rows=out / ROWS_FILE, evaluate_users=len(test), calibrate_users=len(valid))


@dataclass(frozen=True, slots=True)
class BundledSpecStep:
    """The bundled model written as a spec and exported through ``export onnx --spec``.

    Attributes:
        written: the spec and rows files.
        spec: the spec read back from its file (what every ``--spec`` command reads).
        export: the spec export (``model.onnx``, parity on the evaluation rows).
    """

    written: BundledSpec
    spec: ModelSpec
    export: SpecExport


def bundled_spec_step(checkpoint: Path, data: PreparedData, out: Path, *, fp16: bool = False) -> BundledSpecStep:
    """Write the checkpoint as a spec into ``out`` (every test user) and export it into ``out/export``.

    Raises:
        as :func:`write_bundled_spec` and :func:`~tritonrec.export.spec_export.export_spec`.
    """
    written = write_bundled_spec(checkpoint, data, out)
    spec = load_spec(written.path)
    return BundledSpecStep(written=written, spec=spec, export=spec_export_step(spec, out / "export", fp16=fp16))
