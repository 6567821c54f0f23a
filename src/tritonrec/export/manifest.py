"""``export.json``: what an export folder holds, read without torch (repository builds and benchmarks need it)."""

from __future__ import annotations

import json
from pathlib import Path

from tritonrec.data.feature_spec import FeatureSpec
from tritonrec.errors import ExportError

__all__ = ["REPORT_FILE", "read_export_spec"]

REPORT_FILE = "export.json"


def read_export_spec(onnx_path: Path) -> FeatureSpec:
    """Return the FeatureSpec recorded in the ``export.json`` beside an exported ONNX file.

    Raises:
        ExportError: the report is missing or unreadable.
    """
    report_path = onnx_path.parent / REPORT_FILE
    try:
        return FeatureSpec.from_dict(json.loads(report_path.read_text())["feature_spec"])
    except (OSError, KeyError, TypeError, json.JSONDecodeError) as e:
        raise ExportError(f"{report_path} (written by `tritonrec export onnx`) is missing or unreadable: {e}") from e
