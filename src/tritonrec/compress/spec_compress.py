"""Compression that needs training, on a team's own model: its spec's training hook does the training.

tritonrec cannot train a model it did not write, so a spec names a **training hook** (``[model] train_hook``,
``package.module:callable`` on ``python_path``): ``fit(module, rows, targets)`` trains ``module`` in place on ``rows``
(the spec's calibration rows, never the evaluation ones) toward ``targets``, one float in [0, 1] per row. tritonrec
decides what the module is and what it is trained toward:

- ``prune``: the spec's trained module, the given share of its ``Linear`` weights zeroed by global magnitude
  (``torch.nn.utils.prune``, L1, unstructured), fine-tuned on the labels with the zeros kept, then made permanent.
  Zeros do not make a dense graph smaller or faster: the record says how many weights are zero, and the bytes stay;
- ``distill``: a student built by the spec's factory with other keyword arguments (``student_kwargs``: a smaller
  embedding, fewer layers), trained toward the teacher's probabilities (the spec's model, scored on the same rows);
- ``share``: the factory with other keyword arguments that share rows between ids (hashing into smaller tables,
  say), retrained on the labels.

Each writes the compressed model as a spec of its own (``spec.toml`` beside ``weights.pt``: the same inputs, data and
metrics, the factory's keyword arguments and the weights changed), so every ``--spec`` command takes it, and a
record (``compress.json`` / ``.md``) with both models' quality on the evaluation rows by the shared metrics module,
their parameters and bytes. Without a hook, each method says it needs one.
"""

from __future__ import annotations

import enum
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from tritonrec.errors import ConfigError
from tritonrec.metrics import BUDGET_CUTOFF, evaluate_rows, score_rows, with_budget_cutoff
from tritonrec.records import Progress, Report, markdown_header, new_record, quiet, write_report
from tritonrec.spec.model_spec import ModelSpec, ScoreKind
from tritonrec.spec.rows import read_rows, split_rows

if TYPE_CHECKING:
    from torch import nn

__all__ = ["SpecCompressConfig", "SpecMethod", "needs_hook", "run_spec_compress"]


class SpecMethod(enum.StrEnum):
    """A compression method that trains."""

    PRUNE = "prune"
    DISTILL = "distill"
    SHARE = "share"


@dataclass(frozen=True, slots=True, kw_only=True)
class SpecCompressConfig:
    """What to make.

    Attributes:
        method: prune, distill or share.
        out_dir: where the compressed model's spec, weights and record go.
        ratio: ``prune``: the share of the ``Linear`` weights zeroed, in (0, 1).
        student_kwargs: ``distill`` / ``share``: the factory's keyword arguments that change (merged over the spec's).
        seed: seeds torch before the module is built and trained.
    """

    method: SpecMethod
    out_dir: Path
    ratio: float = 0.5
    student_kwargs: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method is SpecMethod.PRUNE and not 0 < self.ratio < 1:
            raise ConfigError(f"prune --ratio must be in (0, 1), got {self.ratio}")
        if self.method is not SpecMethod.PRUNE and not self.student_kwargs:
            raise ConfigError(
                f"{self.method.value} --spec builds the model again with other factory arguments: give them as "
                "--student-kwargs JSON (e.g. '{\"dim\": 8}')"
            )


def needs_hook(spec: ModelSpec) -> str | None:
    """Why the spec's model cannot be compressed by a method that trains (None: it can)."""
    if spec.model.factory is None:
        return "needs a factory (the module is built again): the spec names a file, not code"
    if spec.model.train_hook is None:
        return (
            "needs a training hook: name one in the spec as [model] train_hook = 'module:fit', a function "
            "fit(module, rows, targets) that trains module in place (examples/dlrm/train.py has one)"
        )
    return None


def _probabilities(spec: ModelSpec, scores: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    if spec.output.kind is ScoreKind.PROBABILITY:
        return scores.astype(np.float32)
    sigmoid: npt.NDArray[np.float32] = np.exp(-np.logaddexp(0.0, -scores)).astype(np.float32)  # no overflow
    return sigmoid


def _size(module: nn.Module) -> dict[str, int]:
    params = list(module.parameters())
    return {
        "params": int(sum(p.numel() for p in params)),
        "zero_params": int(sum(int((p == 0).sum()) for p in params)),
        "bytes": int(sum(t.numel() * t.element_size() for t in module.state_dict().values())),
    }


def _prune(module: nn.Module, ratio: float) -> list[tuple[nn.Module, str]]:
    import torch
    from torch.nn.utils import prune

    targets: list[tuple[nn.Module, str]] = [(m, "weight") for m in module.modules() if isinstance(m, torch.nn.Linear)]
    if not targets:
        raise ConfigError("prune --spec zeroes Linear weights, and the spec's module has none")
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=ratio)
    return targets


def _student_spec(spec: ModelSpec, kwargs: Mapping[str, Any]) -> ModelSpec:
    merged = {**spec.model.factory_kwargs, **kwargs}
    return replace(spec, model=replace(spec.model, factory_kwargs=merged, weights=None))


def write_derived_spec(spec: ModelSpec, out: Path, factory_kwargs: Mapping[str, Any], weights: Path) -> Path:
    """``out/spec.toml``: ``spec``'s file with the factory's arguments and weights replaced, every path absolute.

    Raises:
        ConfigError: the spec was built in Python (no file to derive from).
    """
    import tomli_w

    if spec.path is None:
        raise ConfigError("a compressed model's spec is derived from the spec's file; this spec has none")
    data = tomllib.loads(spec.path.read_text())
    model = data["model"]
    model["weights"] = weights.resolve().as_posix()
    model["factory_kwargs"] = dict(factory_kwargs)
    model["python_path"] = [p.resolve().as_posix() for p in spec.model.python_path]
    if spec.data is not None:
        data.setdefault("data", {})["path"] = spec.data.path.resolve().as_posix()
    path = out / "spec.toml"
    header = f"# {spec.name}, compressed by `tritonrec compress --spec` from {spec.path}; generated, not edited.\n"
    path.write_text(header + tomli_w.dumps(data))
    return path


