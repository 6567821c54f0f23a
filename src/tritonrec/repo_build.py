"""``tritonrec repo build``'s work: which variants, from which graph, with which tuned or selected configuration.

The sources of a repository, one of:

- an export folder (``tritonrec export onnx``, + ``export torch`` for ``ranker_gpu``);
- a checkpoint, exported first into ``<checkpoint>/onnx`` (real rows of its dataset check the parity);
- a ``select.json`` of ``tritonrec select``: ``ranker_cpu`` serving the chosen candidate's graph, in its own
  precision and runtime;

with, on top, the chosen configuration of a ``tune.json`` (``tritonrec bench tune``) for the Python variants, and
explicit :class:`~tritonrec.repository.VariantOverrides`, which win. This module sits above ``select`` and the
tuning study because it reads their records; the repository package itself knows neither.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tritonrec.errors import ConfigError
from tritonrec.records import Progress, quiet
from tritonrec.repository import (
    Variant,
    VariantKind,
    VariantName,
    VariantOverrides,
    build_repository,
    resolve_variants,
)

if TYPE_CHECKING:
    from tritonrec.data.feature_spec import FeatureSpec
    from tritonrec.data.registry import PreparedData

__all__ = ["RepoBuild", "RepoSource", "build_repo"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RepoSource:
    """Where the repository's graphs come from: exactly one of the three.

    Attributes:
        export_dir: a folder written by ``tritonrec export onnx``.
        checkpoint: a checkpoint to export first (needs ``data`` in :func:`build_repo`, unless configs only).
        selection: a ``select.json``: ``ranker_cpu`` serves the pick's graph.
    """

    export_dir: Path | None = None
    checkpoint: Path | None = None
    selection: Path | None = None

    def __post_init__(self) -> None:
        given = [p for p in (self.export_dir, self.checkpoint, self.selection) if p is not None]
        if len(given) != 1:
            raise ConfigError("a repository is built from exactly one of an export, a checkpoint or a selection")


@dataclass(frozen=True, slots=True)
class RepoBuild:
    """What :func:`build_repo` wrote.

    Attributes:
        written: ``{model name: files written}``.
        gpu_only: the variants that load only on a GPU node.
    """

    written: dict[str, list[Path]]
    gpu_only: list[str]


def build_repo(
    out: Path,
    variant_names: list[str],
    source: RepoSource,
    *,
    overrides: VariantOverrides | None = None,
    tuned: Path | None = None,
    configs_only: bool = False,
    data: PreparedData | None = None,
    progress: Progress = quiet,
) -> RepoBuild:
    """Write the model repository ``out`` for ``variant_names`` from ``source``.

    Args:
        out: the repository folder.
        variant_names: the variants (a selection replaces them with its pick's ``ranker_cpu``).
        source: where the graphs come from.
        overrides: explicit settings; they win over ``tuned``.
        tuned: a ``tune.json`` whose chosen configuration applies to the Python variants.
        configs_only: write ``config.pbtxt`` files only (a checkpoint is then read, not exported).
        data: the checkpoint's dataset, for the export's parity check.
        progress: told what is exported and which graph ``ranker_cpu`` serves.

    Raises:
        ConfigError: a selection with a precision or runtime override, a checkpoint to export without data, or a
            record that is not what it should be.
        RepositoryError: an unknown variant, or an artifact missing from the export.
    """
    overrides = overrides or VariantOverrides()
    if source.selection is not None and (overrides.cpu_precision or overrides.cpu_runtime):
        raise ConfigError(
            "--from-selection serves the selected candidate's graph in its own precision and runtime: drop "
            "--cpu-precision/--cpu-runtime, or build from --export"
        )
    variants = resolve_variants(variant_names)
    tuned_overrides = None
    if tuned is not None:
        from tritonrec.bench.tuning.tune import overrides_from_report

        tuned_overrides = overrides_from_report(tuned)
        variants = [tuned_overrides.apply(v) if v.kind is VariantKind.PYTHON_ORT else v for v in variants]
    variants = [overrides.apply(v) for v in variants]
    why = f"its {overrides.cpu_precision} graph is a padded graph"
    export_dir: Path | None
    if source.selection is not None:
        variants, spec, export_dir = _selected(source.selection, overrides, tuned_overrides, progress)
        why = "the selected graph was exported in that layout"
    else:
        spec, export_dir = _spec_and_graphs(source, variants, configs_only=configs_only, data=data, progress=progress)
    cpu = next((v for v in variants if v.name == VariantName.CPU), None)
    if tuned_overrides is not None and tuned_overrides.layout is not None and cpu is not None:
        if cpu.layout != tuned_overrides.layout:
            progress(
                f"ranker_cpu serves {cpu.artifact} in the {cpu.layout} layout, not the {tuned_overrides.layout} "
                f"layout of {tuned}: {why}"
            )
    written = build_repository(out, spec, variants, export_dir=None if configs_only else export_dir)
    return RepoBuild(written=written, gpu_only=[v.name for v in variants if v.gpu])


def _selected(
    selection: Path, overrides: VariantOverrides, tuned: VariantOverrides | None, progress: Progress
) -> tuple[list[Variant], FeatureSpec, Path]:
    """``ranker_cpu`` serving a selection's pick (the tuned configuration but its layout, then the overrides)."""
    from tritonrec.export.manifest import read_export_spec
    from tritonrec.select.served_figures import selected_variant

    chosen, export_dir = selected_variant(selection)
    if tuned is not None:  # the pick's graph fixes the layout; the rest of the tuned configuration applies
        chosen = dataclasses.replace(tuned, layout=None).apply(chosen)
    progress(f"ranker_cpu serves {export_dir / chosen.artifact} ({chosen.precision}), the pick of {selection}")
    return [overrides.apply(chosen)], read_export_spec(export_dir / "model.onnx"), export_dir


def _spec_and_graphs(
    source: RepoSource, variants: list[Variant], *, configs_only: bool, data: PreparedData | None, progress: Progress
) -> tuple[FeatureSpec, Path | None]:
    """The FeatureSpec and the export folder of an export or a checkpoint (exported here unless configs only)."""
    if source.export_dir is not None:
        from tritonrec.export.manifest import read_export_spec

        artifact = "model.onnx" if (source.export_dir / "model.onnx").is_file() else "model.pt2"
        return read_export_spec(source.export_dir / artifact), source.export_dir
    checkpoint = source.checkpoint
    if checkpoint is None:  # RepoSource holds exactly one source: an export, a selection (handled) or this
        raise ConfigError("no export or checkpoint to build the repository from")
    if configs_only:
        from tritonrec.train.checkpoint import load_checkpoint

        return load_checkpoint(checkpoint).spec, None
    if data is None:
        raise ConfigError("--checkpoint needs --dataset (real rows of its dataset check the export's parity)")
    from tritonrec.pipeline.steps import export_step, program_step

    export_dir = checkpoint / "onnx"
    progress(f"exporting {checkpoint} -> {export_dir}")
    gpu_graph = any(v.layout == "offsets" for v in variants)
    spec = export_step(checkpoint, data, export_dir, gpu_graph=gpu_graph).spec
    if any(v.kind is VariantKind.PYTHON_TORCH for v in variants):
        program_step(checkpoint, data, export_dir)  # model.pt2 + program.json beside the ONNX files
    return spec, export_dir
