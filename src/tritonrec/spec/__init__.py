"""The model spec: a team's own ranker and data, named once, read by every command.

- :mod:`~tritonrec.spec.model_spec`: :class:`~tritonrec.spec.model_spec.ModelSpec` and the TOML file it is read
  from (every error names its field);
- :mod:`~tritonrec.spec.rows`: the spec's Parquet rows as arrays per input, grouped by query, split in two;
- :mod:`~tritonrec.spec.module`: the spec's PyTorch module loaded (factory + weights, TorchScript, program).
"""

from tritonrec.spec.model_spec import (
    DataSpec,
    InputSpec,
    Layout,
    MetricsSpec,
    ModelSource,
    ModelSpec,
    OutputSpec,
    Role,
    ScoreKind,
    load_spec,
)

__all__ = [
    "DataSpec",
    "InputSpec",
    "Layout",
    "MetricsSpec",
    "ModelSource",
    "ModelSpec",
    "OutputSpec",
    "Role",
    "ScoreKind",
    "load_spec",
]
