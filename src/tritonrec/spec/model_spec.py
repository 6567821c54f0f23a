"""The model spec: the one thing a team writes to take its own ranker through tritonrec (TOML, or this API).

A spec names the model (an ONNX file, or a PyTorch module tritonrec exports: ``package.module:factory`` with
its weights, a TorchScript file or a ``torch.export`` program), its inputs (name, dtype, per-row shape with
dynamic dims, role), its score output, its data (a Parquet file: a column per input, ``label``, ``query_id``)
and its metrics. Every command reads the spec, never a model class. A spec file::

    name = "dlrm"                          # the served model's name
    [model]
    factory = "dlrm:build"                 # or: onnx = "model.onnx" | torchscript = "m.pt" | program = "m.pt2"
    weights = "dlrm.pt"                    # a state_dict for the factory's module
    python_path = ["."]                    # where the factory's module is (relative to this file)
    [[inputs]]
    name = "dense"
    dtype = "float32"
    shape = [13]                           # per row, no batch axis; a string names a dynamic dim
    columns = ["I1", "I2", "..."]          # optional: the input gathered from scalar columns
    allow_nan = true                       # optional: NaN is a missing value the model handles
    [[inputs]]
    name = "sparse"
    dtype = "int64"
    shape = [26]
    [output]
    name = "score"
    kind = "logit"                         # or "probability"
    [data]
    path = "rows.parquet"
    evaluate_fraction = 0.2                # queries held out for evaluation; the rest calibrate
    # evaluate_column = "is_test"          # or: a boolean column marks the evaluation rows
    [metrics]
    cutoffs = [5, 10]

Relative paths are relative to the spec file. Every error names the field (``inputs[1].dtype``). Legend:
R = rows, B = rows per batch.
"""

from __future__ import annotations

import enum
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tritonrec.errors import ConfigError

