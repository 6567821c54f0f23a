"""Checkpoints: weights + FeatureSpec + ModelConfig + metrics (+ lineage), with a format version.

A checkpoint is a directory::

    checkpoint.json   {"format": "tritonrec-checkpoint", "format_version": 2, "feature_spec": {...},
                       "model_config": {...}, "metrics": {...}, "train": {...}, "dataset": {...},
                       "lineage": {...} (derived checkpoints only)}
    weights.pt        the model's state_dict (the catalogue tables are buffers inside it)

Format 2 added the compression fields of ``model_config`` (pruned widths, shared and quantized tables) and
the ``lineage`` section (:class:`~tritonrec.train.lineage.Lineage`); format 1 files, which have neither, still
load. Loading checks the format and version first and says plainly what is wrong.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from tritonrec.data.feature_spec import FeatureSpec
from tritonrec.errors import CheckpointError, ConfigError
from tritonrec.model.config import ModelConfig
from tritonrec.model.ranker import RankingModel
from tritonrec.train.lineage import Lineage
from tritonrec.train.report import TrainReport

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "READABLE_VERSIONS",
    "Checkpoint",
    "checkpoint_module",
    "load_checkpoint",
    "save_checkpoint",
]

FORMAT = "tritonrec-checkpoint"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
META_FILE = "checkpoint.json"
WEIGHTS_FILE = "weights.pt"


@dataclass(slots=True)
class Checkpoint:
    """A loaded checkpoint: the model (eval mode) and everything recorded beside it."""

    model: RankingModel
    metrics: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)
    lineage: Lineage | None = None

    @property
    def spec(self) -> FeatureSpec:
        """The model's FeatureSpec."""
        return self.model.spec

    @property
    def report(self) -> TrainReport | None:
        """The training report stored with the weights (None for a checkpoint saved without one)."""
        return TrainReport.from_dict(self.metrics) if self.metrics.get("preset") else None

    @property
    def config(self) -> ModelConfig:
        """The model's ModelConfig."""
        return self.model.config


def save_checkpoint(
    out_dir: Path,
    model: RankingModel,
    *,
    metrics: dict[str, Any] | None = None,
    train: dict[str, Any] | None = None,
    dataset: dict[str, Any] | None = None,
    lineage: Lineage | None = None,
) -> Path:
    """Write ``model`` and its metadata (and the lineage of a derived model) to ``out_dir``; return ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "feature_spec": model.spec.to_dict(),
        "model_config": model.config.to_dict(),
        "n_parameters": model.n_parameters(),
        "metrics": metrics or {},
        "train": train or {},
        "dataset": dataset or {},
    }
    if lineage is not None:
        meta["lineage"] = lineage.to_dict()
    torch.save(model.state_dict(), out_dir / WEIGHTS_FILE)
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return out_dir


def _read_meta(directory: Path) -> dict[str, Any]:
    meta_path = directory / META_FILE
    if not meta_path.is_file():
        raise CheckpointError(f"not a checkpoint: {meta_path} is missing")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{meta_path} is not valid JSON: {e}") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{meta_path} is not a {FORMAT} file")
    version = meta.get("format_version")
    if version not in READABLE_VERSIONS:
        readable = " and ".join(str(v) for v in READABLE_VERSIONS)
        raise CheckpointError(
            f"{directory} has checkpoint format version {version!r}; this tritonrec reads versions {readable}"
        )
    return meta


def load_checkpoint(directory: Path) -> Checkpoint:
    """Load a checkpoint directory written by :func:`save_checkpoint`.

    Raises:
        CheckpointError: missing files, another format or format version, or weights that do not fit.
    """
    meta = _read_meta(directory)
    try:
        spec = FeatureSpec.from_dict(meta["feature_spec"])
        config = ModelConfig.from_dict(meta["model_config"])
        lineage = Lineage.from_dict(meta["lineage"]) if meta.get("lineage") else None
    except (KeyError, TypeError, ConfigError) as e:
        raise CheckpointError(f"{directory}: invalid feature_spec/model_config/lineage: {e}") from e
    weights_path = directory / WEIGHTS_FILE
    if not weights_path.is_file():
        raise CheckpointError(f"{weights_path} is missing")
    model = RankingModel(spec, config)
    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError) as e:
        raise CheckpointError(f"{weights_path} does not fit the recorded model: {e}") from e
    model.eval()
    return Checkpoint(
        model=model,
        metrics=dict(meta.get("metrics", {})),
        train=dict(meta.get("train", {})),
        dataset=dict(meta.get("dataset", {})),
        lineage=lineage,
    )


def checkpoint_module(directory: str) -> RankingModel:
    """The checkpoint's model (eval mode): the factory of the bundled model's spec.

    A spec names it as ``factory = "tritonrec.train.checkpoint:checkpoint_module"`` with
    ``factory_kwargs = {directory = "..."}`` (``tritonrec export spec`` writes one).

    Raises:
        CheckpointError: as :func:`load_checkpoint`.
    """
    return load_checkpoint(Path(directory)).model
