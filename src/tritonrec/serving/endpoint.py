"""A local endpoint for benchmarks: an export placed in a temporary repository and served by the bundled Triton."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tritonrec.export.manifest import read_export_spec
from tritonrec.repository import VARIANTS, Variant, VariantName, build_repository
from tritonrec.serving.server import LocalTriton

__all__ = ["empty_endpoint", "local_endpoint"]


@contextlib.contextmanager
def local_endpoint(export_dir: Path, variants: list[Variant] | None = None) -> Iterator[LocalTriton]:
    """Serve ``variants`` (default ``ranker_cpu``) of the ONNX export in ``export_dir`` until the block ends.

    The server log is kept beside the temporary repository and its tail is shown if a model fails to load.
    """
    spec = read_export_spec(export_dir / "model.onnx")
    chosen = variants or [VARIANTS[VariantName.CPU]]
    with tempfile.TemporaryDirectory(prefix="tritonrec-bench-") as work:
        repo = Path(work) / "repository"
        build_repository(repo, spec, chosen, export_dir=export_dir)
        with LocalTriton(
            repo, log_file=Path(work) / "server.log", startup_timeout_s=300, models=[v.name for v in chosen]
        ) as server:
            yield server


@contextlib.contextmanager
def empty_endpoint() -> Iterator[LocalTriton]:
    """The bundled Triton on an empty temporary repository, for models built and loaded while it runs."""
    with tempfile.TemporaryDirectory(prefix="tritonrec-bench-") as work:
        repo = Path(work) / "repository"
        repo.mkdir()
        with LocalTriton(repo, log_file=Path(work) / "server.log", startup_timeout_s=300, models=[]) as server:
            yield server
