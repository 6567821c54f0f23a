"""The Triton model repository: typed serving variants -> ``config.pbtxt`` files + artifacts."""

from tritonrec.repository.build import CONFIG_FILE, VERSION, build_repository, resolve_variants
from tritonrec.repository.variants import (
    DEFAULT_VARIANTS,
    VARIANTS,
    Batching,
    Variant,
    VariantKind,
    VariantName,
    VariantOverrides,
    config_text,
    cpu_artifact,
    cpu_layout,
    graph_file_layout,
    model_config,
    parse_config_text,
)

__all__ = [
    "CONFIG_FILE",
    "DEFAULT_VARIANTS",
    "VARIANTS",
    "VERSION",
    "Batching",
    "Variant",
    "VariantKind",
    "VariantName",
    "VariantOverrides",
    "build_repository",
    "config_text",
    "cpu_artifact",
    "cpu_layout",
    "graph_file_layout",
    "model_config",
    "parse_config_text",
    "resolve_variants",
]
