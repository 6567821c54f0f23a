"""Everything around a TensorRT engine that needs no TensorRT: shapes, precision, the trtexec line, metadata, checks.

An engine (a "plan") only runs on the GPU model and TensorRT version it was built with, and only for the input
shapes of its optimisation profile. So every plan gets ``<plan>.json`` beside it (:class:`EngineMetadata`: GPU,
compute capability, TensorRT version, precision, ONNX SHA-256, profile), and the repository builder refuses a plan
whose metadata does not fit the variant it is placed into (:func:`plan_problems`).

Shapes (:class:`ShapeProfile`) come from the served model's ``config.pbtxt``, where the repository builder states
the limits once: ``max_batch_size`` (B), the parameters ``max_history`` (L: the graph's fixed history length) and
``max_candidates`` (N). ``export/build_trt_engines.sh`` reads the same three values, and
:func:`trtexec_command` writes the same ``--minShapes/--optShapes/--maxShapes`` it passes to trtexec. Two layouts:
``padded`` (``history [B, L]``, ``candidates [B, N]``: ``model.onnx``, the Q/DQ file) and ``offsets`` (the offsets
graph ``model_offsets.onnx`` fed by Triton's ragged batching: ``history [B, L]``, ``candidates [M]`` with M up to
B x N, ``candidate_offsets [B]``), the latter when the config has the ``candidate_offsets`` batch input.

Precision (:class:`TrtPrecision`):

- ``fp16``: the FP32 ONNX file, FP16 kernels allowed (``--fp16``);
- ``int8``: the Q/DQ ONNX file from ``tritonrec quantize`` (explicit quantization; a padded graph, so INT8 engines
  have the padded profile and ``ranker_trt_int8`` serves the padded layout). Strongly typed where TensorRT
  supports it (``--stronglyTyped``): INT8 exactly where the Q/DQ nodes are, FP32 elsewhere, so the groups the
  sensitivity analysis kept in float stay FP32; without strong typing, ``--int8 --fp16`` with those groups' layers
  pinned to FP32 (``--layerPrecisions`` + ``--precisionConstraints=obey``);
- ``best``: the Q/DQ file, every precision allowed (``--best``), the kept groups pinned to FP16.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tritonrec.contract import CANDIDATE_OFFSETS, CANDIDATES, HISTORY, MAX_CANDIDATES_PARAM, MAX_HISTORY_PARAM
from tritonrec.errors import ConfigError, ExportError

if TYPE_CHECKING:
    from tritonclient.grpc import model_config_pb2 as mc

__all__ = [
    "METADATA_SUFFIX",
    "PROFILE_LAYOUTS",
    "EngineMetadata",
    "Profile",
    "SpecShapeProfile",
    "ShapeProfile",
    "TrtPrecision",
    "layer_precisions",
    "plan_file",
    "plan_source",
    "plan_problems",
    "sha256",
    "trtexec_command",
]

METADATA_SUFFIX = ".json"
OPT_BATCH, OPT_CANDIDATES = 16, 200  # what build_trt_engines.sh tunes for (TRITONREC_OPT_BATCH / _CANDIDATES)


class TrtPrecision(enum.StrEnum):
    """Engine precision (see the module docstring)."""

    FP16 = "fp16"
    INT8 = "int8"
    BEST = "best"

    @property
    def variant_precision(self) -> str:
        """The precision of the repository variant a plan of this kind belongs in (best = INT8 + FP16)."""
        return "fp16" if self is TrtPrecision.FP16 else "int8"


Dims = tuple[int, ...]
PROFILE_LAYOUTS = ("padded", "offsets")


def plan_source(precision: TrtPrecision, layout: str = "padded") -> str:
    """The ONNX file of an export folder a plan of ``precision`` in ``layout`` is built from.

    FP16: ``model.onnx`` (padded) or ``model_offsets.onnx`` (offsets, ``tritonrec export onnx --gpu-graph``);
    INT8 and best: the Q/DQ file ``model_qdq.onnx`` of ``tritonrec quantize``, a padded graph only.

    Raises:
        ConfigError: INT8 in the offsets layout (there is no Q/DQ offsets graph).
    """
    if precision is TrtPrecision.FP16:
        return "model.onnx" if layout == "padded" else "model_offsets.onnx"
    if layout != "padded":
        raise ConfigError(
            f"no {precision.value} graph in the {layout} layout: `tritonrec quantize` writes the Q/DQ file "
            "model_qdq.onnx from the padded model.onnx, so INT8 engines are built and served padded"
        )
    return "model_qdq.onnx"


def plan_file(precision: TrtPrecision) -> str:
    """The plan's file name in an export folder: ``model_trt_fp16.plan`` or ``model_trt_int8.plan``.

    The repository builder places it into the ``ranker_trt_<precision>`` variant as ``model.plan``.
    """
    return f"model_trt_{precision.variant_precision}.plan"


@dataclass(frozen=True, slots=True, kw_only=True)
class ShapeProfile:
    """One optimisation profile over the batch and candidate axes (the history length is fixed by the graph).

    Attributes:
        history_len: ``L``.
        min_batch / opt_batch / max_batch: users per execution.
        min_candidates / opt_candidates / max_candidates: candidates per user.
        layout: ``padded`` (``candidates [B, N]``) or ``offsets`` (``candidates [M]``, M = B x N at each point,
            and ``candidate_offsets [B]``; see the module docstring).
    """

    history_len: int
    max_batch: int
    max_candidates: int
    min_batch: int = 1
    opt_batch: int = OPT_BATCH
    min_candidates: int = 1
    opt_candidates: int = OPT_CANDIDATES
    layout: str = "padded"

    def __post_init__(self) -> None:
        if self.layout not in PROFILE_LAYOUTS:
            raise ConfigError(f"profile layout must be one of {', '.join(PROFILE_LAYOUTS)}, got {self.layout!r}")
        if self.history_len < 1:
            raise ConfigError(f"history length must be >= 1, got {self.history_len}")
        for axis in ("batch", "candidates"):
            low, opt, high = (getattr(self, f"{k}_{axis}") for k in ("min", "opt", "max"))
            if not 1 <= low <= opt <= high:
                raise ConfigError(f"{axis}: need 1 <= min ({low}) <= opt ({opt}) <= max ({high})")

    def shapes(self) -> dict[str, tuple[Dims, Dims, Dims]]:
        """``{input: (min, opt, max)}`` dimensions."""
        length = self.history_len
        history: tuple[Dims, Dims, Dims] = (
            (self.min_batch, length),
            (self.opt_batch, length),
            (self.max_batch, length),
        )
        if self.layout == "offsets":  # the batch's candidates concatenated, their running totals per user
            return {
                HISTORY: history,
                CANDIDATES: (
                    (self.min_batch * self.min_candidates,),
                    (self.opt_batch * self.opt_candidates,),
                    (self.max_batch * self.max_candidates,),
                ),
                CANDIDATE_OFFSETS: ((self.min_batch,), (self.opt_batch,), (self.max_batch,)),
            }
        return {
            HISTORY: history,
            CANDIDATES: (
                (self.min_batch, self.min_candidates),
                (self.opt_batch, self.opt_candidates),
                (self.max_batch, self.max_candidates),
            ),
        }

    def trtexec_flags(self) -> list[str]:
        """``--minShapes/--optShapes/--maxShapes`` as trtexec (and ``build_trt_engines.sh``) spell them."""
        return _trtexec_flags(self.shapes())

    @classmethod
    def from_config(
        cls, config: mc.ModelConfig, *, opt_batch: int = OPT_BATCH, opt_candidates: int = OPT_CANDIDATES
    ) -> ShapeProfile:
        """The profile a served model's config asks for (its limits; opt values clamped into them).

        The ``offsets`` layout when the config batches candidates raggedly (a ``candidate_offsets`` batch input).

        Raises:
            ConfigError: the config lacks ``max_batch_size`` or the ``max_history``/``max_candidates`` parameters.
        """
        try:
            history = int(config.parameters[MAX_HISTORY_PARAM].string_value)
            candidates = int(config.parameters[MAX_CANDIDATES_PARAM].string_value)
        except (KeyError, ValueError) as e:
            raise ConfigError(
                f"{config.name}: config has no {MAX_HISTORY_PARAM}/{MAX_CANDIDATES_PARAM} parameters: regenerate it "
                "with `tritonrec repo build`"
            ) from e
        if config.max_batch_size < 1:
            raise ConfigError(f"{config.name}: max_batch_size must be >= 1 for a TensorRT profile")
        return cls(
            history_len=history,
            max_batch=config.max_batch_size,
            max_candidates=candidates,
            opt_batch=min(opt_batch, config.max_batch_size),
            opt_candidates=min(opt_candidates, candidates),
            layout="offsets" if any(CANDIDATE_OFFSETS in b.target_name for b in config.batch_input) else "padded",
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the fields plus the shapes per input)."""
        return {**asdict(self), "shapes": {k: [list(d) for d in v] for k, v in self.shapes().items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShapeProfile:
        """Read :meth:`to_dict` output back (metadata without a layout: ``padded``, the only one there was)."""
        sizes = {k: int(v) for k, v in data.items() if k not in ("shapes", "layout")}
        return cls(**sizes, layout=str(data.get("layout", "padded")))


@dataclass(frozen=True, slots=True)
class SpecShapeProfile:
    """The optimisation profile of a model spec's graph: min/opt/max dims per input, as its config states them.

    ``tritonrec repo build --spec`` writes them into the ``<name>_trt_fp16`` config (``trt_min_shapes``,
    ``trt_opt_shapes``, ``trt_max_shapes``, trtexec's syntax: ``name:4x13,other:4``); ``build_trt_engines.sh`` and
    ``tritonrec export trt --spec`` read the same values.

    Attributes:
        inputs: ``(input name, min dims, opt dims, max dims)`` per input, in the graph's order.
    """

    inputs: tuple[tuple[str, Dims, Dims, Dims], ...]
    layout: str = "spec"

    def __post_init__(self) -> None:
        for name, low, opt, high in self.inputs:
            if not (len(low) == len(opt) == len(high)) or any(
                not 1 <= a <= b <= c for a, b, c in zip(low, opt, high, strict=True)
            ):
                raise ConfigError(f"profile of {name!r}: need 1 <= min <= opt <= max on every axis, got "
                                  f"{low} / {opt} / {high}")  # fmt: skip

    def shapes(self) -> dict[str, tuple[Dims, Dims, Dims]]:
        """``{input: (min, opt, max)}`` dimensions."""
        return {name: (low, opt, high) for name, low, opt, high in self.inputs}

    def trtexec_flags(self) -> list[str]:
        """``--minShapes/--optShapes/--maxShapes`` as trtexec spells them."""
        return _trtexec_flags(self.shapes())

    @classmethod
    def from_trtexec(cls, low: str, opt: str, high: str) -> SpecShapeProfile:
        """Parse the three trtexec shape strings (``name:AxB,other:C``) of a spec's config.

        Raises:
            ConfigError: a string is malformed or the three name other inputs.
        """
        parsed = [_parse_shapes(text) for text in (low, opt, high)]
        if not (list(parsed[0]) == list(parsed[1]) == list(parsed[2])):
            raise ConfigError(f"the min, opt and max shapes name other inputs: {[list(p) for p in parsed]}")
        return cls(inputs=tuple((name, parsed[0][name], parsed[1][name], parsed[2][name]) for name in parsed[0]))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"layout": self.layout, "shapes": {k: [list(d) for d in v] for k, v in self.shapes().items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpecShapeProfile:
        """Read :meth:`to_dict` output back."""
        return cls(inputs=tuple((k, *(tuple(int(x) for x in d) for d in v)) for k, v in data["shapes"].items()))


Profile = ShapeProfile | SpecShapeProfile
"""An engine's optimisation profile: the bundled model's, or a spec's."""


def _trtexec_flags(shapes: dict[str, tuple[Dims, Dims, Dims]]) -> list[str]:
    flags = []
    for i, flag in enumerate(("--minShapes", "--optShapes", "--maxShapes")):
        flags.append(f"{flag}=" + ",".join(f"{name}:{'x'.join(map(str, d[i]))}" for name, d in shapes.items()))
    return flags


def _parse_shapes(text: str) -> dict[str, Dims]:
    out: dict[str, Dims] = {}
    for part in text.split(","):
        name, _, dims = part.rpartition(":")
        try:
            out[name] = tuple(int(d) for d in dims.split("x"))
        except ValueError:
            raise ConfigError(f"shape {part!r} is not name:AxB (trtexec's syntax)") from None
        if not name:
            raise ConfigError(f"shape {part!r} names no input")
    return out


def layer_precisions(quantize_report: Path, precision: TrtPrecision) -> dict[str, str]:
    """``{ONNX node name: "fp32" | "fp16"}`` for the groups ``tritonrec quantize`` kept in float.

    Under ``int8`` they are pinned to FP32 (as measured); under ``best`` to FP16; ``fp16`` engines pin nothing.

    Raises:
        ExportError: the report is missing or has no mixed-precision section.
    """
    if precision is TrtPrecision.FP16:
        return {}
    try:
        nodes = json.loads(quantize_report.read_text())["mixed"]["excluded_nodes"]
    except (OSError, KeyError, TypeError, json.JSONDecodeError) as e:
        raise ExportError(f"{quantize_report} (written by `tritonrec quantize`) is missing or unreadable: {e}") from e
    kind = "fp32" if precision is TrtPrecision.INT8 else "fp16"
    return {str(name): kind for name in nodes}


def trtexec_command(
    onnx: Path,
    plan: Path,
    precision: TrtPrecision,
    profile: Profile,
    *,
    strongly_typed: bool = True,
    layers: dict[str, str] | None = None,
    timing_cache: Path | None = None,
) -> list[str]:
    """The ``trtexec`` line that builds the same engine as :func:`tritonrec.export.tensorrt_build.build_engine`."""
    command = ["trtexec", f"--onnx={onnx}", f"--saveEngine={plan}"]
    pinned = layers or {}
    if precision is TrtPrecision.FP16:
        command.append("--fp16")
        pinned = {}  # an FP16 engine is built from the FP32 file: nothing to keep out of INT8
    elif precision is TrtPrecision.INT8 and strongly_typed:
        command.append("--stronglyTyped")
        pinned = {}  # the Q/DQ graph carries the types; trtexec refuses layer precisions here
    elif precision is TrtPrecision.INT8:
        command += ["--int8", "--fp16"]
    else:
        command.append("--best")
    command += profile.trtexec_flags()
    if pinned:
        command.append("--layerPrecisions=" + ",".join(f"{name}:{kind}" for name, kind in sorted(pinned.items())))
        command.append("--precisionConstraints=obey")
    if timing_cache is not None:
        command.append(f"--timingCacheFile={timing_cache}")
    command.append("--skipInference")
    return command


def sha256(path: Path) -> str:
    """SHA-256 of a file (the ONNX file an engine was built from)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineMetadata:
    """What a plan was built for, written to ``<plan>.json`` beside it.

    Attributes:
        gpu: the GPU's name (``nvidia-smi``).
        compute_capability: e.g. ``"9.0"``.
        tensorrt_version: ``tensorrt.__version__`` of the builder.
        precision: the engine's precision.
        strongly_typed: built as a strongly typed network.
        onnx_sha256: the ONNX file it was built from.
        profile: its optimisation profile.
        layer_precisions: ONNX node names pinned to a float precision.
        built_at: UTC build time.
    """

    gpu: str
    compute_capability: str
    tensorrt_version: str
    precision: TrtPrecision
    strongly_typed: bool
    onnx_sha256: str
    profile: Profile
    layer_precisions: dict[str, str] = field(default_factory=dict)
    built_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        out = asdict(self)
        out["precision"] = self.precision.value
        out["profile"] = self.profile.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EngineMetadata:
        """Read :meth:`to_dict` output back.

        Raises:
            ConfigError: a field is missing or invalid.
        """
        try:
            return cls(
                **{k: v for k, v in data.items() if k not in ("precision", "profile")},
                precision=TrtPrecision(data["precision"]),
                profile=(SpecShapeProfile if data["profile"].get("layout") == "spec" else ShapeProfile).from_dict(
                    data["profile"]
                ),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(f"invalid engine metadata: {e}") from e

    def write(self, plan: Path) -> Path:
        """Write ``<plan>.json``; returns its path."""
        path = plan.with_name(plan.name + METADATA_SUFFIX)
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def read(cls, plan: Path) -> EngineMetadata:
        """Read ``<plan>.json``.

        Raises:
            ConfigError: it is missing or invalid.
        """
        path = plan.with_name(plan.name + METADATA_SUFFIX)
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"{path} (engine metadata, written beside every plan) is missing or unreadable") from e


def _source_hint(precision: TrtPrecision, layout: str) -> str:
    try:
        return plan_source(precision, layout)
    except ConfigError:
        return f"nothing: there is no {precision.value} {layout} graph"


def plan_problems(
    metadata: EngineMetadata,
    *,
    variant_precision: str,
    wanted: ShapeProfile,
    gpu: str | None = None,
    compute_capability: str | None = None,
    tensorrt_version: str | None = None,
    onnx_sha256: str | None = None,
) -> list[str]:
    """What makes a plan unfit for a variant (empty = fit).

    Args:
        metadata: the plan's metadata.
        variant_precision: the variant's precision (``fp16`` or ``int8``).
        wanted: the profile the variant's config asks for; the plan must cover it.
        gpu: the target GPU's name, when known (None = not checked).
        compute_capability: the target's compute capability, when known.
        tensorrt_version: the target's TensorRT version, when known.
        onnx_sha256: SHA-256 of the ONNX file the plan must have been built from, when known.
    """
    problems = []
    if metadata.profile.layout != wanted.layout:
        problems.append(
            f"plan built for the {metadata.profile.layout} graph, the config batches in the {wanted.layout} layout "
            f"(build it from {_source_hint(metadata.precision, wanted.layout)})"
        )
    if metadata.precision.variant_precision != variant_precision:
        problems.append(f"plan precision {metadata.precision.value} does not belong in a {variant_precision} variant")
    have = metadata.profile
    if not isinstance(have, ShapeProfile):  # a spec's plan: no bundled variant can load it
        return problems
    if have.history_len != wanted.history_len:
        problems.append(f"plan history length {have.history_len} != the config's {wanted.history_len}")
    for axis in ("batch", "candidates"):
        low, high = getattr(have, f"min_{axis}"), getattr(have, f"max_{axis}")
        want_low, want_high = getattr(wanted, f"min_{axis}"), getattr(wanted, f"max_{axis}")
        if low > want_low or high < want_high:
            problems.append(f"plan {axis} range {low}..{high} does not cover the config's {want_low}..{want_high}")
    for name, target, built in (
        ("GPU", gpu, metadata.gpu),
        ("compute capability", compute_capability, metadata.compute_capability),
        ("TensorRT version", tensorrt_version, metadata.tensorrt_version),
        ("ONNX file (SHA-256)", onnx_sha256, metadata.onnx_sha256),
    ):
        if target is not None and target != built:
            problems.append(f"plan built for {name} {built}, the target has {target}")
    return problems
