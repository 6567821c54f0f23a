"""``export.json`` / ``program.json``: what an export folder holds, read without torch.

Repository builds and benchmarks need it. ``tritonrec export onnx`` writes ``export.json``; ``tritonrec export
torch`` writes ``program.json``, so both exports can share one folder.
"""

from __future__ import annotations

import json
from pathlib import Path

from tritonrec.data.feature_spec import FeatureSpec
from tritonrec.errors import ExportError

__all__ = ["PROGRAM_REPORT_FILE", "REPORT_FILE", "read_export_spec"]

REPORT_FILE = "export.json"
PROGRAM_REPORT_FILE = "program.json"


def read_export_spec(artifact_path: Path) -> FeatureSpec:
    """Return the FeatureSpec recorded beside an exported artifact (``export.json``, else ``program.json``).

    Raises:
        ExportError: the report is missing or unreadable.
    """
    report_path = artifact_path.parent / REPORT_FILE
    if not report_path.is_file() and (artifact_path.parent / PROGRAM_REPORT_FILE).is_file():
        report_path = artifact_path.parent / PROGRAM_REPORT_FILE
    try:
        return FeatureSpec.from_dict(json.loads(report_path.read_text())["feature_spec"])
    except (OSError, KeyError, TypeError, json.JSONDecodeError) as e:
        raise ExportError(f"{report_path} (written by `tritonrec export onnx`) is missing or unreadable: {e}") from e
