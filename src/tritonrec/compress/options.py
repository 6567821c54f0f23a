"""What each compression method takes: one frozen options class per method, validated where it is built.

Imports no torch, so the CLI can list the choices without the training stack.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from tritonrec.errors import ConfigError
from tritonrec.model.config import EmbeddingStorage, ModelConfig, Preset, TableSharing

__all__ = [
    "CompressOptions",
    "CompressionMethod",
    "DistillOptions",
    "FinetuneOptions",
    "PruneOptions",
    "QuantizeOptions",
    "ShareOptions",
    "options_to_dict",
]


class CompressionMethod(enum.StrEnum):
    """The transformations of ``tritonrec compress``."""

    PRUNE = "prune"  # structured pruning of the dense part, then fine-tuning
    DISTILL = "distill"  # a smaller student trained on labels and the teacher's scores
    SHARE = "share"  # shared item-id rows (hashing trick or quotient-remainder), then fine-tuning
    QUANTIZE_EMBEDDINGS = "quantize-embeddings"  # row-wise INT8/INT4 embedding tables, no training


@dataclass(frozen=True, slots=True, kw_only=True)
class FinetuneOptions:
    """Training after a structural change (pruning, sharing).

    The model is validated before and after every epoch; the best of these is kept, so fine-tuning that does not
    improve validation NDCG@10 leaves the changed model as it was.

    Attributes:
        max_epochs: epochs at most (0 = no fine-tuning).
        max_minutes: wall-clock budget.
        lr: AdamW learning rate (lower than training from scratch: the weights start close).
        teacher_weight: share ``w`` of the parent as teacher in the loss, ``(1 - w) * labels + w * T^2 *
            teacher`` on the same candidates (see :mod:`tritonrec.compress.distill`); 0 = labels only.
            ``tritonrec bench compression`` measures both at the middle pruning ratio.
        temperature: ``T`` of the teacher term.
    """

    max_epochs: int = 2
    max_minutes: float = 8.0
    lr: float = 1e-4
    teacher_weight: float = 1.0
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if self.max_epochs < 0 or self.max_minutes <= 0 or self.lr <= 0:
            raise ConfigError("fine-tuning needs max_epochs >= 0 (0 = none), max_minutes > 0 and lr > 0")
        if not 0.0 <= self.teacher_weight <= 1.0 or self.temperature <= 0:
            raise ConfigError("the teacher weight must lie in [0, 1] and the temperature be > 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class PruneOptions:
    """Structured pruning of the dense part.

    Attributes:
        ratio: share of the channels removed from every prunable group (MLP hidden layers, low-rank cross
            layers, history feed-forward layers, attention query/key and value channels per head).
        calibration_rows: training rows whose activations rank the channels.
        finetune: training after the channels are removed.
    """

    method: ClassVar[CompressionMethod] = CompressionMethod.PRUNE
    ratio: float
    calibration_rows: int = 2048
    finetune: FinetuneOptions = field(default_factory=FinetuneOptions)

    def __post_init__(self) -> None:
        if not 0.0 < self.ratio < 1.0:
            raise ConfigError(f"the pruning ratio (share of channels removed) must lie in (0, 1), got {self.ratio}")
        if self.calibration_rows < 1:
            raise ConfigError("calibration_rows must be >= 1")


@dataclass(frozen=True, slots=True, kw_only=True)
class DistillOptions:
    """Knowledge distillation of the parent (the teacher) into a student.

    Attributes:
        student: the student's architecture (a preset's config, or a custom one).
        student_name: how the student is called in reports and variant names (the preset name, or the stem of
            the JSON file that held a custom architecture).
        temperature: softening temperature ``T`` of both score distributions.
        weight: share ``w`` of the teacher term: ``loss = (1 - w) * labels + w * T^2 * teacher``.
        max_epochs: epochs at most.
        max_minutes: training budget.
        lr: AdamW learning rate.
    """

    method: ClassVar[CompressionMethod] = CompressionMethod.DISTILL
    student: ModelConfig
    student_name: str = "custom"
    temperature: float = 2.0
    weight: float = 0.5
    max_epochs: int = 30
    max_minutes: float = 14.0
    lr: float = 1e-3

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}")
        if not 0.0 <= self.weight <= 1.0:
            raise ConfigError(f"the teacher weight must lie in [0, 1], got {self.weight}")
        if self.max_epochs < 1 or self.max_minutes <= 0 or self.lr <= 0:
            raise ConfigError("max_epochs must be >= 1, max_minutes and lr > 0")

    @classmethod
    def for_preset(cls, preset_name: str | Preset, **values: Any) -> DistillOptions:
        """Options with a preset's architecture as the student."""
        from tritonrec.model.config import preset

        return cls(student=preset(preset_name), student_name=Preset(preset_name).value, **values)

    @classmethod
    def for_student(cls, student: str | Path, **values: Any) -> DistillOptions:
        """Options with ``student`` as the student: a preset's name, or a JSON file holding a ``ModelConfig``.

        A file's student is named by the file's stem (``students/small-d24.json`` -> ``small-d24``).

        Raises:
            ConfigError: the file cannot be read, is not JSON, or is not a valid ``ModelConfig``.
        """
        presets = [p.value for p in Preset]
        if str(student) in presets:
            return cls.for_preset(str(student), **values)
        path = Path(student)
        try:
            text = path.read_text()
        except OSError as e:
            raise ConfigError(f"student {str(student)!r} is neither a preset {presets} nor a readable file: {e}") from e
        try:
            config = ModelConfig.from_dict(json.loads(text))
        except (json.JSONDecodeError, ConfigError, TypeError, ValueError) as e:
            raise ConfigError(f"student file {path}: {e}") from e
        return cls(student=config, student_name=path.stem, **values)


