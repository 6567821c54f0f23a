"""Write a Triton model repository: one folder per variant with ``config.pbtxt`` and its version folder.

Layout written for each variant ``<name>``::

    <out>/<name>/config.pbtxt        generated from tritonrec.repository.variants (committed in model_repository/)
    <out>/<name>/1/model.onnx[.data] the exported ONNX (ranker_cpu, ranker_onnx)
    <out>/<name>/1/model.pt2         the torch.export program (ranker_gpu; `tritonrec export torch`)
    <out>/<name>/1/model.py          the Python-backend model of ranker_cpu / ranker_gpu (ranker_cpu_model.py /
                                     ranker_gpu_model.py, verbatim)
    <out>/<name>/1/model.plan        TensorRT variants: ``model_trt_<precision>.plan`` of the export folder
                                     (``tritonrec export trt``, run on that GPU) with its metadata, refused unless
                                     the metadata fits the variant; without one, the ONNX file the plan is built
                                     from (``model_offsets.onnx`` for fp16, ``model_qdq.onnx`` for int8) for
                                     build_trt_engines.sh on the target GPU node
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

from tritonrec.backends import MODEL_FILES_DIR
from tritonrec.data.feature_spec import FeatureSpec
from tritonrec.errors import ConfigError, RepositoryError
from tritonrec.repository.variants import VARIANTS, Variant, VariantKind, config_text, model_config

__all__ = ["CONFIG_FILE", "VERSION", "build_repository", "resolve_variants"]

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.pbtxt"
VERSION = "1"


def resolve_variants(names: Sequence[str]) -> list[Variant]:
    """Return the variants called ``names``.

    Raises:
        RepositoryError: a name is not a known variant.
    """
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise RepositoryError(f"unknown variant(s) {unknown}; known: {sorted(VARIANTS)}")
    return [VARIANTS[n] for n in names]


# The Python-backend model files, copied as model.py
_PYTHON_MODELS = {
    VariantKind.PYTHON_ORT: MODEL_FILES_DIR / "ranker_cpu_model.py",
    VariantKind.PYTHON_TORCH: MODEL_FILES_DIR / "ranker_gpu_model.py",
}


def _artifact_files(export_dir: Path, variant: Variant) -> list[Path]:
    source = export_dir / variant.artifact
    if not source.is_file():
        exporter = "export torch" if variant.kind is VariantKind.PYTHON_TORCH else "export onnx"
        exporter = "quantize" if variant.precision == "int8" else exporter
        raise RepositoryError(f"{variant.name} needs {source.name} in {export_dir}; run `tritonrec {exporter}` first")
    if source.suffix == ".xml":  # OpenVINO IR: the weights are in the .bin of the same name
        return [source, source.with_suffix(".bin")]
    data = source.with_name(source.name + ".data")
    return [source, data] if data.is_file() else [source]


def _place_plan(variant: Variant, spec: FeatureSpec, export_dir: Path, version_dir: Path) -> list[Path]:
    """Copy the export's plan for ``variant`` (with its metadata) after checking the metadata fits the variant."""
    from tritonrec.export.tensorrt_plan import (
        EngineMetadata,
        ShapeProfile,
        TrtPrecision,
        plan_file,
        plan_problems,
        plan_source,
        sha256,
    )

    precision = TrtPrecision(variant.precision if variant.precision == "fp16" else "int8")
    plan = export_dir / plan_file(precision)
    if not plan.is_file():
        return _engine_source(variant, export_dir / plan_source(precision, variant.layout or "padded"), version_dir)
    try:
        metadata = EngineMetadata.read(plan)
        wanted = ShapeProfile.from_config(model_config(variant, spec))
        source = export_dir / plan_source(metadata.precision, metadata.profile.layout)
    except ConfigError as e:
        raise RepositoryError(f"{variant.name}: {e}") from e
    problems = plan_problems(
        metadata,
        variant_precision=variant.precision,
        wanted=wanted,
        onnx_sha256=sha256(source) if source.is_file() else None,
    )
    if problems:
        raise RepositoryError(f"{variant.name}: refusing {plan}: " + "; ".join(problems))
    version_dir.mkdir(parents=True, exist_ok=True)
    target = version_dir / "model.plan"
    shutil.copy2(plan, target)
    return [target, metadata.write(target)]


def _engine_source(variant: Variant, source: Path, version_dir: Path) -> list[Path]:
    """No plan in the export: the ONNX file the target GPU node builds it from, copied beside where it will go.

    ``export/build_trt_engines.sh`` (the chart's init container or Job) then finds ``<model>/1/<source>`` in the
    repository it was given, whatever other variants were built.
    """
    if not source.is_file():
        logger.info("%s: neither a plan nor %s in %s: nothing to build its engine from", variant.name, source.name,
                    source.parent)  # fmt: skip
        return []
    logger.info("%s: no plan in %s: its engine is built on the target GPU node from %s", variant.name,
                source.parent, source.name)  # fmt: skip
    version_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for part in (source, source.with_name(source.name + ".data")):
        if part.is_file():
            written.append(Path(shutil.copy2(part, version_dir / part.name)))
    return written


def _write_artifacts(variant: Variant, spec: FeatureSpec, export_dir: Path, version_dir: Path) -> list[Path]:
    if variant.kind is VariantKind.TENSORRT:
        return _place_plan(variant, spec, export_dir, version_dir)
    version_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for source in _artifact_files(export_dir, variant):
        # Same file names as exported: the graph's reference to its external data stays valid.
        target = version_dir / source.name
        shutil.copy2(source, target)
        written.append(target)
    python_model = _PYTHON_MODELS.get(variant.kind)
    if python_model is not None:
        target = version_dir / "model.py"
        shutil.copy2(python_model, target)
        written.append(target)
    return written


def build_repository(
    out: Path, spec: FeatureSpec, variants: Sequence[Variant], *, export_dir: Path | None = None
) -> dict[str, list[Path]]:
    """Write ``config.pbtxt`` for each variant, and its artifacts when ``export_dir`` is given.

    Args:
        out: the repository folder (created; existing variant folders are replaced).
        spec: the exported model's FeatureSpec (history length for the configs and warmup).
        variants: what to write.
        export_dir: the folder ``tritonrec export onnx`` (and, for ``ranker_gpu``, ``tritonrec export torch``)
            wrote; None writes configs only.

    Returns:
        The files written, per variant name.
    """
    written: dict[str, list[Path]] = {}
    out.mkdir(parents=True, exist_ok=True)
    for variant in variants:
        folder = out / variant.name
        if export_dir is not None and (folder / VERSION).exists():
            shutil.rmtree(folder / VERSION)
        folder.mkdir(parents=True, exist_ok=True)
        config_path = folder / CONFIG_FILE
        config_path.write_text(config_text(model_config(variant, spec)))
        files = [config_path]
        if export_dir is not None:
            files += _write_artifacts(variant, spec, export_dir, folder / VERSION)
        written[variant.name] = files
    return written
