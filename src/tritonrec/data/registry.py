"""One entry point from a dataset name to training and evaluation sets: ``prepare_dataset``.

``beauty`` and ``rees46`` are next-item sequences (leave-one-out split, sampled-softmax training, 99 sampled
negatives per evaluated user); ``synthetic`` is click-labelled impression slates (split by user, pointwise BCE,
with the ground-truth model's metrics as the ceiling). The real data sets ship with the package
(``tritonrec/datasets``, see PROVENANCE.md there); ``data_dir`` reads the same formats from elsewhere.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tritonrec.data.beauty import load_beauty
from tritonrec.data.catalogue import Catalogue
from tritonrec.data.feature_spec import FeatureSpec
from tritonrec.data.rees46 import load_rees46
from tritonrec.data.splits import EvalSet, NextItemTrainSet, SlateTrainSet, leave_one_out
from tritonrec.data.synthetic import SyntheticConfig, generate_synthetic
from tritonrec.data.synthetic_io import load_synthetic
from tritonrec.errors import CheckpointError, ConfigError

__all__ = ["DatasetName", "PreparedData", "bundled_data_dir", "prepare_dataset"]


class DatasetName(enum.StrEnum):
    """Datasets ``tritonrec train/evaluate --dataset`` knows."""

    BEAUTY = "beauty"
    REES46 = "rees46"
    SYNTHETIC = "synthetic"


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedData:
    """Everything training and evaluation need from one dataset.

    Attributes:
        name: the dataset name.
        spec: vocabularies and history length.
        catalogue: item side features.
        train: training set (next-item examples or slates).
        valid: validation rows (early stopping).
        test: test rows.
        loss: the objective that fits the labels: ``sampled_softmax`` or ``bce``.
        item_counts: ``[n_items + 2]`` training interactions per item (popularity baseline).
        oracle_test_scores: ``[len(test), C]`` scores of the ground-truth scorer on the test rows (synthetic data
            only): the best achievable ranking, scored by the metrics module like any model.
        info: provenance and sizes, recorded in checkpoints and reports.
    """

    name: DatasetName
    spec: FeatureSpec
    catalogue: Catalogue
    train: NextItemTrainSet | SlateTrainSet
    valid: EvalSet
    test: EvalSet
    loss: str
    item_counts: npt.NDArray[np.int64]
    oracle_test_scores: npt.NDArray[np.float64] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def check_fits(self, spec: FeatureSpec, where: Path) -> None:
        """Refuse an artifact (checkpoint, export) at ``where`` trained on another item vocabulary.

        Raises:
            CheckpointError: the item counts differ.
        """
        if spec.n_items != self.spec.n_items:
            raise CheckpointError(
                f"{where} was trained on {spec.n_items} items, the {self.name.value} data has {self.spec.n_items}: "
                "use it with the dataset it was trained on"
            )


def bundled_data_dir() -> Path:
    """Folder of the real data files shipped inside the package."""
    return Path(str(resources.files("tritonrec.datasets")))


def _parse_name(name: str | DatasetName) -> DatasetName:
    try:
        return DatasetName(name)
    except ValueError:
        raise ConfigError(f"unknown dataset {name!r}; choose one of {[d.value for d in DatasetName]}") from None


def prepare_dataset(
    name: str | DatasetName,
    data_dir: Path | None = None,
    *,
    history_len: int = 50,
    seed: int = 0,
    n_train_negatives: int = 16,
    skip_malformed: bool = False,
    valid_user_fraction: float = 1.0,
) -> PreparedData:
    """Load ``name`` (from ``data_dir`` or the bundled copy) and split it for training and evaluation.

    Args:
        name: ``beauty``, ``rees46`` or ``synthetic``.
        data_dir: where the files are; ``None`` = bundled real data, or for ``synthetic`` a dataset generated
            in memory from the default :class:`SyntheticConfig`.
        history_len: ``L`` for the sequence datasets (synthetic data carries its own).
        seed: seed of the evaluation negatives / the user split.
        n_train_negatives: sampled negatives per next-item training example.
        skip_malformed: skip malformed input lines instead of failing.
        valid_user_fraction: sequence data only: share of users whose second-last item is held out for
            validation (1.0 = classic leave-one-out; see :func:`leave_one_out`).

    Raises:
        ConfigError: unknown dataset name.
        DataError: missing or malformed files.
    """
    dataset = _parse_name(name)
    if dataset is DatasetName.SYNTHETIC:
        synth = load_synthetic(data_dir) if data_dir is not None else generate_synthetic(SyntheticConfig(seed=seed))
        split = synth.split(seed=seed)
        clicked = split.train.candidates[split.train.labels > 0.5]
        return PreparedData(
            name=dataset,
            spec=synth.spec,
            catalogue=synth.catalogue,
            train=split.train,
            valid=split.valid,
            test=split.test,
            loss="bce",
            item_counts=np.bincount(clicked, minlength=synth.spec.n_items + 2).astype(np.int64),
            oracle_test_scores=split.oracle_scores(),
            info={"name": dataset.value, "source": str(data_dir or "generated"), "config": synth.config.to_dict()},
        )
    directory = data_dir if data_dir is not None else bundled_data_dir()
    if dataset is DatasetName.BEAUTY:
        seqs = load_beauty(directory, history_len=history_len, skip_malformed=skip_malformed)
    else:
        seqs = load_rees46(directory, history_len=history_len, skip_malformed=skip_malformed)
    loo = leave_one_out(seqs, n_train_negatives=n_train_negatives, seed=seed, valid_user_fraction=valid_user_fraction)
    counts = np.bincount(loo.train.targets, minlength=seqs.spec.n_items + 2).astype(np.int64)
    return PreparedData(
        name=dataset,
        spec=seqs.spec,
        catalogue=seqs.catalogue,
        train=loo.train,
        valid=loo.valid,
        test=loo.test,
        loss="sampled_softmax",
        item_counts=counts,
        info={
            "name": dataset.value,
            "source": seqs.source,
            "n_users": seqs.n_users,
            "n_interactions": len(seqs.items),
            "n_train_examples": len(loo.train),
            "eval_seed": seed,
            "valid_user_fraction": valid_user_fraction,
        },
    )