@dataclass(frozen=True, slots=True)
class SpecCompressResult:
    """The compressed model: its spec file, and the record of both models' figures."""

    spec_path: Path
    report: Report


def run_spec_compress(
    spec: ModelSpec, config: SpecCompressConfig, *, command: str = "", progress: Progress = quiet
) -> SpecCompressResult:
    """Make the compressed model with the spec's training hook; write its spec, weights and record (of ``command``).

    Raises:
        ConfigError: the spec has no factory or no training hook, or the method's arguments are wrong.
        DataError: the spec's rows cannot be read.
    """
    import torch

    from tritonrec.scorers.rows import module_rows_scorer
    from tritonrec.spec.module import load_module, spec_callable

    reason = needs_hook(spec)
    if reason is not None:
        raise ConfigError(f"compress {config.method.value} --spec: {reason}")
    fit: Callable[..., Any] = spec_callable(spec, spec.model.train_hook or "", "model.train_hook")
    calibrate, evaluate = split_rows(spec, read_rows(spec))
    cutoffs = with_budget_cutoff(spec.metrics.cutoffs)
    probabilities = spec.output.kind is ScoreKind.PROBABILITY
    teacher = load_module(spec)

    def quality(module: nn.Module) -> dict[str, float]:
        module.eval()
        return evaluate_rows(module_rows_scorer(module, spec), evaluate, cutoffs=cutoffs, probabilities=probabilities)

    progress(f"{spec.name}: quality of the spec's model on {evaluate.n_queries:,} evaluation queries ...")
    before = quality(teacher)
    torch.manual_seed(config.seed)
    kwargs = dict(spec.model.factory_kwargs)
    if config.method is SpecMethod.PRUNE:
        student = load_module(spec)
        pruned = _prune(student, config.ratio)
        targets = calibrate.labels.astype(np.float32)
    else:
        student_spec = _student_spec(spec, config.student_kwargs)
        kwargs = dict(student_spec.model.factory_kwargs)
        student = load_module(student_spec)
        if config.method is SpecMethod.DISTILL:
            progress("the teacher's probabilities on the calibration rows ...")
            targets = _probabilities(spec, score_rows(module_rows_scorer(teacher, spec), calibrate))
        else:
            targets = calibrate.labels.astype(np.float32)
    progress(f"training hook {spec.model.train_hook} on {len(calibrate):,} calibration rows ...")
    started = time.perf_counter()
    student.train()
    fit(student, calibrate, targets)
    train_s = time.perf_counter() - started
    if config.method is SpecMethod.PRUNE:
        from torch.nn.utils import prune

        for module, name in pruned:
            prune.remove(module, name)  # type: ignore[no-untyped-call]
    progress(f"{spec.name}: quality of the {config.method.value} model ...")
    after = quality(student)
    config.out_dir.mkdir(parents=True, exist_ok=True)
    weights = config.out_dir / "weights.pt"
    torch.save(student.state_dict(), weights)
    spec_path = write_derived_spec(spec, config.out_dir, kwargs, weights)
    record = {
        **new_record(command or f"tritonrec compress {config.method.value} --spec {spec.path}"),
        "spec": str(spec.path),
        "method": config.method.value,
        "ratio": config.ratio if config.method is SpecMethod.PRUNE else None,
        "factory_kwargs": kwargs,
        "train_hook": spec.model.train_hook,
        "train_s": round(train_s, 1),
        "calibration_rows": len(calibrate),
        "evaluation": {"rows": len(evaluate), "queries": evaluate.n_queries},
        "parent": {**_size(teacher), "quality": before},
        "compressed": {**_size(student), "quality": after, "spec": str(spec_path), "weights": str(weights)},
        "delta": {k: round(after[k] - before[k], 6) for k in ("auc", f"ndcg@{BUDGET_CUTOFF}", "logloss")},
    }
    return SpecCompressResult(spec_path, write_report(config.out_dir, "compress", record, _markdown(record)))


def _markdown(record: dict[str, Any]) -> str:
    parent, compressed, delta = record["parent"], record["compressed"], record["delta"]
    ndcg = f"ndcg@{BUDGET_CUTOFF}"
    lines = [*markdown_header(f"compress {record['method']} --spec: {record['spec']}", record), ""]
    lines += [
        f"Trained by the spec's hook `{record['train_hook']}` on {record['calibration_rows']:,} calibration rows in "
        f"{record['train_s']:g} s; quality on {record['evaluation']['rows']:,} evaluation rows in "
        f"{record['evaluation']['queries']:,} queries. The compressed model's spec: `{compressed['spec']}`.",
        "",
        "| model | params | zero params | bytes | AUC | NDCG@10 | logloss |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in (("the spec's model", parent), (record["method"], compressed)):
        q = m["quality"]
        lines.append(
            f"| {name} | {m['params']:,} | {m['zero_params']:,} | {m['bytes']:,} | {q['auc']:.4f} | {q[ndcg]:.4f} "
            f"| {q['logloss']:.4f} |"
        )
    lines += [
        "",
        f"Change: AUC {delta['auc']:+.4f}, NDCG@10 {delta[ndcg]:+.4f}, logloss {delta['logloss']:+.4f}; bytes "
        f"{compressed['bytes'] / max(parent['bytes'], 1):.2f}x the spec's model's.",
        "",
    ]
    return "\n".join(lines)