__all__ = [
    "DTYPES",
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

DTYPES = {
    "float32": "TYPE_FP32",
    "float16": "TYPE_FP16",
    "int64": "TYPE_INT64",
    "int32": "TYPE_INT32",
    "bool": "TYPE_BOOL",
}
"""numpy dtype name -> Triton ``DataType`` name: the dtypes an input may have."""
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Role(enum.StrEnum):
    """Whose an input is: one per candidate row (``item``) or one per request, shared by its rows (``query``)."""

    ITEM = "item"
    QUERY = "query"


class ScoreKind(enum.StrEnum):
    """What the model's score is: a logit (any real) or a probability in [0, 1]."""

    LOGIT = "logit"
    PROBABILITY = "probability"


class Layout(enum.StrEnum):
    """How a request carries a query's candidates, chosen by the inputs' roles.

    ``rows``: every input per row, a request is one query's N rows, Triton batches along rows natively.
    ``query_candidates``: query inputs once per request, item inputs per candidate (the bundled model's).
    """

    ROWS = "rows"
    QUERY_CANDIDATES = "query_candidates"


def _fail(where: str, problem: str) -> ConfigError:
    return ConfigError(f"{where}: {problem}")


@dataclass(frozen=True, slots=True, kw_only=True)
class InputSpec:
    """One model input.

    Attributes:
        name: the graph's input name (and the served model's).
        dtype: a key of :data:`DTYPES`.
        shape: per-row dims without the row axis; an int is fixed, a str names a dynamic dim (``[]`` = a scalar
            per row).
        role: :class:`Role`.
        columns: scalar Parquet columns gathered into this input (``shape`` must be ``[len(columns)]``); default:
            the column named ``name``.
        pad: the value a dynamic dim is padded with when rows of different lengths share a batch.
        allow_nan: a float input may hold NaN or infinity (a missing value the model handles); by default the served
            model refuses such a request with INVALID_ARGUMENT.
    """

    name: str
    dtype: str
    shape: tuple[int | str, ...] = ()
    role: Role = Role.ITEM
    columns: tuple[str, ...] = ()
    pad: float = 0
    allow_nan: bool = False

    def __post_init__(self) -> None:
        where = f"input {self.name!r}"
        if not _NAME.match(self.name):
            raise _fail(where, "name must be a letter or _ followed by letters, digits or _")
        if self.dtype not in DTYPES:
            raise _fail(f"{where}.dtype", f"{self.dtype!r} is not one of {', '.join(DTYPES)}")
        for dim in self.shape:
            if isinstance(dim, bool) or not isinstance(dim, int | str) or (isinstance(dim, int) and dim < 1):
                raise _fail(f"{where}.shape", f"each dim is a positive int or a name, got {dim!r}")
        if self.columns and (len(self.shape) != 1 or self.shape[0] != len(self.columns)):
            raise _fail(f"{where}.columns", f"{len(self.columns)} columns need shape [{len(self.columns)}]")

    @property
    def dynamic(self) -> bool:
        """Whether a per-row dim is dynamic (rows are padded to the batch's longest)."""
        return any(isinstance(d, str) for d in self.shape)

    @property
    def dims(self) -> list[int]:
        """Per-row dims as Triton writes them (-1 for a dynamic dim)."""
        return [d if isinstance(d, int) else -1 for d in self.shape]


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputSpec:
    """The score output: one per row."""

    name: str = "score"
    kind: ScoreKind = ScoreKind.LOGIT

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise _fail("output.name", f"{self.name!r} is not a valid tensor name")


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSource:
    """Where the model comes from: exactly one of ``onnx``, ``factory``, ``torchscript``, ``program``.

    Attributes:
        onnx: an ONNX file (served as it is, after a dry run against the spec).
        factory: ``package.module:callable`` returning a ``torch.nn.Module``; tritonrec exports it.
        weights: a ``state_dict`` file loaded into the factory's module.
        torchscript: a TorchScript file (``torch.jit.save``).
        program: a ``torch.export`` program (``torch.export.save``).
        python_path: folders put on ``sys.path`` to import the factory.
        factory_kwargs: keyword arguments of the factory.
        train_hook: ``package.module:callable`` that trains a module of the factory in place:
            ``fit(module, rows, targets)``, ``rows`` a :class:`~tritonrec.spec.rows.SpecRows` (the calibration rows),
            ``targets`` one float in [0, 1] per row (the labels, or a teacher's probabilities); what
            ``tritonrec compress --spec`` fine-tunes and distills with (None: those methods are not offered).
    """

    onnx: Path | None = None
    factory: str | None = None
    weights: Path | None = None
    torchscript: Path | None = None
    program: Path | None = None
    python_path: tuple[Path, ...] = ()
    factory_kwargs: Mapping[str, Any] = field(default_factory=dict)
    train_hook: str | None = None

    def __post_init__(self) -> None:
        given = [k for k in ("onnx", "factory", "torchscript", "program") if getattr(self, k) is not None]
        if len(given) != 1:
            raise _fail("model", f"name exactly one of onnx, factory, torchscript, program (got {given or 'none'})")
        if self.factory is not None and not re.match(r"^[\w.]+:[\w.]+$", self.factory):
            raise _fail("model.factory", f"{self.factory!r} is not package.module:callable")
        if self.weights is not None and self.factory is None:
            raise _fail("model.weights", "weights go with a factory")
        if self.train_hook is not None and not re.match(r"^[\w.]+:[\w.]+$", self.train_hook):
            raise _fail("model.train_hook", f"{self.train_hook!r} is not package.module:callable")
        if self.train_hook is not None and self.factory is None:
            raise _fail("model.train_hook", "a training hook goes with a factory (the module it trains is rebuilt)")

    @property
    def kind(self) -> str:
        """``onnx``, ``factory``, ``torchscript`` or ``program``."""
        return next(k for k in ("onnx", "factory", "torchscript", "program") if getattr(self, k) is not None)


@dataclass(frozen=True, slots=True, kw_only=True)
class DataSpec:
    """The user's rows: a Parquet file with a column per input, the label and the query id.

    Attributes:
        path: the Parquet file.
        label: the label column (1 = clicked/relevant, 0 = not).
        query_id: the column grouping rows into the queries a ranking metric ranks within.
        evaluate_fraction: share of queries (seeded, by query id) held out for evaluation; the rest calibrate.
        seed: seed of the split.
        evaluate_column: a boolean column naming the evaluation rows instead (a fixed test set: a query is held out
            when its rows say so); ``evaluate_fraction`` is then not used.
    """

    path: Path
    label: str = "label"
    query_id: str = "query_id"
    evaluate_fraction: float = 0.2
    seed: int = 0
    evaluate_column: str | None = None

    def __post_init__(self) -> None:
        if not 0 < self.evaluate_fraction <= 1:
            raise _fail("data.evaluate_fraction", f"must be in (0, 1], got {self.evaluate_fraction}")


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsSpec:
    """The ranking metrics' cutoffs (NDCG@K, HR@K); AUC, logloss and MRR are always computed."""

    cutoffs: tuple[int, ...] = (5, 10)

    def __post_init__(self) -> None:
        if not self.cutoffs or any(k < 1 for k in self.cutoffs):
            raise _fail("metrics.cutoffs", f"need positive cutoffs, got {list(self.cutoffs)}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSpec:
    """A ranker and its data, as every command reads them.

    Attributes:
        name: the served model's name (a Triton model name).
        model: where the model comes from.
        inputs: the inputs in the order the module's ``forward`` takes them.
        output: the score output.
        data: the rows that calibrate and evaluate.
        metrics: the metrics' cutoffs.
        path: the spec file (None when built in Python).
    """

    name: str
    model: ModelSource
    inputs: tuple[InputSpec, ...]
    output: OutputSpec = OutputSpec()
    data: DataSpec | None = None
    metrics: MetricsSpec = MetricsSpec()
    path: Path | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise _fail("name", f"{self.name!r} is not a valid model name (letters, digits, _)")
        if not self.inputs:
            raise _fail("inputs", "a model needs at least one input")
        names = [i.name for i in self.inputs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates or self.output.name in names:
            raise _fail(
                "inputs", f"names must be unique and differ from the output's: {duplicates or [self.output.name]}"
            )
        if all(i.role is Role.QUERY for i in self.inputs):
            raise _fail("inputs", "at least one input must be per row (role item): a score is per candidate row")

    @property
    def layout(self) -> Layout:
        """``rows`` when every input is per row, else ``query_candidates``."""
        return Layout.ROWS if all(i.role is Role.ITEM for i in self.inputs) else Layout.QUERY_CANDIDATES

    def input(self, name: str) -> InputSpec:
        """The input called ``name``.

        Raises:
            ConfigError: there is none.
        """
        found = next((i for i in self.inputs if i.name == name), None)
        if found is None:
            raise ConfigError(f"the spec has no input {name!r}; inputs: {[i.name for i in self.inputs]}")
        return found

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, base: Path | None = None, path: Path | None = None) -> ModelSpec:
        """Build a spec from its TOML table; relative paths are taken from ``base``.

        Raises:
            ConfigError: a field is missing, unknown or invalid; the message names it.
        """
        _known(data, {"name", "model", "inputs", "output", "data", "metrics"}, "the spec")
        root = base or Path(".")
        model = _table(data, "model", required=True)
        _known(
            model,
            {"onnx", "factory", "weights", "torchscript", "program", "python_path", "factory_kwargs", "train_hook"},
            "model",
        )
        source = ModelSource(
            onnx=_path(model.get("onnx"), root),
            factory=_str(model.get("factory"), "model.factory"),
            weights=_path(model.get("weights"), root),
            torchscript=_path(model.get("torchscript"), root),
            program=_path(model.get("program"), root),
            python_path=tuple(root / p for p in _list(model.get("python_path", []), "model.python_path")),
            factory_kwargs=dict(_table(model, "factory_kwargs")),
            train_hook=_str(model.get("train_hook"), "model.train_hook"),
        )
        raw_inputs = data.get("inputs")
        if not isinstance(raw_inputs, list) or not raw_inputs:
            raise _fail("inputs", "a list of [[inputs]] tables is required")
        inputs = tuple(_input(raw, f"inputs[{k}]") for k, raw in enumerate(raw_inputs))
        output = _table(data, "output")
        _known(output, {"name", "kind"}, "output")
        data_table = _table(data, "data")
        _known(data_table, {"path", "label", "query_id", "evaluate_fraction", "seed", "evaluate_column"}, "data")
        metrics = _table(data, "metrics")
        _known(metrics, {"cutoffs"}, "metrics")
        try:
            return cls(
                name=_str(data.get("name"), "name") or "",
                model=source,
                inputs=inputs,
                output=OutputSpec(name=output.get("name", "score"), kind=_enum(ScoreKind, output, "kind", "output")),
                data=_data(data_table, root) if data_table else None,
                metrics=MetricsSpec(cutoffs=tuple(_list(metrics.get("cutoffs", [5, 10]), "metrics.cutoffs"))),
                path=path,
            )
        except TypeError as e:
            raise ConfigError(f"the spec: {e}") from None


def _input(raw: Any, where: str) -> InputSpec:
    if not isinstance(raw, Mapping):
        raise _fail(where, "must be a table")
    _known(raw, {"name", "dtype", "shape", "role", "columns", "pad", "allow_nan"}, where)
    for key in ("name", "dtype"):
        if key not in raw:
            raise _fail(f"{where}.{key}", "is required")
    try:
        return InputSpec(
            name=_str(raw["name"], f"{where}.name") or "",
            dtype=_str(raw["dtype"], f"{where}.dtype") or "",
            shape=tuple(_list(raw.get("shape", []), f"{where}.shape")),
            role=_enum(Role, raw, "role", where),
            columns=tuple(_list(raw.get("columns", []), f"{where}.columns")),
            pad=raw.get("pad", 0),
            allow_nan=bool(raw.get("allow_nan", False)),
        )
    except ConfigError as e:
        raise ConfigError(f"{where} ({e})") from None


def _data(raw: Mapping[str, Any], root: Path) -> DataSpec:
    if "path" not in raw:
        raise _fail("data.path", "is required")
    return DataSpec(
        path=_path(raw["path"], root) or Path(),
        label=raw.get("label", "label"),
        query_id=raw.get("query_id", "query_id"),
        evaluate_fraction=float(raw.get("evaluate_fraction", 0.2)),
        seed=int(raw.get("seed", 0)),
        evaluate_column=_str(raw.get("evaluate_column"), "data.evaluate_column"),
    )


def _known(table: Mapping[str, Any], keys: set[str], where: str) -> None:
    unknown = sorted(set(table) - keys)
    if unknown:
        raise _fail(where, f"unknown key(s) {unknown}; known: {sorted(keys)}")


def _table(data: Mapping[str, Any], key: str, *, required: bool = False) -> Mapping[str, Any]:
    value = data.get(key)
    if value is None:
        if required:
            raise _fail(key, "is required")
        return {}
    if not isinstance(value, Mapping):
        raise _fail(key, "must be a table")
    return value


def _str(value: Any, where: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise _fail(where, f"must be a string, got {value!r}")
    return value


def _list(value: Any, where: str) -> Sequence[Any]:
    if not isinstance(value, list):
        raise _fail(where, f"must be a list, got {value!r}")
    return value


def _path(value: Any, root: Path) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"a path must be a string, got {value!r}")
    path = Path(value)
    return path if path.is_absolute() else root / path


def _enum(kind: type[enum.StrEnum], table: Mapping[str, Any], key: str, where: str) -> Any:
    value = table.get(key)
    if value is None:
        return next(iter(kind))
    try:
        return kind(value)
    except ValueError:
        raise _fail(f"{where}.{key}", f"{value!r} is not one of {[k.value for k in kind]}") from None


def load_spec(path: Path) -> ModelSpec:
    """Read a spec file (TOML).

    Raises:
        ConfigError: the file is missing, is not TOML, or a field is invalid (the message names the file and field).
    """
    try:
        data = tomllib.loads(path.read_text())
    except OSError as e:
        raise ConfigError(f"spec {path}: cannot read it: {e}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"spec {path}: not valid TOML: {e}") from e
    try:
        return ModelSpec.from_dict(data, base=path.parent, path=path)
    except ConfigError as e:
        raise ConfigError(f"spec {path}: {e}") from None