@dataclass(frozen=True, slots=True, kw_only=True)
class ShareOptions:
    """Shared item-id rows.

    Attributes:
        kind: ``hash`` (hashing trick) or ``qr`` (quotient-remainder).
        ratio: logical item rows per stored row: the shared tables hold at most ``ceil(rows / ratio)`` rows
            together (for QR, quotient and remainder rows counted together), so both kinds get the same
            parameter budget at the same ratio.
        finetune: training after the table is replaced.
    """

    method: ClassVar[CompressionMethod] = CompressionMethod.SHARE
    kind: TableSharing
    ratio: float
    finetune: FinetuneOptions = field(default_factory=FinetuneOptions)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", TableSharing(self.kind))
        except ValueError:
            raise ConfigError(f"unknown sharing {self.kind!r}; choose hash or qr") from None
        if self.kind is TableSharing.NONE:
            raise ConfigError("sharing needs a kind: hash or qr")
        if self.ratio <= 1.0:
            raise ConfigError(f"the compression ratio must be > 1, got {self.ratio}")


@dataclass(frozen=True, slots=True, kw_only=True)
class QuantizeOptions:
    """Row-wise quantized embedding tables.

    Attributes:
        storage: ``int8`` or ``int4``.
        block: values per scale/bias block of a row (0 = one block per row).
        compact_catalogue: also keep the catalogue id tables in their narrowest integer type.
    """

    method: ClassVar[CompressionMethod] = CompressionMethod.QUANTIZE_EMBEDDINGS
    storage: EmbeddingStorage
    block: int = 0
    compact_catalogue: bool = True

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "storage", EmbeddingStorage(self.storage))
        except ValueError:
            raise ConfigError(f"unknown embedding storage {self.storage!r}; choose int8 or int4") from None
        if self.storage is EmbeddingStorage.FP32:
            raise ConfigError("quantize-embeddings stores int8 or int4 tables")
        if self.block < 0:
            raise ConfigError(f"block must be >= 0, got {self.block}")


CompressOptions = PruneOptions | DistillOptions | ShareOptions | QuantizeOptions
"""The options of any one method."""


def options_to_dict(options: CompressOptions) -> dict[str, Any]:
    """The arguments as JSON values (recorded in the lineage)."""
    data = dataclasses.asdict(options)
    if isinstance(options, DistillOptions):
        data["student"] = options.student.to_dict()
    for key, value in data.items():
        if isinstance(value, enum.Enum):
            data[key] = value.value
    return data
